"""Anti-aliased SnakeBeta activation of NSF-BigVGAN (`SnakeAlias`).

The activation runs at twice the sample rate: the input is upsampled x2 with a 12-tap Kaiser-
windowed sinc (cutoff 0.25, half-width 0.3 of the doubled rate, gain 2), passed through SnakeBeta
`x + sin^2(x * e^alpha) / (e^beta + 1e-9)` (per-channel log-scale alpha and beta), low-pass
filtered with the same 12-tap kernel and decimated by 2. Borders use replicate padding, exactly as
the alias-free-torch code NSF-BigVGAN was trained with:

* upsampling: replicate-pad 5 samples per side, depthwise transposed convolution (stride 2),
  crop 15 samples per side;
* downsampling: replicate-pad 5 samples left and 6 right, convolution with stride 2.

Module and buffer names follow the published state dict: `act.alpha`, `act.beta`,
`upsample.filter`, `downsample.lowpass.filter`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

KERNEL_SIZE = 12
RATIO = 2


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass filter, normalised to unit DC gain.

    Args:
        cutoff: cutoff frequency as a fraction of the sample rate (0 < cutoff <= 0.5).
        half_width: transition half-width as a fraction of the sample rate.
        kernel_size: number of taps; even sizes are centred between two samples.

    Returns:
        [1, 1, kernel_size] float32 taps summing to 1.
    """
    if not 0.0 < cutoff <= 0.5:
        raise ValueError(f"cutoff must be in (0, 0.5], got {cutoff}")
    half = kernel_size // 2
    # Kaiser's design formula: attenuation A (dB) from the transition width, then beta from A.
    attenuation = 2.285 * (half - 1) * math.pi * (4.0 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21.0) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, periodic=False, beta=beta)
    if kernel_size % 2 == 0:
        t = torch.arange(-half, half, dtype=torch.float32) + 0.5
    else:
        t = torch.arange(kernel_size, dtype=torch.float32) - half
    taps = 2.0 * cutoff * window * torch.sinc(2.0 * cutoff * t)
    return (taps / taps.sum()).view(1, 1, kernel_size)


def _default_filter() -> torch.Tensor:
    return kaiser_sinc_filter1d(0.5 / RATIO, 0.6 / RATIO, KERNEL_SIZE)


class SnakeBeta(nn.Module):
    """SnakeBeta with log-scale parameters: `x + sin^2(x * exp(alpha)) / (exp(beta) + 1e-9)`.

    Args:
        channels: number of channels C; `alpha` and `beta` are [C] logs (zeros = 1.0).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Frequency `exp(alpha)` and magnitude `1 / (exp(beta) + 1e-9)`, each [C, 1]."""
        freq = torch.exp(self.alpha).unsqueeze(-1)
        gain = 1.0 / (torch.exp(self.beta) + 1e-9)
        return freq, gain.unsqueeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, T] -> [B, C, T]."""
        freq, gain = self.coefficients()
        return x + gain * torch.sin(x * freq).pow(2)


TILE = 2048  # samples per tile when a long signal is split for the depthwise filters


def _replicate_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Replicate-pad the last axis of [B, C, T] (faster than `F.pad(mode="replicate")` on CPU)."""
    return torch.cat(
        [x[..., :1].expand(-1, -1, left), x, x[..., -1:].expand(-1, -1, right)], dim=-1
    )


def _tiles(x: torch.Tensor, size: int, step: int, count: int) -> torch.Tensor:
    """`count` windows of `size` samples every `step` along [B, C, L] -> [1, B * C * count, size].

    The signal is zero-extended on the right when the last window runs past its end. Depthwise
    convolutions on CPU are several times faster on many short rows than on a few long ones.
    """
    need = (count - 1) * step + size
    if x.shape[-1] < need:
        x = F.pad(x, (0, need - x.shape[-1]))
    b, c, _ = x.shape
    return x.unfold(-1, size, step).reshape(1, b * c * count, size)


class UpSample1d(nn.Module):
    """x2 Kaiser-sinc interpolation with replicate borders: [B, C, T] -> [B, C, 2T].

    Replicate-pad 5 samples per side, depthwise transposed convolution (stride 2) with the filter
    scaled by 2, crop 15 samples per side. Long inputs are processed in tiles of `TILE` input
    samples: output pairs [a, a + M) need padded inputs [a + 2, a + M + 8) and sit at offset 11
    of that window's transposed convolution.
    """

    PAD = KERNEL_SIZE // RATIO - 1
    CROP = PAD * RATIO + (KERNEL_SIZE - RATIO) // 2

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("filter", _default_filter())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        xp = _replicate_pad(x, self.PAD, self.PAD)
        weight = (self.filter * RATIO).to(x.dtype)
        if t <= 2 * TILE:
            y = F.conv_transpose1d(xp, weight.expand(c, -1, -1), stride=RATIO, groups=c)
            return y[..., self.CROP : -self.CROP]
        count = -(-t // TILE)
        tiles = _tiles(xp[..., 2:], TILE + 6, TILE, count)
        y = F.conv_transpose1d(
            tiles, weight.expand(tiles.shape[1], -1, -1), stride=RATIO, groups=tiles.shape[1]
        )
        y = y[..., 11 : 11 + 2 * TILE].reshape(b, c, count * 2 * TILE)
        return y[..., : 2 * t]


class LowPassFilter1d(nn.Module):
    """12-tap Kaiser-sinc low-pass, stride 2, replicate borders (5 left, 6 right).

    Long inputs are processed in tiles: outputs [n, n + M) need padded inputs [2n, 2n + 2M + 10).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("filter", _default_filter())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, 2T] -> [B, C, T]."""
        b, c, t2 = x.shape
        xp = _replicate_pad(x, KERNEL_SIZE // 2 - 1, KERNEL_SIZE // 2)
        weight = self.filter.to(x.dtype)
        t = t2 // RATIO
        if t <= 2 * TILE:
            return F.conv1d(xp, weight.expand(c, -1, -1), stride=RATIO, groups=c)
        count = -(-t // TILE)
        tiles = _tiles(xp, 2 * TILE + 10, 2 * TILE, count)
        y = F.conv1d(
            tiles, weight.expand(tiles.shape[1], -1, -1), stride=RATIO, groups=tiles.shape[1]
        )
        return y.reshape(b, c, count * TILE)[..., :t]


class DownSample1d(nn.Module):
    """x2 decimation after the Kaiser-sinc low-pass: [B, C, 2T] -> [B, C, T]."""

    def __init__(self) -> None:
        super().__init__()
        self.lowpass = LowPassFilter1d()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class SnakeAlias(nn.Module):
    """Anti-aliased SnakeBeta (NSF-BigVGAN `SnakeAlias`): upsample x2, SnakeBeta, downsample x2.

    Args:
        channels: number of channels C of the [B, C, T] input; output has the same shape.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = UpSample1d()
        self.downsample = DownSample1d()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))
