"""Throughput and memory of HuBERT-Soft unit extraction (full-size, random weights).

Builds the published 12-layer architecture with random weights (or loads `--checkpoint`),
generates synthetic singing at 16 kHz split into several files, and times `units_batch` for
each combination of device, precision, thread count and window setting. Prints one markdown
table row per combination: x-real-time = audio seconds / wall seconds (best of `--repeat`) and
peak RSS of the process so far (plus peak CUDA memory on GPU).

Examples:
    python benchmarks/bench_hubert.py                       # CPU fp32 + bf16, 1 and 2 threads
    python benchmarks/bench_hubert.py --device cuda --precision bf16 fp16 --max-batch 8
    python benchmarks/bench_hubert.py --long-seconds 600 --layers 1 --repeat 1   # memory bound
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

from gvc.device import resolve_runtime
from gvc.synthetic_singing import sing, singer_voice
from hubert import HubertSoft, WindowConfig, load_content_encoder, save_random_checkpoint


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", type=Path, help="bshall-layout file; default: random weights")
    p.add_argument("--layers", type=int, default=12, help="transformer layers of the random model")
    p.add_argument("--seconds", type=float, default=60.0, help="total audio, split over --files")
    p.add_argument("--files", type=int, default=4, help="number of files (lengths 1:1.5:2:2.5…)")
    p.add_argument("--long-seconds", type=float, default=0.0, help="instead: one file this long")
    p.add_argument(
        "--device", nargs="+", default=["cpu", "cuda"], help="cpu and/or cuda (skipped if absent)"
    )
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], help="fp32, bf16, fp16")
    p.add_argument(
        "--threads", nargs="+", type=int, default=[1, 2], help="CPU thread counts to try"
    )
    p.add_argument(
        "--chunk-seconds", nargs="+", type=float, default=[20.0], help="kept seconds per window"
    )
    p.add_argument("--context-seconds", type=float, default=2.0, help="context per window side")
    p.add_argument("--max-batch", type=int, default=8, help="windows per forward pass")
    p.add_argument(
        "--max-batch-seconds", type=float, default=48.0, help="padded audio per forward pass"
    )
    p.add_argument("--repeat", type=int, default=2, help="timed runs per row (best is reported)")
    return p.parse_args()


def make_waves(args: argparse.Namespace) -> list[torch.Tensor]:
    """Synthetic singing, 16 kHz float32: one long file or `--files` files of growing length."""
    if args.long_seconds > 0:
        lengths = [args.long_seconds]
    else:
        weights = [1.0 + 0.5 * i for i in range(args.files)]
        lengths = [args.seconds * w / sum(weights) for w in weights]
    return [
        torch.from_numpy(sing(singer_voice(i), s, sr=16000, seed=i)) for i, s in enumerate(lengths)
    ]


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    """Resident set size now, MiB (Linux /proc; NaN elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def time_row(encoder: HubertSoft, waves: list[torch.Tensor], repeat: int) -> tuple[float, float]:
    """Best wall time and its process CPU time (s) of `units_batch(waves)` over `repeat` runs.

    CPU time shows how much of the wall time the process actually ran (other load on the
    machine stretches wall time but not CPU time).
    """
    encoder.units(waves[0][: 16000 * 2])
    best, best_cpu = float("inf"), float("nan")
    for _ in range(repeat):
        if encoder.runtime.device.type == "cuda":
            torch.cuda.synchronize()
        start, cpu = time.perf_counter(), time.process_time()
        encoder.units_batch(waves)
        if encoder.runtime.device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
        if wall < best:
            best, best_cpu = wall, time.process_time() - cpu
    return best, best_cpu


def main() -> None:
    args = parse_args()
    waves = make_waves(args)
    audio_s = sum(w.shape[0] for w in waves) / 16000
    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint or save_random_checkpoint(
            Path(tmp) / "hubert-soft-random.pt", args.layers
        )
        base = load_content_encoder(path)
    print(
        f"HuBERT-Soft {base.net.num_layers} layers, {len(waves)} file(s), {audio_s:.1f} s audio; "
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"RSS after loading {current_rss_mib():.0f} MiB (peak so far {peak_rss_mib():.0f} MiB)\n"
    )
    print(
        "| device | precision | threads | chunk+ctx s | max batch (windows/s) | x-real-time | wall "
        "s | CPU s "
        "| load avg | peak RSS MiB | peak CUDA MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for device in args.device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            continue
        for precision in args.precision:
            if device == "cpu" and precision == "fp16":
                continue
            runtime = resolve_runtime(device, precision)
            for threads in args.threads if device == "cpu" else [torch.get_num_threads()]:
                torch.set_num_threads(threads)
                for chunk in args.chunk_seconds:
                    windows = WindowConfig(
                        chunk, args.context_seconds, args.max_batch, args.max_batch_seconds
                    )
                    encoder = HubertSoft(base.net, runtime, windows)
                    if device.startswith("cuda"):
                        torch.cuda.reset_peak_memory_stats()
                    wall, cpu = time_row(encoder, waves, args.repeat)
                    cuda_mib = (
                        torch.cuda.max_memory_allocated() / 2**20
                        if device.startswith("cuda")
                        else float("nan")
                    )
                    print(
                        f"| {device} | {precision} | {threads} | "
                        f"{chunk:g}+{args.context_seconds:g} | "
                        f"{args.max_batch}/{args.max_batch_seconds:g}s | {audio_s / wall:.2f} | "
                        f"{wall:.2f} | {cpu:.2f} | {os.getloadavg()[0]:.1f} | "
                        f"{peak_rss_mib():.0f} | {cuda_mib:.0f} |",
                        flush=True,
                    )
            base.net.to("cpu")


if __name__ == "__main__":
    main()
