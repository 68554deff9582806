"""Benchmark of the audio prepare steps (resample, extract-mel, extract-f0).

Generates a multi-singer synthetic corpus (default ~10 minutes), runs each step through the real
CLI with --jobs 1 and --jobs 2, and reports x-real-time, the no-op re-run time and the peak RSS of
the largest process. A second corpus of many short files measures the no-op re-run over 1,000
files. Usage: python benchmarks/bench_prepare.py [--minutes 10] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from gvc.synthetic_singing import write_corpus

_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def run(cwd: Path, *args: str) -> tuple[float, float]:
    """Run `gvc ARGS` in `cwd`; returns (wall seconds, peak RSS MiB of the largest process)."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "gvc", *args, "-q"],
        cwd=cwd, capture_output=True, text=True, check=True,
    )
    wall = time.perf_counter() - start
    rc, rss = out.stdout.split()
    if rc != "0":
        raise RuntimeError(f"gvc {' '.join(args)} exited {rc}")
    return wall, int(rss) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seconds-per-file", type=float, default=5.0)
    ap.add_argument(
        "--noop-files", type=int, default=1000, help="files of the no-op test (0: skip it)"
    )
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="gvc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    singers = 4
    per_singer = max(1, round(args.minutes * 60 / args.seconds_per_file / singers))
    write_corpus(
        work / "data_raw", singers=singers, utterances=per_singer, seconds=args.seconds_per_file
    )
    audio = singers * per_singer * args.seconds_per_file
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {date.today()}: "
          f"{singers * per_singer} files, {audio / 60:.1f} min of 44.1 kHz audio")
    print("| step | jobs | wall s | x real time | no-op re-run s | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    steps = [
        ("resample", lambda d: ["resample", "--data", d]),
        ("extract-mel", lambda d: ["extract-mel", "-w", f"{d}/waves-32k", "-s", f"{d}/mel"]),
        ("extract-f0", lambda d: ["extract-f0", "-w", f"{d}/waves-16k", "-p", f"{d}/pitch"]),
    ]
    for jobs in (1, 2):
        data = f"data_j{jobs}"
        for name, argv in steps:
            wall, rss = run(work, *argv(data), "-j", str(jobs))
            noop, _ = run(work, *argv(data), "-j", str(jobs))
            print(
                f"| {name} | {jobs} | {wall:.1f} | {audio / wall:.0f}x | {noop:.2f} | {rss:.0f} |"
            )

    if args.noop_files >= 10:  # 0 skips this part
        many = work / "many"
        write_corpus(many / "data_raw", singers=10, utterances=args.noop_files // 10, seconds=0.5)
        run(many, "resample", "-j", "2")
        noop, rss = run(many, "resample", "-j", "2")
        print(
            f"\nno-op `gvc resample` over {args.noop_files} files: {noop:.2f} s (process start "
            f"included), peak RSS {rss:.0f} MiB"
        )
    if args.workdir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
