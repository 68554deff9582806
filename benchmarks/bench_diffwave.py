"""DiffWave vocoder: CPU speed beside NSF-BigVGAN, and copy-synthesis quality while training.

    python benchmarks/bench_diffwave.py rtf                 # 30 s of mel, fast and full schedule
    python benchmarks/bench_diffwave.py rtf --fast-seconds 6 --full-seconds 1 --threads 2
    python benchmarks/bench_diffwave.py rtf --device cuda --precision bf16   # the GPU rows
    python benchmarks/bench_diffwave.py quality --steps 300 --valid-every 100 --work /tmp/bdw
    python benchmarks/bench_diffwave.py quality --device cuda --steps 100000 --valid-every 5000
    python benchmarks/bench_diffwave.py evaluate --work /tmp/bdw   # L1 of the kept checkpoints

`rtf`: seconds of wall time per second of audio (lower is better) of DiffWave at Amphion's size
(30 residual layers x 64 channels, random weights: speed does not depend on them) with the fast
6-step and the full 50-step schedule, and of NSF-BigVGAN (width 320, random weights in the
published layout), all on the same mel, each in its own process, with wall time and process CPU
time per audio second. DiffWave is slow on a CPU: `--fast-seconds` / `--full-seconds` run the
6-step / 50-step schedule on the head of the mel only (the cost per second is the same beyond
one 4 s window: the chunk plan is fixed).

`quality`: writes the demo corpus (3 synthetic singers x 6 clips x 4 s), prepares waves-32k and
mel, holds out one clip per singer (the split `gvc index` makes), trains `tiny-diffwave` with
`gvc train-vocoder`'s loop for `--steps` steps and reads the copy-synthesis log-mel L1 of the
held-out clips (first 3 s, fast schedule) from the run's validations; Griffin-Lim's L1 on the
same clips is the line to beat. Every validation step's checkpoint is kept for `evaluate`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _mel(seconds: float):
    """A sung phrase's log-mel, [1, 100, T] (the same input for every vocoder)."""
    import torch

    from gvc.synthetic_singing import sing, singer_voice
    from vocoder import mel_spectrogram

    audio = sing(singer_voice(0), seconds, 32000, seed=0)
    audio = torch.from_numpy(audio[: len(audio) // 320 * 320])
    return mel_spectrogram(audio / audio.abs().max() * 0.6)[None]


def time_case(case: str, seconds: float, *, device: str = "cpu", precision: str = "fp32",
              ckpt: Path | None = None, size: dict | None = None) -> dict:
    """Time one vocoder on `seconds` of sung mel in this process.

    Args:
        case: `nsf-bigvgan` (the file `ckpt`), `diffwave-6` or `diffwave-50` (random weights,
            Amphion's size unless `size` overrides `DiffWaveConfig` fields).

    Returns:
        {case, device, precision, audio_s, wall_s, rtf, cpu_s_per_audio_s, threads}.
    """
    import torch

    from gvc.device import resolve_runtime
    from vocoder.diffwave.config import DiffWaveConfig, VocoderConfig
    from vocoder.diffwave.model import DiffWave
    from vocoder.diffwave.vocoder import DiffWaveVocoder
    from vocoder.nsf_bigvgan import load_nsf_bigvgan

    runtime = resolve_runtime(device, precision)
    if case == "nsf-bigvgan":
        voc = load_nsf_bigvgan(ckpt, runtime=runtime)
    else:
        torch.manual_seed(0)
        voc = DiffWaveVocoder(DiffWave(DiffWaveConfig(**(size or {}))), VocoderConfig().mel,
                              runtime, steps=6 if case == "diffwave-6" else 50)
    mel = _mel(seconds).to(runtime.device)
    f0 = torch.full(mel.shape[::2], 220.0, device=runtime.device)
    voc(mel[..., :20], f0[..., :20], torch.Generator().manual_seed(0))  # warm-up (0.2 s)
    sync = torch.cuda.synchronize if runtime.device.type == "cuda" else (lambda: None)
    sync()
    start, cpu = time.perf_counter(), time.process_time()
    audio = voc(mel, f0, torch.Generator().manual_seed(0))
    sync()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert audio.shape[-1] == mel.shape[-1] * 320
    seconds = mel.shape[-1] / 100
    return {"case": case, "device": str(runtime.device), "precision": precision,
            "audio_s": seconds, "wall_s": round(wall, 2),
            "rtf": round(wall / seconds, 3), "cpu_s_per_audio_s": round(cpu / seconds, 3),
            "threads": torch.get_num_threads()}


def rtf_worker(args: argparse.Namespace) -> dict:
    """One case of `rtf` in this process (DiffWave on the head of the mel, see the docstring)."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    seconds = args.seconds
    if args.case != "nsf-bigvgan":
        seconds = min(seconds, args.fast_seconds if args.case == "diffwave-6" else
                      args.full_seconds)
    return time_case(args.case, seconds, device=args.device, precision=args.precision,
                     ckpt=args.ckpt)


def rtf(args: argparse.Namespace) -> list[dict]:
    from vocoder import save_random_checkpoint

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_random_checkpoint(Path(tmp) / "nsf320.pth", 320, seed=0)
        for case in ("nsf-bigvgan", "diffwave-6", "diffwave-50"):
            cmd = [sys.executable, __file__, "rtf", "--worker", case, "--seconds",
                   str(args.seconds), "--fast-seconds", str(args.fast_seconds),
                   "--full-seconds", str(args.full_seconds), "--threads", str(args.threads),
                   "--device", args.device, "--precision", args.precision, "--ckpt", str(ckpt)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{case} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{row['case']:<12} {row['device']} {row['audio_s']:>5.1f} s of audio: "
                  f"{row['wall_s']:8.1f} s wall, RTF {row['rtf']:.3f}, CPU "
                  f"{row['cpu_s_per_audio_s']:.2f} s per audio s ({row['threads']} threads)",
                  flush=True)
    return rows


def _corpus(work: Path) -> tuple[Path, Path]:
    """The demo corpus, prepared (waves-32k, mel) and indexed; returns (data root, files)."""
    from gvc.dataset.index import index_line, split_valid
    from gvc.fileio import save_text
    from gvc.layout import DataTree, Feature
    from gvc.synthetic_singing import write_corpus
    from prepare import steps

    raw, tree, files = work / "data_raw", DataTree(work / "data_gvc"), work / "files"
    if not raw.is_dir():
        write_corpus(raw, singers=3, utterances=6, seconds=4.0)
    w32 = tree.folder(Feature.WAVES_32K)
    steps.resample(raw, {32000: w32}, jobs=2)
    steps.extract_mel(w32, tree.folder(Feature.MEL), jobs=2)
    train, valid = split_valid(tree.utterances(Feature.MEL), 3, 37)
    save_text(files / "train.txt", "".join(index_line(tree, u) + "\n" for u in train))
    save_text(files / "valid.txt", "".join(index_line(tree, u) + "\n" for u in valid))
    return tree.root, files


def quality(args: argparse.Namespace) -> dict:
    import torch

    from gvc.training import TrainOptions
    from vocoder.diffwave.config import load_vocoder_config
    from vocoder.diffwave.train import VALID_MAX_FRAMES, train_vocoder
    from vocoder.diffwave.training import copy_synthesis_l1, load_pair, scan_items
    from vocoder.griffinlim import GriffinLimVocoder

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    data, files = _corpus(work)
    cfg = load_vocoder_config("tiny-diffwave")
    # a permanent checkpoint at every validation, so that `evaluate` can score the whole curve
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train,
                                                             keep_every=args.valid_every))
    gl = GriffinLimVocoder()
    gl_l1 = []
    for item in scan_items(data, 1, files / "valid.txt").items:
        _, mel = load_pair(item, 320, 32000)
        mel = mel[:, :VALID_MAX_FRAMES]
        gl_l1.append(copy_synthesis_l1(gl(mel, generator=torch.Generator().manual_seed(
            cfg.train.seed + 1)), mel, cfg.mel))
    start = time.perf_counter()
    result = train_vocoder(TrainOptions(
        config=cfg, config_name="tiny-diffwave", data=data, run_dir=work / "run",
        train_files=files / "train.txt", valid_files=files / "valid.txt",
        max_steps=args.steps, device=args.device, valid_every=args.valid_every, log_every=50))
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (work / "run" / "metrics.jsonl").open()]
    curve = [(r["step"], r["validation"]["mel_l1"]) for r in rows if "validation" in r]
    out = {"steps": result.step, "train_wall_s": round(wall), "griffinlim_mel_l1":
           round(sum(gl_l1) / len(gl_l1), 4), "diffwave_mel_l1_by_step": curve}
    print(json.dumps(out, indent=1))
    return out


def evaluate(args: argparse.Namespace) -> dict:
    """Copy-synthesis L1 of every checkpoint in `--run` (default `<work>/run`) and of Griffin-Lim,
    over all bins and over the loud ones (truth above ln(0.0025) = -6: the synthetic corpus has
    digital silence, where any residual noise costs up to 11 nats)."""
    import torch

    from gvc.training.checkpoint import list_checkpoints
    from vocoder.diffwave.train import VALID_MAX_FRAMES, export_vocoder
    from vocoder.diffwave.training import load_pair, scan_items
    from vocoder.griffinlim import GriffinLimVocoder
    from vocoder.mel import mel_spectrogram
    from vocoder.registry import load_vocoder

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    mels = [load_pair(item, 320, 32000)[1][:, :VALID_MAX_FRAMES] for item in
            scan_items(work / "data_gvc", 1, work / "files" / "valid.txt").items]

    def l1(voc) -> tuple[float, float]:
        every, loud = [], []
        for mel in mels:
            err = (mel_spectrogram(voc(mel, generator=torch.Generator().manual_seed(38)))
                   - mel).abs()
            every.append(err.mean().item())
            loud.append(err[mel > -6].mean().item())
        return round(sum(every) / len(every), 3), round(sum(loud) / len(loud), 3)

    rows = {"griffinlim": l1(GriffinLimVocoder())}
    for step, path in list_checkpoints(args.run or work / "run"):
        out = work / f"diffwave-{step}.pth"
        export_vocoder(path, out, force=True)
        rows[f"tiny-diffwave step {step}"] = l1(load_vocoder("diffwave", ckpt=out))
    for name, (every, loud) in rows.items():
        print(f"{name:<26} mel L1 {every:.3f}, loud bins {loud:.3f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("rtf", "quality", "evaluate"))
    parser.add_argument("--seconds", type=float, default=30.0, help="rtf: mel length")
    parser.add_argument("--fast-seconds", type=float, default=30.0,
                        help="rtf: length for the 6-step schedule (the head of the mel)")
    parser.add_argument("--full-seconds", type=float, default=3.0,
                        help="rtf: length for the 50-step schedule (the head of the mel)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="cpu", help="rtf, quality: cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", help="rtf: fp32, bf16 or fp16 (CUDA)")
    parser.add_argument("--steps", type=int, default=300, help="quality: training steps")
    parser.add_argument("--valid-every", type=int, default=100, help="quality: steps")
    parser.add_argument("--work", default="bench_diffwave_work", help="quality: work folder")
    parser.add_argument("--run", type=Path, help="evaluate: checkpoints of this folder "
                        "(default <work>/run)")
    parser.add_argument("--ckpt", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.worker:
        args.case = args.worker
        print(json.dumps(rtf_worker(args)))
        return
    result = {"rtf": rtf, "quality": quality, "evaluate": evaluate}[args.what](args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
