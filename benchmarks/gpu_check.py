"""One GPU check: environment, HuBERT speed, training steps, `gvc infer` RTF, a DDP smoke test.

Prints one table and writes the same rows as JSON. On one GPU it finishes within 8 minutes:

    python benchmarks/gpu_check.py --json gpu_check.json              # device cuda
    python benchmarks/gpu_check.py --device cpu --quick               # same code, < 1 minute

Rows:
* environment: device name, torch, CUDA and cuDNN versions, GPU count.
* HuBERT-Soft x real time (audio seconds per compute second) in fp32 and bf16 (random weights
  in the published 12-layer layout; `--quick`: 1 layer).
* Training step of V2-96 (`base`; `--quick`: `tiny`) in fp32 and bf16 at batch 8 and 32
  (`--quick`: 1), joint phase, with peak memory (CUDA allocator; CPU: the process's peak
  RSS so far).
* `gvc infer` real-time factor (compute seconds per audio second, lower is faster) for every
  decoder family this build can construct, each with its default sampler and steps (the
  consistency student: one step), random weights; end to end and the acoustic model alone.
* DiffWave at Amphion's size (30 layers x 64 channels, random weights) with the fast 6-step and
  the full 50-step schedule, beside NSF-BigVGAN on the same mel, per precision (`--quick`: a
  4 x 8 DiffWave on 0.5 s).
* NCCL DDP smoke test with 2 processes when 2 GPUs exist (an all-reduce and one DDP step).

Every measurement reuses the single-purpose benchmarks beside this file (`bench_hubert.py`,
`bench_train.py`, `bench_infer.py`), so the check measures what they measure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_diffwave  # noqa: E402 - the sibling benchmarks are scripts, not a package
import bench_hubert  # noqa: E402
import bench_infer  # noqa: E402
import bench_train  # noqa: E402


@dataclass(frozen=True)
class Plan:
    """Sizes of one check: the full GPU run or the quick CPU form."""

    hubert_layers: int
    hubert_seconds: float
    train_preset: str
    batches: tuple[int, ...]
    train_steps: int
    train_warmup: int
    infer_preset: str
    infer_seconds: float
    infer_steps: int | None  # at most this many steps (None: each family's default steps)
    vocoder_width: int
    diffwave_seconds: float  # audio per DiffWave case
    diffwave_size: tuple[int, int] | None  # (layers, channels); None: Amphion's 30 x 64

    @classmethod
    def for_run(cls, quick: bool) -> Plan:
        """`--quick`: tiny models and short inputs; otherwise the published sizes."""
        if quick:
            return cls(1, 2.0, "tiny", (1,), 1, 0, "tiny", 1.0, 2, 64, 0.5, (4, 8))
        return cls(12, 60.0, "base", (8, 32), 5, 1, "base", 30.0, None, 320, 30.0, None)


class Report:
    """Rows of (section, item, value, unit); printed as one table and saved as JSON."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def add(self, section: str, item: str, value: object, unit: str = "") -> None:
        """Record one row and print it at once (a long check shows progress)."""
        self.rows.append({"section": section, "item": item, "value": value, "unit": unit})
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"| {section} | {item} | {shown} | {unit} |", flush=True)


def precisions(device: torch.device) -> list[str]:
    """fp32, plus bf16 where the device computes it (every CPU; CUDA GPUs from Ampere on)."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return ["fp32"]
    return ["fp32", "bf16"]


def environment(report: Report, device: torch.device) -> None:
    """Device, library versions, GPU count."""
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu"
    report.add("env", "device", f"{device} ({name})")
    report.add("env", "torch", torch.__version__)
    report.add("env", "cuda", torch.version.cuda or "none")
    report.add("env", "cudnn", torch.backends.cudnn.version() if cuda else "none")
    report.add("env", "gpus", torch.cuda.device_count() if torch.cuda.is_available() else 0)


def hubert_speed(report: Report, device: torch.device, plan: Plan, work: Path) -> None:
    """HuBERT-Soft x real time per precision."""
    from gvc.device import resolve_runtime
    from hubert import HubertSoft, WindowConfig, load_content_encoder, save_random_checkpoint

    args = argparse.Namespace(long_seconds=plan.hubert_seconds, files=1, seconds=0.0)
    waves = bench_hubert.make_waves(args)
    audio_s = sum(w.shape[0] for w in waves) / 16000
    base = load_content_encoder(save_random_checkpoint(work / "hubert.pt", plan.hubert_layers))
    for precision in precisions(device):
        encoder = HubertSoft(base.net, resolve_runtime(str(device), precision), WindowConfig())
        wall, _ = bench_hubert.time_row(encoder, waves, repeat=2)
        report.add("hubert", f"{plan.hubert_layers} layers {precision}", audio_s / wall, "x RT")


def training_steps(report: Report, device: torch.device, plan: Plan) -> None:
    """Seconds per joint-phase optimizer step and peak memory, per precision and batch."""
    from gvc.device import Precision, Runtime

    for precision in precisions(device):
        for batch in plan.batches:
            runtime = Runtime(device, Precision(precision))
            row = bench_train.time_steps(plan.train_preset, batch, runtime, plan.train_steps,
                                         warmup=plan.train_warmup, joint=True)
            what = f"{plan.train_preset} batch {batch} {precision}"
            report.add("train", f"{what} step", row["s_per_step"], "s")
            if "peak_mem_gib" in row:
                report.add("train", f"{what} peak memory", row["peak_mem_gib"], "GiB")
            else:
                report.add("train", f"{what} peak RSS", bench_hubert.peak_rss_mib() / 1024, "GiB")
            if device.type == "cuda":
                torch.cuda.empty_cache()


def decoder_families() -> list[tuple[str, str, int]]:
    """(family, its default sampler, its default steps) of every decoder family registered in
    this build, so new families are timed as soon as they register (one that cannot be built
    from the preset alone is reported as skipped)."""
    from gvc.decoders.base import decoder_family, decoder_names

    families = [decoder_family(name) for name in decoder_names()]
    return [(f.name, f.default_sampler, f.default_steps) for f in families]


def infer_rtf(report: Report, device: torch.device, plan: Plan, work: Path) -> None:
    """`Converter.convert` (what `gvc infer` runs) on synthetic singing, per decoder family."""
    from gvc.errors import ConfigError

    song = bench_infer.make_song(work / "song.wav", plan.infer_seconds)
    for family, sampler, default_steps in decoder_families():
        args = argparse.Namespace(preset=plan.infer_preset, hubert_layers=plan.hubert_layers,
                                  vocoder_width=plan.vocoder_width, device=str(device),
                                  precision="fp32",
                                  overrides={"grad.decoder": family, "infer.sampler": sampler})
        try:
            files = bench_infer.make_files(work, args)
        except ConfigError as exc:  # a family with samplers but no model in this build
            report.add("infer", f"{family} ({sampler})", f"skipped: {exc}")
            continue
        conv = bench_infer.converter_for(files, args)
        steps = min(default_steps, plan.infer_steps or default_steps)
        decode = conv.decode_settings(sampler, steps, seed=0)
        spk = conv.speaker(files["spk"])
        conv.convert(song, spk, spk_path=files["spk"], decode=decode)  # first-call overheads
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = conv.convert(song, spk, spk_path=files["spk"], decode=decode)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rtf = (time.perf_counter() - start) / plan.infer_seconds
        what = f"{plan.infer_preset} {family} {sampler}:{steps}"
        report.add("infer", f"{what} RTF", rtf, "s/s")
        report.add("infer", f"{what} acoustic RTF", out.timings["acoustic"] / plan.infer_seconds,
                   "s/s")


def diffwave_rtf(report: Report, device: torch.device, plan: Plan, work: Path) -> None:
    """DiffWave (6 and 50 steps) and NSF-BigVGAN on the same mel, per precision."""
    ckpt = bench_infer.vocoder_file(work, plan.vocoder_width)
    size = {} if plan.diffwave_size is None else {"residual_layers": plan.diffwave_size[0],
                                                  "residual_channels": plan.diffwave_size[1]}
    for precision in precisions(device):
        for case in ("nsf-bigvgan", "diffwave-6", "diffwave-50"):
            row = bench_diffwave.time_case(case, plan.diffwave_seconds, device=str(device),
                                           precision=precision, ckpt=ckpt, size=size)
            report.add("vocoder", f"{case} {precision} on {row['audio_s']:g} s RTF", row["rtf"],
                       "s/s")


DDP_WORKER = """
import os, time, torch, torch.distributed as dist
dist.init_process_group("nccl")
rank = dist.get_rank()
torch.cuda.set_device(rank)
x = torch.full((1024,), float(rank + 1), device="cuda")
dist.all_reduce(x)
assert float(x[0]) == 3.0, float(x[0])
net = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(64, 64).cuda(), device_ids=[rank])
net(torch.randn(8, 64, device="cuda")).square().mean().backward()
grads = [p.grad.clone() for p in net.parameters()]
for g in grads:
    ref = g.clone()
    dist.broadcast(ref, 0)
    assert torch.equal(g, ref), "gradients differ across ranks"
dist.destroy_process_group()
"""


def ddp_smoke(report: Report, device: torch.device, work: Path) -> None:
    """Two NCCL processes: all-reduce and one DDP backward with synced gradients."""
    if device.type != "cuda" or torch.cuda.device_count() < 2:
        report.add("ddp", "nccl 2 processes", "skipped (needs 2 GPUs)")
        return
    script = work / "ddp_worker.py"
    script.write_text(textwrap.dedent(DDP_WORKER))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(script)], capture_output=True, text=True,
                          timeout=180)
    ok = "ok" if proc.returncode == 0 else f"FAILED: {proc.stderr.strip().splitlines()[-1:]}"
    report.add("ddp", "nccl 2 processes", f"{ok} in {time.perf_counter() - start:.1f} s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes (the CPU form, < 1 minute)")
    p.add_argument("--json", type=Path, default=Path("gpu_check.json"), help="where rows go")
    p.add_argument("--workdir", type=Path, help="model files here (default: a temp folder)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every section; returns 0 (a failed section is a row, not a crash)."""
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available; use --device cpu --quick")
        return 2
    plan = Plan.for_run(args.quick)
    report = Report()
    started = time.perf_counter()
    print("| section | item | value | unit |\n|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        environment(report, device)
        sections = {"hubert": lambda: hubert_speed(report, device, plan, work),
                    "train": lambda: training_steps(report, device, plan),
                    "infer": lambda: infer_rtf(report, device, plan, work),
                    "vocoder": lambda: diffwave_rtf(report, device, plan, work),
                    "ddp": lambda: ddp_smoke(report, device, work)}
        for name, run in sections.items():
            try:
                run()
            except Exception as exc:  # noqa: BLE001 - report it and run the other sections
                report.add("error", name, f"{type(exc).__name__}: {exc}")
    report.add("total", "wall time", time.perf_counter() - started, "s")
    payload = {"argv": sys.argv[1:], "host": platform.node(), "pid": os.getpid(),
               "quick": args.quick, "rows": report.rows}
    args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
