"""Every decoder family, sampler and NFE side by side, scored by `gvc eval`.

    python benchmarks/bench_decoders.py --quick                 # a few minutes on 2 CPU cores
    python benchmarks/bench_decoders.py --steps 3000 --nfe 4 8 16 32
    python benchmarks/bench_decoders.py --quick --write BENCHMARKS.md

What it does, under `--work` (default `bench-decoders/`; models and data are reused by reruns):

1. The demo's synthetic multi-singer corpus, prepared exactly as `gvc demo` does (a random
   2-layer HuBERT-Soft when the published one is absent).
2. One tiny model per decoder family that has samplers in `gvc.decoders.registry`, trained for
   `--steps` with `grad.decoder` set to the family (new families appear here by themselves).
3. New phrases of every training singer (same generator, unseen seeds) are converted with every
   sampler of the family at every `--nfe`: once to their own singer (reconstruction: the real
   mel and F0 exist) and once to `--target` (conversion; the Griffin-Lim preview vocoder).
4. `gvc eval`'s library scores both: F0 RMSE, FPC and V/UV F1 of the reconstruction against the
   real phrase, the model mel's L1 to the real mel (before the vocoder), and the resemblyzer
   similarity of the conversions to the target singer (the sources' own similarity is printed as
   the baseline). RTF = compute seconds / audio seconds of the conversions.

The table is printed; `--write FILE` replaces this script's `quick` or `full` section of FILE
(between its markers; appended when absent).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from gvc.audio import write_wav_float
from gvc.config import load_config
from gvc.dataset.index import build_index
from gvc.decoders.registry import get_sampler, sampler_names
from gvc.demo import DemoSettings, _prepare
from gvc.evaluation import Pair, score_conversion, score_reconstruction
from gvc.evaluation.metrics import mel_l1, summarise
from gvc.export.model_file import export_checkpoint
from gvc.inference.batch import write_conversion
from gvc.inference.converter import Converter
from gvc.layout import DataTree
from gvc.synthetic_singing import sing, singer_voice
from gvc.training import TrainOptions, train
from speaker import load_embedding, load_speaker_encoder
from vocoder.mel import mel_spectrogram


@dataclass
class Row:
    """One line of the table (means over the held-out phrases)."""

    family: str
    sampler: str
    nfe: int
    rtf: float
    f0_rmse: float
    fpc: float
    vuv_f1: float
    spk_sim: float
    mel_l1: float


def families() -> list[str]:
    """Decoder families with at least one registered sampler, in registration order."""
    return list(dict.fromkeys(get_sampler(name).decoder for name in sampler_names()))


def train_family(work: Path, tree: DataTree, family: str, steps: int, console: Console) -> Path:
    """Train (or resume, or reuse) the tiny preset with `grad.decoder = family`; the model file."""
    model = work / "models" / f"{family}-{steps}.gvc.pth"
    if model.is_file():
        return model
    files = work / "files"
    if not (files / "train.txt").is_file():
        build_index(tree, files, valid_count=1, seed=37)
    cfg = load_config("tiny", overrides={
        "grad.decoder": family, "infer.sampler": sampler_names(family)[0],
        "train.full_epochs": max(steps, 20), "train.segment_frames": 100})
    result = train(TrainOptions(
        config=cfg, config_name=f"tiny-{family}", data=tree.root, run_dir=work / "logs" / family,
        train_files=files / "train.txt", valid_files=files / "valid.txt", max_steps=steps,
        device="cpu", valid_every=max(steps, 1), console=console))
    if result.checkpoint is None or result.reason == "interrupted":
        raise SystemExit(f"training of {family} stopped ({result.reason}); rerun to resume")
    export_checkpoint(result.checkpoint, model, force=True)
    return model


def heldout(work: Path, singers: int, seconds: float) -> dict[str, Path]:
    """One unseen phrase per training singer: singer name -> 32 kHz wav."""
    clips = {}
    for s in range(singers):
        path = work / "heldout" / f"singer{s:02d}.wav"
        if not path.is_file():
            write_wav_float(path, sing(singer_voice(s), seconds, sr=32000, seed=424242 + s), 32000)
        clips[f"singer{s:02d}"] = path
    return clips


def real_mel(path: Path) -> np.ndarray:
    """The project's log-mel of a 32 kHz file."""
    from gvc.audio import load_audio

    return mel_spectrogram(torch.from_numpy(load_audio(path, 32000))).numpy()


def bench_family(work: Path, tree: DataTree, family: str, model: Path, hubert: Path,
                 clips: dict[str, Path], target: str, nfes: list[int],
                 encoder) -> tuple[list[Row], float]:
    """Convert and score every sampler x NFE of one family; also the sources' own similarity
    to the target (the baseline of the speaker-similarity column)."""
    converter = Converter.load(model, hubert_path=hubert, vocoder="griffinlim")
    spk = {s: converter.speaker(tree.singer_path(s)) for s in clips}
    target_vec = load_embedding(tree.singer_path(target))
    mels = {s: real_mel(p) for s, p in clips.items()}
    rows = []
    for sampler in sampler_names(family):
        for nfe in nfes:
            decode = converter.decode_settings(sampler, nfe, seed=1234)
            out = work / "out" / family / f"{sampler}-{nfe}"
            recon, conv, l1 = [], [], []
            compute = audio = 0.0
            for singer, clip in clips.items():
                for to, pairs in ((singer, recon), (target, conv)):
                    if pairs is conv and singer == target:
                        continue
                    res = converter.convert(clip, spk[to], spk_path=tree.singer_path(to),
                                            decode=decode)
                    path = out / ("recon" if pairs is recon else "conv") / f"{singer}.gvc.wav"
                    write_conversion(res, path, converter, decode)
                    pairs.append(Pair(singer, clip, path))
                    compute += sum(v for k, v in res.timings.items() if k != "load")
                    audio += res.seconds
                    if pairs is recon:
                        l1.append(mel_l1(mels[singer], res.mel.numpy()))
            r = score_reconstruction(recon)
            c = score_conversion(conv, target_vec, encoder)
            mean = {k: summarise([row[k] for row in r.rows]).mean
                    for k in ("f0_rmse_cents", "fpc", "vuv_f1")}
            rows.append(Row(family, sampler, nfe, compute / audio, mean["f0_rmse_cents"],
                            mean["fpc"], mean["vuv_f1"],
                            summarise([row["spk_sim"] for row in c.rows]).mean,
                            float(np.mean(l1))))
            print(f"  {family} {sampler} x{nfe}: done", flush=True)
    return rows, summarise([row["src_spk_sim"] for row in c.rows]).mean


def table(rows: list[Row]) -> str:
    """The markdown table."""
    lines = ["| family | sampler | NFE | RTF | F0 RMSE (cents) | FPC | V/UV F1 | "
             "spk sim to target | mel L1 to real |", "|---" * 9 + "|"]
    for r in rows:
        lines.append(f"| {r.family} | `{r.sampler}` | {r.nfe} | {r.rtf:.3f} | {r.f0_rmse:.1f} | "
                     f"{r.fpc:.3f} | {r.vuv_f1:.3f} | {r.spk_sim:.3f} | {r.mel_l1:.3f} |")
    return "\n".join(lines)


def write_section(path: Path, text: str, name: str) -> None:
    """Replace the section `name` of `path` (between `<!-- bench_decoders:NAME:start/end -->`
    markers), or append it."""
    from gvc.fileio import save_text

    start, end = (f"<!-- bench_decoders:{name}:{edge} -->" for edge in ("start", "end"))
    old = path.read_text() if path.is_file() else ""
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in old and end in old:
        head, rest = old.split(start, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    save_text(path, new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("bench-decoders"))
    ap.add_argument("--quick", action="store_true",
                    help="2 singers x 3 clips of 3 s, 30 training steps, NFE 4 and 10, 2 s phrases")
    ap.add_argument("--steps", type=int, default=400, help="training steps per family")
    ap.add_argument("--nfe", type=int, nargs="+", default=[4, 8, 16, 32])
    ap.add_argument("--target", default="singer01", help="target singer of the conversions")
    ap.add_argument("--write", type=Path, help="put the table into this markdown file")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a shared 2-core machine, 2 threads ran 2.7x slower)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    settings = DemoSettings(singers=3, utterances=4, seconds=3.0, jobs=2)
    seconds = 3.0
    if args.quick:
        settings = DemoSettings(singers=2, utterances=3, seconds=3.0, jobs=2)
        args.steps, args.nfe, seconds = 30, [4, 10], 2.0
    torch.set_num_threads(args.threads)
    work = args.work.resolve()
    console = Console()
    start = time.perf_counter()
    hubert = work / "weights" / "hubert-soft-random.pt"
    if not hubert.is_file():
        from hubert import save_random_checkpoint

        save_random_checkpoint(hubert, num_layers=2)
    tree, ok = _prepare(work, settings, hubert, console)
    if not ok:
        raise SystemExit("data preparation failed; see above")
    clips = heldout(work, settings.singers, seconds)
    encoder = load_speaker_encoder("resemblyzer")
    rows, baseline = [], float("nan")
    for family in families():
        model = train_family(work, tree, family, args.steps, console)
        found, baseline = bench_family(work, tree, family, model, hubert, clips, args.target,
                                       args.nfe, encoder)
        rows += found
    text = table(rows)
    header = (f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f} at the end), "
              f"{torch.get_num_threads()} torch thread(s), no GPU; tiny preset trained "
              f"{args.steps} steps per family on {settings.singers} synthetic singers x "
              f"{settings.utterances} x {settings.seconds:g} s; {len(clips)} held-out "
              f"{seconds:g} s phrases; random 2-layer HuBERT, Griffin-Lim vocoder; "
              f"{time.perf_counter() - start:.0f} s wall. Similarity of the unconverted "
              f"sources to {args.target}: {baseline:.3f}.")
    print(f"\n{header}\n\n{text}")
    if args.write:
        write_section(args.write, f"{header}\n\n{text}", "quick" if args.quick else "full")


if __name__ == "__main__":
    main()
