"""Quality versus number of network evaluations (NFE) for every sampler of the score decoder.

Needs a trained model and its data tree; the quickstart demo makes both:

    gvc demo --out demo --steps 3000              # tiny preset, 3000 steps (about 35 min)
    python benchmarks/bench_nfe.py --demo demo    # this table

For each held-out utterance of `<demo>/files/valid.txt` (and, with --items, further training items)
the encoder gives mu; one starting state x_T = mu + N(0, I) / temperature is drawn per utterance and
seed, and every sampler starts from that same x_T. Two figures per sampler and NFE, masked mean
absolute error over mel bins and frames (log-mel units):

* `L1 vs ODE ref`: against the probability-flow ODE solved with `--reference-steps` Euler steps
  (default 1000) from the same x_T. The deterministic samplers (euler, dpm-solver-k) all approximate
  this solution, so this is their discretisation error. `ml` and `sde` inject noise along the way
  and converge to a different (random) sample; their column mixes discretisation error with that
  randomness and is shown for completeness only.
* `L1 vs data`: against the utterance's real mel, a fair figure for every sampler.

The reference's own accuracy is printed too (dpm-solver-3 at the reference step count against it,
on the first utterance).

A sampler may carry keyword options after a colon, to compare variants of one solver:

    python benchmarks/bench_nfe.py --samplers euler dpm-solver-2 \
        dpm-solver-2:predict=data dpm-solver-2:grid=time-uniform,t_end=0.01
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gvc.dataset.index import read_index
from gvc.decoders.registry import parse_sampler_options
from gvc.decoders.score import prior_sample
from gvc.export.model_file import load_exported
from gvc.models import fix_len_compatibility
from gvc.training.data import usable_frames

SAMPLERS = ["ml", "euler", "sde", "dpm-solver-1", "dpm-solver-2", "dpm-solver-3"]


@dataclass
class Case:
    """One utterance ready for the decoder (T frames, a multiple of 4)."""

    name: str
    mel: torch.Tensor  # [1, n_mels, T] real log-mel
    mu: torch.Tensor  # [1, n_mels, T]
    mask: torch.Tensor  # [1, 1, T]
    spk_emb: torch.Tensor  # [1, n_embs]


def _resolve(path: Path, demo: Path) -> Path:
    """Index paths are relative to where the index was built (the demo's parent or the cwd)."""
    for candidate in (path, demo.parent / path, demo / path):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{path}: not found (index of {demo}); run `gvc demo --out {demo}` first"
    )


@torch.no_grad()
def load_cases(model, demo: Path, items: int, max_frames: int) -> list[Case]:
    """Held-out utterances first, then training ones, up to `items`; head-cropped to max_frames."""
    entries = read_index(demo / "files" / "valid.txt")
    entries += read_index(demo / "files" / "train.txt")
    cases = []
    for mel_p, vec_p, pit_p, spk_p in entries[:items]:
        mel = torch.load(_resolve(mel_p, demo), map_location="cpu", weights_only=True).float()
        vec = np.repeat(np.load(_resolve(vec_p, demo)).astype(np.float32), 2, axis=0)
        pit = np.load(_resolve(pit_p, demo)).astype(np.float32)
        spk = torch.from_numpy(np.load(_resolve(spk_p, demo)).astype(np.float32))[None]
        t = min(usable_frames(mel.shape[1], vec.shape[0] // 2, len(pit)), max_frames)
        t -= t % 4
        vec_t = torch.from_numpy(vec[:t])[None]
        pit_t = torch.from_numpy(pit[:t])[None]
        assert fix_len_compatibility(t) == t
        state = model.encode_full(vec_t, pit_t, spk, torch.tensor([t]))
        cases.append(Case(mel_p.stem, mel[None, :, :t], state.mu, state.mask, state.spk_emb))
    return cases


def parse_sampler(text: str) -> tuple[str, dict]:
    """`name[:key=value,...]` -> (name, options), the options read as `gvc infer --sampler-opt`."""
    name, _, rest = text.partition(":")
    return name, parse_sampler_options([rest])


def masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean |a - b| over valid frames and all mel bins."""
    return float(((a - b).abs() * mask).sum() / (mask.sum() * a.shape[1]))


@torch.no_grad()
def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    model, cfg, _ = load_exported(args.demo / "gvc.pth")
    model.decoder.to(memory_format=torch.channels_last)  # as `gvc infer` runs it on CPU
    cases = load_cases(model, args.demo, args.items, args.max_frames)
    temperature = cfg.infer.temperature
    errors: dict[str, dict[int, list[float]]] = {
        s: {n: [] for n in args.nfe} for s in args.samplers
    }
    data_err: dict[str, dict[int, list[float]]] = {
        s: {n: [] for n in args.nfe} for s in args.samplers
    }
    ref_data, ref_check = [], []
    start = time.perf_counter()
    for case in cases:
        for seed in args.seeds:
            z = prior_sample(case.mu, case.mask, temperature,
                             generator=torch.Generator().manual_seed(seed))
            ref = model.sample(case.mu, case.mask, case.spk_emb, sampler="euler",
                               steps=args.reference_steps, z=z.clone())
            ref_data.append(masked_l1(ref, case.mel, case.mask))
            if not ref_check:  # the reference's own accuracy, once
                check = model.sample(case.mu, case.mask, case.spk_emb, sampler="dpm-solver-3",
                                     steps=args.reference_steps, z=z.clone())
                ref_check.append(masked_l1(check, ref, case.mask))
            for label in args.samplers:
                name, options = parse_sampler(label)
                for nfe in args.nfe:
                    out = model.sample(
                        case.mu,
                        case.mask,
                        case.spk_emb,
                        sampler=name,
                        steps=nfe,
                        z=z.clone(),
                        generator=torch.Generator().manual_seed(seed + 1),
                        **options,
                    )
                    errors[label][nfe].append(masked_l1(out, ref, case.mask))
                    data_err[label][nfe].append(masked_l1(out, case.mel, case.mask))
        print(
            f"  {case.name}: {case.mel.shape[-1]} frames done "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    return {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
                   f"threads",
        "date": time.strftime("%Y-%m-%d"),
        "model": str(args.demo / "gvc.pth"),
        "utterances": len(cases), "seeds": len(args.seeds), "temperature": temperature,
        "reference_steps": args.reference_steps,
        "reference_vs_data": float(np.mean(ref_data)),
        "reference_error_dpm3": float(np.mean(ref_check)),
        "mu_vs_data": float(np.mean([masked_l1(c.mu, c.mel, c.mask) for c in cases])),
        "l1_vs_reference": {
            s: {n: float(np.mean(v)) for n, v in d.items()} for s, d in errors.items()
        },
        "l1_vs_data": {
            s: {n: float(np.mean(v)) for n, v in d.items()} for s, d in data_err.items()
        },
    }


def table(result: dict, key: str, nfe: list[int]) -> str:
    rows = [f"| sampler | {' | '.join(f'NFE {n}' for n in nfe)} |", "|---" * (len(nfe) + 1) + "|"]
    for name, by_nfe in result[key].items():
        rows.append(f"| `{name}` | " + " | ".join(f"{by_nfe[n]:.4f}" for n in nfe) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--demo", type=Path, default=Path("demo"), help="folder written by `gvc demo`")
    ap.add_argument("--items", type=int, default=3, help="utterances (held-out first)")
    ap.add_argument("--max-frames", type=int, default=200, help="head crop per utterance (100 fps)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1], help="starting-noise seeds")
    ap.add_argument("--nfe", type=int, nargs="+", default=[4, 8, 10, 20])
    ap.add_argument("--samplers", nargs="+", default=SAMPLERS)
    ap.add_argument("--reference-steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    result = run(args)
    print(
        f"\n{result['utterances']} utterances x {result['seeds']} seeds, temperature "
        f"{result['temperature']}; reference: Euler ODE, {result['reference_steps']} steps "
        f"(dpm-solver-3 at the same count differs from it by "
        f"{result['reference_error_dpm3']:.5f}); "
        f"reference vs data {result['reference_vs_data']:.4f}, mu vs data "
        f"{result['mu_vs_data']:.4f}\n"
    )
    print("Mel L1 against the 1000-step ODE reference (same x_T):\n")
    print(table(result, "l1_vs_reference", args.nfe))
    print("\nMel L1 against the real mel:\n")
    print(table(result, "l1_vs_data", args.nfe))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
