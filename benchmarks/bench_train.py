"""Training-step speed of the acoustic model (what `gvc train` runs per optimizer step).

One step = Grad-SVC losses (prior + SSIM + GRL speaker, + diffusion in the joint phase), backward,
encoder/decoder gradient clipping, Adam update. Inputs are random tensors with Grad-SVC's shapes:
batch items of 2.5-5 s (250-500 frames at 100 fps, padded to a multiple of 4), decoder segments of
200 frames.

    python benchmarks/bench_train.py                       # CPU: base (V2-96) and tiny
    python benchmarks/bench_train.py --device cuda         # + CUDA fp32 vs bf16, batch 8 and 32
    python benchmarks/bench_train.py --json out.json

Reference: Grad-SVC's own trainer needs about 23 s per V2-96 step (batch 8) on the 2-core CPU
machine this project is developed on. `cpu_s_per_step` (process CPU time) helps to read wall
times taken on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from types import SimpleNamespace

import torch

from gvc.config import load_config
from gvc.device import Precision, Runtime
from gvc.models import GradSVC
from gvc.models.embeddings import fix_len_compatibility
from gvc.training import optim
from gvc.training.objective import AcousticObjective
from gvc.training.state import seed_step


def make_batch(batch: int, cfg, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs: lengths uniform in [250, 500] frames, padded like the collate function."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(250, 501, (batch,), generator=g)
    lengths[0] = 500
    t = fix_len_compatibility(int(lengths.max()))
    mask = (torch.arange(t)[None] < lengths[:, None]).float()
    return {
        "vec": torch.randn(batch, t, cfg.grad.n_vecs, generator=g) * mask[..., None],
        "pit": (100 + 300 * torch.rand(batch, t, generator=g)) * mask,
        "spk": torch.randn(batch, cfg.grad.n_spks, generator=g),
        "mel": (-6 + 2 * torch.randn(batch, cfg.grad.n_mels, t, generator=g)) * mask[:, None],
        "lengths": lengths,
    }


def time_steps(preset: str, batch: int, runtime: Runtime, steps: int, warmup: int,
               joint: bool) -> dict[str, float]:
    """Median seconds per optimizer step (and peak CUDA memory)."""
    cfg = load_config(preset)
    torch.manual_seed(0)
    model = GradSVC.from_config(cfg).to(runtime.device).train()
    objective = AcousticObjective(cfg, {})
    module = objective.loss_module(model)
    opt = optim.build_optimizer(model, cfg.train, cfg.train.learning_rate)
    groups = objective.clip_groups(model)
    data = SimpleNamespace(**{k: v.to(runtime.device) for k, v in make_batch(batch, cfg).items()})
    cuda = runtime.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(runtime.device)
    times, cpu_times = [], []
    for i in range(warmup + steps):
        gen = seed_step(0, i)
        if cuda:
            torch.cuda.synchronize(runtime.device)
        t0, c0 = time.perf_counter(), time.process_time()
        with runtime.autocast():
            losses = module(data, joint, gen)
        total = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        total.backward()
        optim.clip_gradients(groups, cfg.train.grad_clip)
        opt.step()
        float(total.detach())  # the loop reads the losses every step
        if cuda:
            torch.cuda.synchronize(runtime.device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    out = {"preset": preset, "batch": batch, "device": str(runtime.device),
           "precision": runtime.precision.value, "phase": "joint" if joint else "encoder-only",
           "s_per_step": statistics.median(times), "steps_per_s": 1 / statistics.median(times),
           "cpu_s_per_step": statistics.median(cpu_times), "timed_steps": len(times),
           "threads": torch.get_num_threads()}
    if cuda:
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated(runtime.device) / 2**30
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per case")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--only", default=None, help="run only this preset (base or tiny)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    if args.device == "cpu":
        cpu = Runtime(torch.device("cpu"))
        cases = [("base", 8, True), ("base", 8, False), ("tiny", 4, True), ("tiny", 8, True)]
        for preset, batch, joint in cases:
            if args.only and preset != args.only:
                continue
            results.append(time_steps(preset, batch, cpu, args.steps, args.warmup, joint))
            print(json.dumps(results[-1]), flush=True)
    else:
        dev = torch.device(args.device)
        for precision in (Precision.FP32, Precision.BF16):
            for batch in (8, 32):
                for preset in ("base", "tiny"):
                    if args.only and preset != args.only:
                        continue
                    rt = Runtime(dev, precision)
                    results.append(time_steps(preset, batch, rt, max(args.steps, 10),
                                              max(args.warmup, 3), True))
                    print(json.dumps(results[-1]), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"threads": torch.get_num_threads(), "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
