"""Training position, phase schedule and random-number state.

Phases (Grad-SVC's `fast_epochs`/`full_epochs`, with its off-by-one fixed): epochs
`0 .. fast_epochs - 1` train the encoder only (prior + SSIM + speaker-reversal losses; the decoder
is not run); from epoch `fast_epochs` on, the diffusion loss joins. The phase is a function of the
epoch alone, so a resumed run switches at the same step as an uninterrupted one.

Reproducibility: every optimizer step re-seeds torch (dropout) and a CPU generator (segment
offsets, diffusion times and noise) from (seed, step, rank), so the loss trajectory depends only
on the position, not on what ran before (validation, a restart).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class TrainState:
    """Where training stands.

    Attributes:
        step: optimizer steps done.
        epoch: completed epochs = 0-based index of the current epoch.
        batch_in_epoch: batches of the current epoch already trained.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0

    def joint(self, fast_epochs: int) -> bool:
        """True once the diffusion loss is on (epoch >= fast_epochs)."""
        return self.epoch >= fast_epochs

    def to_dict(self) -> dict[str, int]:
        """Plain dict for checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        """Inverse of `to_dict`."""
        return cls(step=int(data["step"]), epoch=int(data["epoch"]),
                   batch_in_epoch=int(data["batch_in_epoch"]))


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """A 63-bit seed for one (seed, step, rank) triple."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(2, np.uint64)[0] >> 1)


def seed_step(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """Seed torch's global RNGs (dropout) for a step; return a CPU generator for the loss."""
    s = step_seed(seed, step, rank)
    torch.manual_seed(s)
    return torch.Generator().manual_seed(s ^ 0x5DEECE66D)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch and CUDA RNG states, as values `torch.load(weights_only=True)` reads."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
        # the current device only: querying every GPU would create a context on each of them
        "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_initialized() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured (the CUDA state goes to the current device)."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["gauss"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda[0])
