"""Strict loading of acoustic-model weights (Grad-SVC `{'model': state_dict}` files and ours)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gvc.errors import CheckpointError
from gvc.statedict import layout_problems, listing

log = logging.getLogger(__name__)

def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint file safely (`weights_only=True`, on CPU).

    Returns:
        The top-level dict. A flat state dict (all values tensors) is wrapped as
        `{'model': state_dict}` so callers always find the weights under `model`.

    Raises:
        CheckpointError: missing/unreadable file, or no `model` entry.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass the path of a .pth/.pt file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}; "
            "is it a PyTorch file written by Grad-SVC or gvc?") from exc
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        return dict(obj)
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"model": dict(obj)}
    found = listing(sorted(map(str, obj))) if isinstance(obj, Mapping) else type(obj).__name__
    raise CheckpointError(
        f"checkpoint {path} has no 'model' state dict (found {found}); "
        "expected a Grad-SVC or gvc acoustic-model file")


def load_acoustic_state(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                        source: str | Path) -> None:
    """Load weights strictly: every key present, none extra, every shape equal.

    Args:
        model: the model (e.g. `GradSVC`) built from the matching config.
        state_dict: parameter name -> tensor (Grad-SVC names, `weight_g`/`weight_v` included).
        source: file name for the error message.

    Raises:
        CheckpointError: one line naming the file, the missing, unexpected and shape-mismatched
            keys, and the fix (use the config/preset the checkpoint was trained with).
    """
    expected = {k: v.shape for k, v in model.state_dict().items()}
    parts = layout_problems(expected, state_dict)
    if parts:
        raise CheckpointError(
            f"{source} does not fit this model ({'; '.join(parts)}); build the model from the "
            "config/preset the checkpoint was trained with (e.g. base for V2-96, v2-64 for V2-64)")
    model.load_state_dict(dict(state_dict), strict=True)
    log.debug("loaded %d tensors from %s", len(state_dict), source)
