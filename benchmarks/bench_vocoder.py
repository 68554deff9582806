"""Speed and memory of the full-size NSF-BigVGAN generator (random weights, published layout).

Each case runs in its own Python process so that its peak resident memory is its own:

    python benchmarks/bench_vocoder.py              # 30 s of audio, CPU (+ CUDA if present)
    python benchmarks/bench_vocoder.py --seconds 10 --threads 1 --device cpu
    python benchmarks/bench_vocoder.py --json results.json

Reported per case: seconds of wall time per second of audio (RTF, lower is better), x-real-time
(audio seconds per wall second), peak RSS of the process and, on CUDA, peak allocated GPU memory.
Cases:
* `default`: `load_nsf_bigvgan` as shipped (folded weights, 4 s chunks with 0.32 s context);
* `whole`: the same in one pass (no chunking);
* `original-style`: an approximation of Grad-SVC's inference path on this code: weight norm
  recomputed every forward (Grad-SVC calls `eval()` without removing it), `F.pad(replicate)`
  borders, untiled depthwise filters, one pass.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES_CPU = ("default", "whole", "original-style")
CASES_CUDA = ("default", "whole")


def _inputs(seconds: float, device: str):
    import torch

    frames = int(round(seconds * 100))
    g = torch.Generator().manual_seed(0)
    mel = torch.randn(1, 100, frames, generator=g) * 2.0 - 6.0
    t = torch.arange(frames) / 100.0
    f0 = 220.0 * 2 ** (torch.sin(2 * torch.pi * 0.2 * t) / 2)  # slow glide around A3
    f0[(t % 4.0) > 3.5] = 0.0  # a rest every 4 s
    return mel.to(device), f0.unsqueeze(0).to(device)


def _original_style(model) -> None:
    """Undo this project's CPU optimisations (see the module docstring)."""
    import torch.nn.functional as F
    from torch.nn.utils import parametrizations

    import vocoder.alias

    for _, module in model.weight_norm_modules():
        parametrizations.weight_norm(module, name="weight", dim=0)
    vocoder.alias.TILE = 1 << 40
    vocoder.alias._replicate_pad = lambda x, left, right: F.pad(x, (left, right), mode="replicate")


def worker(args: argparse.Namespace) -> dict:
    """Run one case in this process and return its measurements."""
    import torch

    from gvc.device import resolve_runtime
    from vocoder import load_nsf_bigvgan

    if args.threads:
        torch.set_num_threads(args.threads)
    runtime = resolve_runtime(args.device, args.precision)
    vocoder = load_nsf_bigvgan(args.ckpt, runtime=runtime)
    if args.case == "original-style":
        _original_style(vocoder.model)
    chunk = "default" if args.case == "default" else None
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    warm_mel, warm_f0 = _inputs(1.0, args.device)
    vocoder(warm_mel, warm_f0, chunk_frames=None)
    mel, f0 = _inputs(args.seconds, args.device)
    cuda = runtime.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        gen = torch.Generator(device="cpu").manual_seed(0)
        audio = vocoder(mel, f0, generator=gen, chunk_frames=chunk)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    assert audio.shape[-1] == mel.shape[-1] * 320
    best = min(times)
    return {
        "case": args.case,
        "device": str(runtime.device),
        "precision": args.precision,
        "threads": torch.get_num_threads(),
        "audio_s": args.seconds,
        "wall_s_best": round(best, 3),
        "wall_s_median": round(statistics.median(times), 3),
        "rtf": round(best / args.seconds, 4),
        "cpu_s_per_audio_s": round(min(cpu_times) / args.seconds, 4),
        "x_realtime": round(args.seconds / best, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_load_mb": round(rss_loaded, 1),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="audio length per run")
    parser.add_argument("--device", default="all", help="cpu, cuda, or all (cpu + cuda if present)")
    parser.add_argument("--precision", default="fp32", help="fp32 | bf16 | fp16 (fp16: CUDA only)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch default)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--ckpt", type=Path, help="generator checkpoint (default: random, width 320)"
    )
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args)))  # the parent process reads this line
        return

    import torch

    from vocoder import save_random_checkpoint

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        devices.remove("cuda")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.ckpt or save_random_checkpoint(
            Path(tmp) / "nsf_bigvgan_random_320.pth", 320, seed=0
        )
        for device in devices:
            for case in CASES_CUDA if device == "cuda" else CASES_CPU:
                cmd = [
                    sys.executable, __file__, "--worker", "--case", case, "--device", device,
                    "--seconds", str(args.seconds), "--precision", args.precision,
                    "--threads", str(args.threads), "--repeats", str(args.repeats),
                    "--ckpt", str(ckpt),
                ]  # fmt: skip
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    print(f"{device}/{case} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                    continue
                row = json.loads(done.stdout.strip().splitlines()[-1])
                results.append(row)
                print(
                    f"{row['device']:>6} {row['case']:<13} threads={row['threads']} "
                    f"{row['audio_s']:.0f} s audio: best {row['wall_s_best']:.2f} s "
                    f"(RTF {row['rtf']:.3f}, {row['x_realtime']:.1f}x real time, "
                    f"CPU {row['cpu_s_per_audio_s']:.3f} s/s), "
                    f"peak RSS {row['peak_rss_mb']:.0f} MB"
                    + (f", peak CUDA {row['peak_cuda_mb']:.0f} MB" if row["peak_cuda_mb"] else "")
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
