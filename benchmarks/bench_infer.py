"""Speed and memory of `gvc infer` end to end (random weights, full-size models by default).

Writes into a work folder: the acoustic model (`--preset`, default `base` = V2-96, random
weights, exported with gvc metadata), HuBERT-Soft (`--hubert-layers`, default the published 12)
and NSF-BigVGAN (`--vocoder-width`, default the published 320), all random; then converts
synthetic singing.

* Speed (`--seconds`, default 30 s): each stage timed separately on the same song: units
  (HuBERT), pitch (Praat), acoustic model per sampler setting (`--configs`, default `ml:20`,
  `dpm-solver-2:8`, `euler:10`), vocoder; end to end = their sum. A setting is
  `[PRESET/]SAMPLER:STEPS[:cfg=W]`: a preset prefix times another acoustic model (random
  weights of that preset) on the same song in the same run, e.g. `base/ml:20 v3-cfm/euler:10`,
  and `cfg=W` adds classifier-free guidance (`flow/euler:10:cfg=0.7`). `PRESET@consistency` is
  the consistency student `gvc distill` makes of that preset (random weights, the same cost as
  a distilled one): `base@consistency/consistency:1` is one-step conversion at V2-96 size.
  RTF = compute seconds / audio seconds (lower is faster). With `--derive`, the acoustic model
  is timed with 1 and 2 steps only and each setting is computed as encoder + steps x one
  network evaluation (every score sampler makes exactly `steps` evaluations; its own arithmetic
  is negligible).
* Memory (`--memory-seconds`, default 60 and 600): a fresh child process converts one song of
  each length through `Converter.convert` and reports its RSS after loading the models and its
  peak RSS. `--memory-*` options choose lighter models/steps so the 10-minute run fits in
  minutes on a CPU; chunk sizes (acoustic 24 s, vocoder 30 s, HuBERT 20 s windows) are the same.

Examples:
    python benchmarks/bench_infer.py --derive                        # CPU, about 10-15 min
    python benchmarks/bench_infer.py --configs ml:20 --memory-seconds   # speed only
    python benchmarks/bench_infer.py --device cuda --precision bf16
    python benchmarks/bench_infer.py --memory-seconds --configs base/ml:20 v3-cfm/euler:10 \
        flow/euler:10 flow/euler:10:cfg=0.7                          # decoder families
    python benchmarks/bench_infer.py --memory-seconds --threads 2 \
        --configs base@consistency/consistency:1                     # one-step student
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

SR = 32000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=30.0, help="song length of the speed runs")
    p.add_argument("--configs", nargs="*", default=["ml:20", "dpm-solver-2:8", "euler:10"],
                   help="sampler:steps settings of the speed runs")
    p.add_argument("--memory-seconds", nargs="*", type=float, default=[60.0, 600.0],
                   help="song lengths of the memory runs (one child process each)")
    p.add_argument("--memory-sampler", default="euler:1", help="sampler:steps of memory runs")
    p.add_argument("--memory-preset", help="acoustic preset of memory runs (default --preset)")
    p.add_argument("--memory-hubert-layers", type=int, help="default --hubert-layers")
    p.add_argument("--memory-vocoder", default="nsf-bigvgan", help="nsf-bigvgan or griffinlim")
    p.add_argument("--memory-vocoder-width", type=int, help="default --vocoder-width")
    p.add_argument("--derive", action="store_true",
                   help="time the acoustic model at 1 and 2 steps, derive the --configs")
    p.add_argument("--preset", default="base", help="acoustic-model preset (V2-96 = base)")
    p.add_argument("--hubert-layers", type=int, default=12)
    p.add_argument("--vocoder-width", type=int, default=320,
                   help="NSF-BigVGAN upsample_initial_channel (320 = published)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--workdir", type=Path, help="reuse model files here (default: a temp dir)")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    p.add_argument("--child", type=float, help=argparse.SUPPRESS)  # memory run (internal)
    return p.parse_args(argv)


def rss_mib() -> float:
    """Resident set size now, MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    """Peak resident set size of this process, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_files(work: Path, args: argparse.Namespace) -> dict[str, Path]:
    """Random-weight model files in the published layouts (created once per workdir)."""
    return model_files(work, args.preset, args)


def model_files(work: Path, preset: str, args: argparse.Namespace) -> dict[str, Path]:
    """`make_files` for one acoustic preset."""
    import hubert
    from gvc.export.meta import build_meta, gradsvc_features
    from gvc.fileio import save_torch
    from gvc.models import GradSVC

    overrides = getattr(args, "overrides", None) or {}  # e.g. {"grad.decoder": "flow"}
    tag = "".join(f"-{v}" for v in overrides.values())
    files = {"model": work / f"gvc-{preset}{tag}.pth",
             "hubert": work / f"hubert-{args.hubert_layers}.pt",
             "vocoder": vocoder_file(work, args.vocoder_width)}
    if not files["model"].is_file():
        cfg = bench_config(preset, overrides)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = GradSVC.from_config(cfg)
        meta = build_meta(cfg, gradsvc_features(cfg), kind="model", source={"kind": "bench"},
                          dtype="float32")
        save_torch(files["model"], {"model": model.state_dict(), "gvc": meta})
    if not files["hubert"].is_file():
        hubert.save_random_checkpoint(files["hubert"], num_layers=args.hubert_layers)
    spk = work / "target.spk.npy"
    np.save(spk, (np.random.default_rng(0).standard_normal(256) * 0.05).astype(np.float32))
    files["spk"] = spk
    return files


def vocoder_file(work: Path, width: int) -> Path:
    """A random-weight NSF-BigVGAN file of `width` (upsample_initial_channel), made once."""
    import vocoder

    path = work / f"nsf-{width}.pth"
    if not path.is_file():
        vocoder.save_random_checkpoint(path, upsample_initial_channel=width)
    return path


def bench_config(preset: str, overrides: dict | None = None):
    """The config of a preset (with dotted `overrides`), or of its consistency student for
    `PRESET@consistency`."""
    from gvc.config import load_config
    from gvc.training.distill import DistillOptions, student_config

    name, _, student = preset.partition("@")
    cfg = load_config(name, overrides=overrides or None)
    if student:
        if student != "consistency":
            raise SystemExit(f"{preset}: only PRESET@consistency is known")
        cfg = student_config(cfg, DistillOptions(teacher=Path(name)), name)
    return cfg


def make_song(path: Path, seconds: float) -> Path:
    """Synthetic singing at 32 kHz (cached by length)."""
    from gvc.synthetic_singing import sing, singer_voice

    if not path.is_file():
        sf.write(str(path), sing(singer_voice(0), seconds, SR, seed=0), SR)
    return path


def converter_for(files: dict[str, Path], args: argparse.Namespace, vocoder: str = "nsf-bigvgan"):
    from gvc.device import resolve_runtime
    from gvc.inference import Converter

    runtime = resolve_runtime(args.device, args.precision)
    return Converter.load(files["model"], hubert_path=files["hubert"], vocoder=vocoder,
                          vocoder_ckpt=files["vocoder"] if vocoder == "nsf-bigvgan" else None,
                          runtime=runtime)


def parse_setting(setting: str, default_preset: str) -> tuple[str, str, int, float]:
    """`[PRESET/]SAMPLER:STEPS[:cfg=W]` -> (preset, sampler, steps, cfg strength)."""
    preset, _, rest = setting.rpartition("/")
    parts = rest.split(":")
    cfg = float(parts[2].removeprefix("cfg=")) if len(parts) > 2 else 0.0
    return preset or default_preset, parts[0], int(parts[1]), cfg


def decode_of(conv, setting: str):
    _, sampler, steps, cfg = parse_setting(setting, "")
    return conv.decode_settings(sampler, steps, seed=0, cfg_strength=cfg)


class Stages:
    """The pipeline of `Converter.convert`, one stage at a time, each timed."""

    def __init__(self, conv, files: dict[str, Path], song: Path) -> None:
        from gvc.inference import features as feats
        from gvc.inference.chunks import cut_scores, frame_energy_db, plan_chunks

        self.conv, self.spk = conv, conv.speaker(files["spk"])
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # process CPU seconds (all threads) of the last run
        wav = feats.load_source(song)
        self.seconds = len(wav) / feats.SAMPLE_RATE
        cpu = time.process_time()
        units, f0 = conv.source_features(wav, timings=self.timings)
        self.cpu["features"] = time.process_time() - cpu
        self.vec, self.f0 = feats.align(units, f0, 0.0)
        self.chunking = conv.chunk_settings()
        scores = cut_scores(frame_energy_db(wav, len(self.f0), feats.FRAME_HOP), self.f0,
                            self.chunking.crossfade_frames)
        self.plan = plan_chunks(len(self.f0), self.chunking, scores)
        self.mel = None

    def acoustic(self, setting: str) -> float:
        from gvc.inference.noise import NoiseField
        from gvc.inference.synthesis import run_acoustic

        d = decode_of(self.conv, setting)
        t0, cpu = time.perf_counter(), time.process_time()
        self.mel = run_acoustic(self.conv.model, self.vec, self.f0, self.spk, self.plan,
                                self.chunking.crossfade_frames, sampler=d.sampler, steps=d.steps,
                                temperature=d.temperature, noise=NoiseField(d.seed),
                                runtime=self.conv.runtime, cfg_strength=d.cfg_strength)
        self.cpu["acoustic"] = time.process_time() - cpu
        return time.perf_counter() - t0

    def vocoder(self) -> float:
        from gvc.inference.synthesis import run_vocoder

        t0, cpu = time.perf_counter(), time.process_time()
        run_vocoder(self.conv.vocoder, self.mel, self.f0, 1)
        self.cpu["vocoder"] = time.process_time() - cpu
        return time.perf_counter() - t0


def child(args: argparse.Namespace) -> None:
    """Memory run: print one JSON line with RSS figures."""
    work = args.workdir
    files = make_files(work, args)
    song = make_song(work / f"song-{int(args.child)}s.wav", args.child)
    base = rss_mib()
    conv = converter_for(files, args, args.memory_vocoder)
    loaded = rss_mib()
    t0 = time.perf_counter()
    out = conv.convert(song, conv.speaker(files["spk"]), spk_path=files["spk"],
                       decode=decode_of(conv, args.memory_sampler))
    print(json.dumps({"seconds": args.child, "rss_start_mib": base, "rss_loaded_mib": loaded,
                      "peak_rss_mib": peak_rss_mib(), "wall": time.perf_counter() - t0,
                      "chunks": out.chunks, "timings": out.timings}))


def speed(args: argparse.Namespace, files: dict[str, Path], work: Path) -> list[dict]:
    """Per-stage timings of one song; prints a markdown table (`--derive` applies to families
    with an Euler sampler; others are timed directly)."""
    from gvc.decoders.registry import sampler_names

    song = make_song(work / f"song-{int(args.seconds)}s.wav", args.seconds)
    groups: dict[str, list[str]] = {}
    for setting in args.configs:
        groups.setdefault(parse_setting(setting, args.preset)[0], []).append(setting)
    measured, cpu, first = {}, {}, None
    for preset, settings in groups.items():
        t0 = time.perf_counter()
        conv = converter_for(model_files(work, preset, args) if preset != args.preset else files,
                             args)
        print(f"{preset}: models loaded in {time.perf_counter() - t0:.1f} s")
        st = Stages(conv, files, song)
        first = first or st
        st.acoustic(f"{parse_setting(settings[0], preset)[1]}:1")  # builds kernels, untimed
        if args.derive and "euler" in sampler_names(conv.model.decoder.name):
            one, cpu_one = st.acoustic("euler:1"), st.cpu["acoustic"]
            two, cpu_two = st.acoustic("euler:2"), st.cpu["acoustic"]
            evaluation, encoder = two - one, 2 * one - two
            print(f"acoustic model: encoder+chunking {encoder:.1f} s, one network evaluation "
                  f"{evaluation:.1f} s ({len(st.plan)} chunks)")
            for setting in settings:
                steps = parse_setting(setting, preset)[2]
                measured[setting] = encoder + steps * evaluation
                cpu[setting] = 2 * cpu_one - cpu_two + steps * (cpu_two - cpu_one)
        else:
            for setting in settings:
                measured[setting] = st.acoustic(setting.split("/")[-1])
                cpu[setting] = st.cpu["acoustic"]
    n = first.seconds
    warm = Stages(first.conv, files, make_song(work / "warm.wav", 2.0))
    warm.acoustic(f"{first.conv.model.decoder.default_sampler}:1")
    warm.vocoder()  # first-call overheads of the vocoder
    voc = first.vocoder()
    units, pitch = first.timings["units"], first.timings["pitch"]
    print(f"\n{n:.0f} s song, RTF = compute s / audio s (lower is faster)"
          f"{'; acoustic derived from 1- and 2-step runs' if args.derive else ''}\n")
    print("CPU = process CPU seconds (all threads) / audio s: what the song costs the machine, "
          "and a wall-clock figure that other load on the machine does not inflate\n")
    print("| model | sampler | steps | cfg | units | pitch | acoustic | vocoder | end to end | "
          "CPU: features | CPU: acoustic | CPU: vocoder | CPU: end to end |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for setting, acoustic in measured.items():
        preset, sampler, steps, cfg = parse_setting(setting, args.preset)
        total = units + pitch + acoustic + voc
        c_feat, c_voc, c_ac = first.cpu["features"], first.cpu["vocoder"], cpu.get(setting)
        c_total = f"{(c_feat + c_ac + c_voc) / n:.3f}" if c_ac is not None else "-"
        c_ac_txt = f"{c_ac / n:.3f}" if c_ac is not None else "-"
        print(f"| {preset} | {sampler} | {steps} | {cfg:g} | {units / n:.3f} | {pitch / n:.3f} | "
              f"{acoustic / n:.3f} | {voc / n:.3f} | {total / n:.3f} | {c_feat / n:.3f} | "
              f"{c_ac_txt} | {c_voc / n:.3f} | {c_total} |", flush=True)
        rows.append({"setting": setting, "seconds": n, "units": units, "pitch": pitch,
                     "acoustic": acoustic, "vocoder": voc, "derived": args.derive,
                     "cpu_features": c_feat, "cpu_acoustic": c_ac, "cpu_vocoder": c_voc})
    print(f"\npeak RSS of this process (full chunks of every stage): {peak_rss_mib():.0f} MiB")
    return rows


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child is not None:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        args.workdir = work
        t0 = time.perf_counter()
        files = make_files(work, args)
        print(f"model files ready in {time.perf_counter() - t0:.1f} s "
              f"(device {args.device}, {args.precision}, {torch.get_num_threads()} threads)")
        results: dict = {"speed": [], "memory": []}
        if args.configs:
            results["speed"] = speed(args, files, work)
        if args.memory_seconds:
            print(f"\nmemory: {args.memory_preset or args.preset} acoustic model, "
                  f"{args.memory_hubert_layers or args.hubert_layers}-layer HuBERT, "
                  f"{args.memory_vocoder} vocoder, {args.memory_sampler}; one fresh process "
                  "per length\n")
            print("| song | RSS after loading | peak RSS | growth | wall |")
            print("|---|---|---|---|---|")
            mem = argparse.Namespace(
                **{
                    **vars(args),
                    "preset": args.memory_preset or args.preset,
                    "hubert_layers": args.memory_hubert_layers or args.hubert_layers,
                    "vocoder_width": args.memory_vocoder_width or args.vocoder_width,
                }
            )
            make_files(work, mem)  # here, so the children's peak RSS excludes making them
        for seconds in args.memory_seconds:
            cmd = [sys.executable, __file__, "--child", str(seconds), "--workdir", str(work),
                   "--preset", args.memory_preset or args.preset,
                   "--hubert-layers", str(args.memory_hubert_layers or args.hubert_layers),
                   "--vocoder-width", str(args.memory_vocoder_width or args.vocoder_width),
                   "--memory-vocoder", args.memory_vocoder, "--device", args.device,
                   "--precision", args.precision, "--threads", str(args.threads),
                   "--memory-sampler", args.memory_sampler]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            results["memory"].append(row)
            print(f"| {seconds:.0f} s | {row['rss_loaded_mib']:.0f} MiB | "
                  f"{row['peak_rss_mib']:.0f} MiB | "
                  f"{row['peak_rss_mib'] - row['rss_loaded_mib']:.0f} MiB | "
                  f"{row['wall']:.0f} s |", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
