"""Validation on the held-out list: a loss (Grad-SVC had none) and mel images.

Validation items are clean (no unit perturbation, a fixed head crop) and the loss uses a fixed
seed, so values are comparable from one evaluation to the next. Images are synthesised one item
at a time with the config's sampler (`infer:` block); the decoder image is skipped while the
decoder is not trained yet (encoder-only phase), where Grad-SVC logged noise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from gvc.models.acoustic import LOSS_NAMES
from gvc.training.data import Batch, Sample

if TYPE_CHECKING:
    from gvc.config import Config
    from gvc.device import Runtime
    from gvc.models import GradSVC

@torch.no_grad()
def validation_loss(model: GradSVC, batches: Iterable[Batch], cfg: Config, runtime: Runtime,
                    seed: int) -> dict[str, float]:
    """Mean losses over the validation batches (eval mode, decoder included, fixed seed).

    Returns:
        {prior, ssim, spk, diff, total} averaged over items; empty when there are no batches.
    """
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    sums = dict.fromkeys(LOSS_NAMES, 0.0)
    count = 0
    try:
        for batch in batches:
            b = batch.to(runtime.device)
            with runtime.autocast():
                out = model.compute_loss(b.vec, b.pit, b.spk, b.mel, b.lengths,
                                         segment_frames=cfg.train.segment_frames, skip_diff=False,
                                         mu_noise_std=cfg.train.mu_noise_std, generator=gen)
            n = len(b.names)
            for key in LOSS_NAMES:
                sums[key] += float(out[key]) * n
            count += n
    finally:
        model.train(was_training)
    if not count:
        return {}
    means = {k: v / count for k, v in sums.items()}
    means["total"] = sum(means[k] for k in LOSS_NAMES)
    return means


@torch.no_grad()
def validation_images(model: GradSVC, samples: list[Sample], cfg: Config, runtime: Runtime,
                      joint: bool, seed: int) -> list[dict[str, Any]]:
    """Encoder mean and (in the joint phase) decoder mel of each sample, as numpy [F, T]."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for i, s in enumerate(samples):
            vec = s.vec[None].to(runtime.device)
            pit = s.pit[None].to(runtime.device)
            spk = s.spk[None].to(runtime.device)
            item: dict[str, Any] = {"name": s.name, "truth": s.mel.numpy()}
            with runtime.autocast():
                if joint:
                    res = model.infer(vec, pit, spk, sampler=cfg.infer.sampler,
                                      steps=cfg.infer.steps, temperature=cfg.infer.temperature,
                                      generator=torch.Generator().manual_seed(seed + i),
                                      cfg_strength=cfg.infer.cfg_strength)
                    item["decoder"] = res.mel[0].float().cpu().numpy()
                    item["mu"] = res.mu[0].float().cpu().numpy()
                else:
                    lengths = torch.tensor([vec.shape[1]], device=runtime.device)
                    mu, _ = model.encode(vec, pit, spk, lengths)
                    item["mu"] = mu[0].float().cpu().numpy()
            out.append(item)
    finally:
        model.train(was_training)
    return out
