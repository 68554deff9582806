"""Optimiser, learning-rate schedule, module freezing and gradient clipping.

Grad-SVC: Adam (0.9, 0.999), constant lr 2e-4, `clip_grad_norm_(encoder, 1)` and
`clip_grad_norm_(decoder, 1)` separately. The clipping groups come from the training objective
(`gvc.training.objective`); the acoustic one keeps Grad-SVC's two groups but puts the pitch and
speaker embeddings into the encoder group (Grad-SVC left them unclipped).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from gvc.errors import ConfigError

if TYPE_CHECKING:
    from gvc.config import TrainConfig

FINETUNE_MODULES = ("pit_emb", "spk_emb", "encoder.prenet", "encoder.speaker")
"""What Grad-SVC's `fine_tune()` froze (V2/V3); `--freeze finetune` selects these."""

FREEZABLE = ("pit_emb", "spk_emb", "encoder", "encoder.prenet", "encoder.speaker",
             "encoder.encoder", "encoder.proj_m", "decoder")


def resolve_freeze(names: list[str] | tuple[str, ...]) -> list[str]:
    """Expand and validate `--freeze` names (`finetune` = Grad-SVC's fine-tune set, `none` = ()).

    Raises:
        ConfigError: a name that is not a freezable module.
    """
    out: list[str] = []
    for raw in names:
        for name in (n.strip() for n in raw.split(",")):
            if not name or name == "none":
                continue
            expanded = FINETUNE_MODULES if name == "finetune" else (name,)
            for n in expanded:
                if n not in FREEZABLE:
                    raise ConfigError(f"--freeze {n!r} is not a module of the model; choose from "
                                      f"{', '.join(FREEZABLE)} or finetune")
                if n not in out:
                    out.append(n)
    return out


def apply_freeze(model: nn.Module, names: list[str]) -> int:
    """Set `requires_grad=False` on the named submodules; returns the frozen parameter count."""
    frozen = 0
    for name in names:
        module = model.get_submodule(name)
        module.requires_grad_(False)
        frozen += sum(p.numel() for p in module.parameters())
    return frozen


def build_optimizer(model: nn.Module, train: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """Adam or AdamW over the trainable parameters (`train.optimizer`, betas, weight decay)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("every parameter is frozen; remove modules from --freeze")
    cls = torch.optim.AdamW if train.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, betas=tuple(train.adam_betas), weight_decay=train.weight_decay)


def lr_at(train: TrainConfig, base_lr: float, step: int, epoch: int, total_steps: int) -> float:
    """Learning rate of optimizer step `step` (0-based) in epoch `epoch` (0-based).

    Linear warm-up over `lr_warmup_steps`, then `lr_schedule`: `none` (constant, Grad-SVC),
    `cosine` (to `lr_min` at `total_steps`) or `exponential` (x `lr_gamma` per epoch). A pure
    function of the position, so resuming needs no scheduler state.
    """
    if train.lr_warmup_steps and step < train.lr_warmup_steps:
        return base_lr * (step + 1) / train.lr_warmup_steps
    if train.lr_schedule == "cosine":
        span = max(1, total_steps - train.lr_warmup_steps)
        progress = min(1.0, max(0.0, (step - train.lr_warmup_steps) / span))
        return train.lr_min + (base_lr - train.lr_min) * 0.5 * (1 + math.cos(math.pi * progress))
    if train.lr_schedule == "exponential":
        return base_lr * train.lr_gamma**epoch
    return base_lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_gradients(groups: dict[str, list[nn.Parameter]], max_norm: float) -> dict[str, float]:
    """Clip each group's gradient norm to `max_norm` (0 = no clipping); return the pre-clip
    norms by group name (0 for a group without gradients)."""
    norms = {}
    limit = max_norm if max_norm > 0 else float("inf")
    for name, params in groups.items():
        with_grad = [p for p in params if p.grad is not None]
        norms[name] = float(torch.nn.utils.clip_grad_norm_(with_grad, limit)) if with_grad else 0.0
    return norms
