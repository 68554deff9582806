"""Training checkpoints: atomic `ckpt-<step>.pt` files in the run folder, rotation, resume.

A checkpoint is a superset of Grad-SVC's `grad_svc_{epoch}.pt` (`model`, `optim`, `epoch`,
`steps`), so Grad-SVC's own `-p` resume and loaders can read it:

    {'model': GradSVC state dict (Grad-SVC keys), 'optim': optimizer state dict,
     'epoch': completed epochs, 'steps': optimizer steps,
     'train_state': TrainState.to_dict(), 'rng': state.rng_state(),
     'data_order': {items, batch_size, world_size, seed},
     'gvc': metadata (gvc.export.meta; kind "training", with a `run` entry),
     'objective': extra state of the training objective (e.g. EMA weights; absent if none)}

Everything in it loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from gvc.errors import CheckpointError
from gvc.fileio import save_torch

log = logging.getLogger(__name__)

PREFIX, SUFFIX = "ckpt-", ".pt"
_NAME = re.compile(rf"^{PREFIX}(\d+){re.escape(SUFFIX)}$")
REQUIRED = ("model", "optim", "epoch", "steps", "train_state", "gvc")


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """`run_dir/ckpt-<step, 8 digits>.pt`."""
    return Path(run_dir) / f"{PREFIX}{step:08d}{SUFFIX}"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint in `run_dir`, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint with the highest step, or None."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def save_checkpoint(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict[str, int], rng: dict[str, Any], meta: dict[str, Any],
                    data_order: dict[str, int] | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write one training checkpoint atomically (temp file + rename).

    `data_order` (items, batch size, world size, seed) lets a resume tell whether it can
    reproduce the interrupted run's batch order exactly.
    """
    payload = {
        "model": model.state_dict(),
        "optim": optimizer.state_dict(),
        "epoch": state["epoch"],
        "steps": state["step"],
        "train_state": state,
        "rng": rng,
        "data_order": data_order or {},
        "gvc": meta,
    }
    if extra:
        payload["objective"] = extra
    save_torch(Path(path), payload)
    log.debug("saved %s", path)
    return Path(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a gvc training checkpoint (weights-only, on CPU) and check its entries.

    Raises:
        CheckpointError: missing/unreadable file, or not a gvc training checkpoint.
    """
    from gvc.models import read_checkpoint

    ckpt = read_checkpoint(path)
    absent = [k for k in REQUIRED if k not in ckpt]
    if absent:
        raise CheckpointError(
            f"{path} is not a gvc training checkpoint (no {', '.join(absent)}); to start from "
            "model weights use --init-from instead of --resume")
    return ckpt


def rotate(run_dir: Path, keep_last: int, keep_every: int) -> list[Path]:
    """Delete old checkpoints: keep the newest `keep_last` (0 = keep all) and every checkpoint
    whose step is a multiple of `keep_every` (0 = none permanent). Returns the deleted paths."""
    found = list_checkpoints(run_dir)
    if keep_last <= 0:
        return []
    keep = {p for _, p in found[-keep_last:]}
    if keep_every > 0:
        keep |= {p for s, p in found if s % keep_every == 0}
    deleted = []
    for _, p in found:
        if p not in keep:
            p.unlink(missing_ok=True)
            deleted.append(p)
    return deleted
