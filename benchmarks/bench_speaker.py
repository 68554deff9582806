"""Benchmark of the speaker encoders on CPU: x-real-time and peak RSS.

Each encoder runs in its own fresh process (so its peak RSS is its own): the `lstm` encoder with
a full-size random checkpoint (lstm_dim 768, the published size; random weights cost the same
as trained ones) and `resemblyzer` with its bundled weights. Input is synthetic 16 kHz singing.
After one warm-up call, `embed` is timed per utterance; for `lstm` the front end (trim, STFT,
mel) and the network are also timed apart, and `embed_batch` over all utterances.

The LSTM encoder's network cost is fixed per utterance (10 windows x 250 frames) once the
utterance is longer than 4 s, so its x-real-time grows with the utterance length.
Usage: python benchmarks/bench_speaker.py [--seconds 5 20] [--count 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import tempfile
import time
from datetime import date
from pathlib import Path


def _bench(kind: str, seconds: float, count: int, threads: int | None, queue: mp.Queue) -> None:
    import torch

    from gvc.synthetic_singing import sing, singer_voice
    from speaker import LstmSpeakerEncoder, ResemblyzerEncoder, save_random_checkpoint

    if threads:
        torch.set_num_threads(threads)
    wavs = [sing(singer_voice(i % 4), seconds, sr=16000, seed=i) for i in range(count)]
    audio = seconds * count
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        if kind == "lstm":
            enc = LstmSpeakerEncoder.from_folder(save_random_checkpoint(Path(tmp), lstm_dim=768))
        else:
            enc = ResemblyzerEncoder()
        load = time.perf_counter() - t0
    enc.embed(wavs[0])  # warm-up: lazy imports, numba JIT, first LSTM call
    t0 = time.perf_counter()
    for w in wavs:
        enc.embed(w)
    embed = time.perf_counter() - t0
    row = {"kind": kind, "seconds": seconds, "count": count, "load_s": load, "embed_s": embed}
    if kind == "lstm":
        t0 = time.perf_counter()
        mels = [enc.mel(w) for w in wavs]
        row["frontend_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for m in mels:
            enc.embed_mel(m)
        row["network_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        enc.embed_batch(wavs)
        row["batch_s"] = time.perf_counter() - t0
    row["xrt"] = audio / embed
    row["threads"] = torch.get_num_threads()
    row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(row)


def run_isolated(kind: str, seconds: float, count: int, threads: int | None) -> dict:
    """Run one measurement in a fresh spawned process and return its result row."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_bench, args=(kind, seconds, count, threads, queue))
    proc.start()
    row = queue.get()
    proc.join()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, nargs="+", default=[5.0, 20.0])
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    ap.add_argument("--encoders", nargs="+", default=["lstm", "resemblyzer"])
    args = ap.parse_args()

    print(
        f"# {platform.node()} {platform.processor() or platform.machine()}, {date.today()}, "
        f"CPU, {args.count} utterances per row"
    )
    print(
        "| encoder | utt s | threads | load s | ms / utt | x real time | "
        "front end ms / utt | network ms / utt | embed_batch x rt | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in args.encoders:
        for seconds in args.seconds:
            r = run_isolated(kind, seconds, args.count, args.threads)
            per = 1000 / r["count"]
            fe = f"{r['frontend_s'] * per:.0f}" if "frontend_s" in r else "-"
            net = f"{r['network_s'] * per:.0f}" if "network_s" in r else "-"
            batch = f"{seconds * r['count'] / r['batch_s']:.0f}x" if "batch_s" in r else "-"
            print(
                f"| {kind} | {seconds:g} | {r['threads']} | {r['load_s']:.2f} | "
                f"{r['embed_s'] * per:.0f} | {r['xrt']:.0f}x | {fe} | {net} | {batch} | "
                f"{r['peak_rss_mib']:.0f} |"
            )


if __name__ == "__main__":
    main()
