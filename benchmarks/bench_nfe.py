"""Quality versus number of network evaluations (NFE) for the samplers of any decoder family.

Needs a trained model and its data tree; the quickstart demo makes both:

    gvc demo --out demo --steps 3000                       # tiny score model (about 35 min)
    python benchmarks/bench_nfe.py --demo demo             # its table
    gvc demo --out demo --steps 3000 --preset tiny-flow    # tiny rectified flow, same corpus
    python benchmarks/bench_nfe.py --demo demo --model demo/gvc-tiny-flow.pth \
        --reference rk4 --reference-steps 250 --reference-check heun --cfg 0 0.7 2

For each held-out utterance of `<demo>/files/valid.txt` (and, with --items, further training items)
the encoder gives mu; one starting state is drawn per utterance and seed in the family's meaning
(score: x_T = mu + N(0, I) / temperature; flow: x_0 = N(0, I) * temperature) and every sampler
starts from that same state. A sampler runs NFE / (its NFE per step) steps; a cell stays empty
when the NFE is not a multiple of that. Two figures per sampler and NFE, masked mean absolute
error over mel bins and frames (log-mel units):

* `L1 vs ODE ref`: against the ODE solved with `--reference` at `--reference-steps` from the same
  start. The deterministic samplers all approximate this solution, so this is their
  discretisation error. Stochastic samplers (score `ml`, `sde`) converge to a different (random)
  sample; their column mixes discretisation error with that randomness.
* `L1 vs data`: against the utterance's real mel, a fair figure for every sampler.

The reference's own accuracy is printed too (`--reference-check` at the reference step count
against it, on the first utterance). With `--cfg W ...` (flow models trained with condition
dropout) every table is repeated per guidance strength, with its own reference.

With `--student FILE` (a consistency model `gvc distill` made of `--model`), the student's
K-step sampling (K = each --nfe; K evaluations) starts from the same state and is tabled as
`student` beside the teacher's samplers; its encoder is the teacher's (frozen in distillation).

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
from gvc.decoders.noise import noise_from
from gvc.decoders.registry import parse_sampler_options, sampler_names
from gvc.export.model_file import load_exported
from gvc.models import fix_len_compatibility
from gvc.training.data import usable_frames


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
    raise FileNotFoundError(f"{path}: not found (index of {demo}); run `gvc demo --out {demo}` "
                            "first")


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


def load_student(path: Path, teacher):
    """A consistency student of `teacher` (its encoder must be the teacher's)."""
    student, _, _ = load_exported(path)
    if student.decoder.name != "consistency" or \
            student.decoder.base.name != teacher.decoder.name:
        raise SystemExit(f"{path}: not a consistency student of a {teacher.decoder.name} model")
    ours = student.state_dict()
    if any(not torch.equal(v, ours[k]) for k, v in teacher.state_dict().items()
           if not k.startswith("decoder.")):
        raise SystemExit(f"{path}: its encoder differs from the teacher's (another teacher?)")
    student.decoder.to(memory_format=torch.channels_last)
    return student


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
    model_path = args.model or args.demo / "gvc.pth"
    model, cfg, _ = load_exported(model_path)
    model.decoder.to(memory_format=torch.channels_last)  # as `gvc infer` runs it on CPU
    family = model.decoder.name
    samplers = args.samplers or sampler_names(family)
    cases = load_cases(model, args.demo, args.items, args.max_frames)
    temperature = cfg.infer.temperature
    student = load_student(args.student, model) if args.student else None
    rows = [(label, w) for w in args.cfg for label in samplers]
    rows += [("student", w) for w in args.cfg] if student is not None else []
    errors = {r: {n: [] for n in args.nfe} for r in rows}
    data_err = {r: {n: [] for n in args.nfe} for r in rows}
    ref_data: dict[float, list[float]] = {w: [] for w in args.cfg}
    ref_check = []
    start = time.perf_counter()
    for case in cases:
        for seed in args.seeds:
            mu_state = model.decoder.normalise(case.mu, case.mask)  # EDM: the scaled mel
            z = model.decoder.initial_state(mu_state, case.mask, temperature,
                                            noise_from(torch.Generator().manual_seed(seed)))
            for w in args.cfg:
                ref = model.sample(case.mu, case.mask, case.spk_emb, sampler=args.reference,
                                   steps=args.reference_steps, z=z.clone(), cfg_strength=w)
                ref_data[w].append(masked_l1(ref, case.mel, case.mask))
                if not ref_check and args.reference_check:  # the reference's accuracy, once
                    check = model.sample(case.mu, case.mask, case.spk_emb,
                                         sampler=args.reference_check,
                                         steps=args.reference_steps, z=z.clone(), cfg_strength=w)
                    ref_check.append(masked_l1(check, ref, case.mask))
                for label in samplers + (["student"] if student is not None else []):
                    who = student if label == "student" else model
                    name, options = ("consistency", {}) if label == "student" else \
                        parse_sampler(label)
                    spec = who.decoder.sampler(name)
                    for nfe in args.nfe:
                        steps = next((k for k in range(1, nfe + 1) if spec.nfe_for(k) == nfe),
                                     None)
                        if steps is None:
                            continue
                        out = who.sample(case.mu, case.mask, case.spk_emb, sampler=spec.name,
                                         steps=steps, z=z.clone(), cfg_strength=w,
                                         generator=torch.Generator().manual_seed(seed + 1),
                                         **options)
                        errors[(label, w)][nfe].append(masked_l1(out, ref, case.mask))
                        data_err[(label, w)][nfe].append(masked_l1(out, case.mel, case.mask))
        print(f"  {case.name}: {case.mel.shape[-1]} frames done "
              f"({time.perf_counter() - start:.0f} s)", flush=True)

    def means(d):
        return {f"{label}" + (f" cfg {w:g}" if len(args.cfg) > 1 else ""):
                {n: float(np.mean(v)) if v else None for n, v in by.items()}
                for (label, w), by in d.items()}

    return {
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} threads",
        "date": time.strftime("%Y-%m-%d"),
        "model": str(model_path), "decoder": family,
        "utterances": len(cases), "seeds": len(args.seeds), "temperature": temperature,
        "reference": args.reference, "reference_steps": args.reference_steps,
        "reference_vs_data": {f"{w:g}": float(np.mean(v)) for w, v in ref_data.items()},
        "reference_error": float(np.mean(ref_check)) if ref_check else None,
        "mu_vs_data": float(np.mean([masked_l1(c.mu, c.mel, c.mask) for c in cases])),
        "l1_vs_reference": means(errors),
        "l1_vs_data": means(data_err),
    }


def table(result: dict, key: str, nfe: list[int]) -> str:
    rows = [f"| sampler | {' | '.join(f'NFE {n}' for n in nfe)} |", "|---" * (len(nfe) + 1) + "|"]
    for name, by_nfe in result[key].items():
        cells = ("" if by_nfe[n] is None else f"{by_nfe[n]:.4f}" for n in nfe)
        rows.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", type=Path, default=Path("demo"), help="folder written by `gvc demo`")
    ap.add_argument("--items", type=int, default=3, help="utterances (held-out first)")
    ap.add_argument("--max-frames", type=int, default=200, help="head crop per utterance (100 fps)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1], help="starting-noise seeds")
    ap.add_argument("--nfe", type=int, nargs="+", default=[4, 8, 10, 20])
    ap.add_argument("--model", type=Path, help="model file (default <demo>/gvc.pth)")
    ap.add_argument("--samplers", nargs="+", help="default: every sampler of the model's family")
    ap.add_argument("--student", type=Path, help="a consistency model distilled from --model")
    ap.add_argument("--reference", default="euler", help="sampler of the reference solution")
    ap.add_argument("--reference-steps", type=int, default=1000)
    ap.add_argument("--reference-check", default="dpm-solver-3",
                    help="sampler compared with the reference at its step count ('' = none)")
    ap.add_argument("--cfg", type=float, nargs="+", default=[0.0],
                    help="guidance strengths (flow models trained with condition dropout)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    result = run(args)
    print(f"\n{result['decoder']} model, {result['utterances']} utterances x {result['seeds']} "
          f"seeds, temperature {result['temperature']}; reference: {result['reference']}, "
          f"{result['reference_steps']} steps ({args.reference_check or 'no check'} at the same "
          f"count differs from it by {result['reference_error']}); reference vs data "
          f"{result['reference_vs_data']}, mu vs data {result['mu_vs_data']:.4f}\n")
    print("Mel L1 against the reference (same start):\n")
    print(table(result, "l1_vs_reference", args.nfe))
    print("\nMel L1 against the real mel:\n")
    print(table(result, "l1_vs_data", args.nfe))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
