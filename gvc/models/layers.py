"""Small building blocks shared by the encoder and the GRL classifier.

Parameter names follow Grad-SVC (`gamma`/`beta`, `weight_g`/`weight_v`) so its state dicts load
strictly.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of [B, C, ...] tensors (Grad-TTS `LayerNorm`, eps 1e-4).

    Keys: `gamma` [C], `beta` [C].
    """

    def __init__(self, channels: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, ...] -> same shape, normalised per position over C (biased variance)."""
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.gamma.view(shape) + self.beta.view(shape)


def instance_norm(x: torch.Tensor, mask: torch.Tensor, masked_stats: bool = False,
                  eps: float = 1e-5) -> torch.Tensor:
    """Per-channel normalisation over time, without affine parameters (V2 prenet).

    Args:
        x: [B, C, T] activations.
        mask: [B, 1, T] frame mask (1 = valid).
        masked_stats: False reproduces Grad-SVC exactly: mean and unbiased variance are taken over
            the whole padded axis of `x * mask`, so padding zeros enter the statistics and the
            output of a padded item depends on the batch's padding. True uses only valid frames
            (mean over valid frames, unbiased variance with n_valid - 1), which makes an item's
            result independent of padding; use it for training new models, not for the
            published checkpoints.
        eps: added to the variance.

    Returns:
        [B, C, T] tensor (x - mean) / sqrt(var + eps); padded frames are not zeroed here.
    """
    if not masked_stats:
        xm = x * mask
        mean = xm.mean(dim=-1, keepdim=True)
        var = xm.var(dim=-1, keepdim=True, unbiased=True)
    else:
        n = mask.sum(dim=-1, keepdim=True)
        mean = (x * mask).sum(dim=-1, keepdim=True) / n.clamp(min=1)
        var = ((x - mean) * mask).pow(2).sum(dim=-1, keepdim=True) / (n - 1).clamp(min=1)
    return (x - mean) / torch.sqrt(var + eps)


class WeightNormConv1d(nn.Conv1d):
    """Conv1d with weight normalisation over dim 0, stored under the classic names.

    `weight = weight_g * weight_v / ||weight_v||` (norm over all dims but the output channel).
    Keys: `weight_g` [out, 1, 1], `weight_v` [out, in, k], `bias` [out]: the names written by the
    deprecated `torch.nn.utils.weight_norm`, which Grad-SVC checkpoints carry.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 padding: int = 0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=padding)
        weight = self.weight.detach()
        del self.weight
        self.weight_v = nn.Parameter(weight.clone())
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(weight, dim=(1, 2), keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, in, T] -> [B, out, T']."""
        norm = torch.linalg.vector_norm(self.weight_v, dim=(1, 2), keepdim=True)
        weight = self.weight_g * self.weight_v / norm
        return F.conv1d(x, weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


def mish(x: torch.Tensor) -> torch.Tensor:
    """Mish activation x * tanh(softplus(x)) (Grad-TTS's), as PyTorch's fused kernel."""
    return F.mish(x)


class Mish(nn.Module):
    """Module form of `mish` (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise Mish."""
        return mish(x)
