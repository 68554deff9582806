"""The NSF-BigVGAN 32 kHz generator (PlayVoice/NSF-BigVGAN `Generator`) with plain weights.

Architecture (C = `upsample_initial_channel`, 320 in the published model):

* `conv_pre` Conv1d(mel_channels -> C, k7, pad 3), then Mish;
* for each stage i (upsample rate u, kernel k): `ups[i]` ConvTranspose1d(C/2^i -> C/2^(i+1), k, u,
  pad (k-u)/2); plus `noise_convs[i](excitation)`, a Conv1d(1 -> C/2^(i+1)) with kernel 2s,
  stride s, pad s/2 where s is the product of the remaining rates (kernel 1 for the last stage);
  then the mean of three `AMPBlock`s (kernels 3, 7, 11);
* `activation_post` (SnakeAlias), `conv_post` Conv1d(-> 1, k7, pad 3, no bias), tanh.

The published state dict stores weight-normed convolutions as `weight_g`/`weight_v`; this module
holds the folded `weight` (see `vocoder.checkpoint`), which computes the same function faster.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from gvc.errors import ConfigError
from vocoder.alias import SnakeAlias
from vocoder.nsf import HarmonicSource


@dataclass(frozen=True)
class BigVGANConfig:
    """The `gen:` block of `nsf_bigvgan.yaml` plus the audio rate; defaults are the published
    model."""

    mel_channels: int = 100
    upsample_rates: tuple[int, ...] = (5, 4, 2, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (15, 8, 4, 4, 4, 4)
    upsample_initial_channel: int = 320
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = field(
        default_factory=lambda: ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    )
    sampling_rate: int = 32000

    def __post_init__(self) -> None:
        n = len(self.upsample_rates)
        if n == 0 or len(self.upsample_kernel_sizes) != n:
            raise ConfigError(
                "gen.upsample_rates and gen.upsample_kernel_sizes must be non-empty and equally "
                "long"
            )
        if self.upsample_initial_channel % (2**n) or self.upsample_initial_channel < 2**n:
            raise ConfigError(
                f"gen.upsample_initial_channel={self.upsample_initial_channel} must be a positive "
                f"multiple of 2^{n} (the width halves at each of the {n} upsampling stages)"
            )
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ConfigError(
                "gen.resblock_kernel_sizes and gen.resblock_dilation_sizes differ in length"
            )

    @property
    def hop(self) -> int:
        """Output samples per mel frame (product of the upsample rates; 320)."""
        return math.prod(self.upsample_rates)

    def channels(self, stage: int) -> int:
        """Channels after upsampling stage `stage` (0-based)."""
        return self.upsample_initial_channel // (2 ** (stage + 1))


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class AMPBlock(nn.Module):
    """Anti-aliased multi-periodicity block: 3 x [SnakeAlias, dilated conv, SnakeAlias, conv] +
    skip.

    Args:
        channels: C of the [B, C, T] input and output.
        kernel: convolution kernel size.
        dilations: dilations of the three first convolutions.
    """

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=_padding(kernel)) for _ in dilations
        )
        self.activations = nn.ModuleList(SnakeAlias(channels) for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acts = iter(self.activations)
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = c2(next(acts)(c1(next(acts)(x))))
            x = x + xt
        return x


class NSFBigVGANGenerator(nn.Module):
    """NSF-BigVGAN generator: log-mel + F0 -> 32 kHz waveform.

    Args:
        config: architecture; `config.hop` output samples per mel frame.
    """

    def __init__(self, config: BigVGANConfig | None = None) -> None:
        super().__init__()
        cfg = config or BigVGANConfig()
        self.config = cfg
        c0 = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.mel_channels, c0, 7, padding=3)
        self.m_source = HarmonicSource(sampling_rate=cfg.sampling_rate, hop=cfg.hop)
        self.ups = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        n = len(cfg.upsample_rates)
        for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True)):
            cin, cout = c0 // (2**i), cfg.channels(i)
            self.ups.append(nn.ConvTranspose1d(cin, cout, k, u, padding=(k - u) // 2))
            if i + 1 < n:
                s = math.prod(cfg.upsample_rates[i + 1 :])
                self.noise_convs.append(nn.Conv1d(1, cout, 2 * s, stride=s, padding=s // 2))
            else:
                self.noise_convs.append(nn.Conv1d(1, cout, 1))
            for kr, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=True):
                self.resblocks.append(AMPBlock(cout, kr, tuple(d)))
        self.activation_post = SnakeAlias(cfg.channels(n - 1))
        self.conv_post = nn.Conv1d(cfg.channels(n - 1), 1, 7, padding=3, bias=False)

    def weight_norm_modules(self) -> Iterator[tuple[str, nn.Module]]:
        """(name, module) of every convolution that is weight-normed in the published layout."""
        yield "conv_pre", self.conv_pre
        for i, m in enumerate(self.ups):
            yield f"ups.{i}", m
        for k, block in enumerate(self.resblocks):
            for group in ("convs1", "convs2"):
                for j, m in enumerate(getattr(block, group)):
                    yield f"resblocks.{k}.{group}.{j}", m

    def forward(self, mel: torch.Tensor, excitation: torch.Tensor) -> torch.Tensor:
        """Waveform from mel and a precomputed excitation.

        Args:
            mel: [B, mel_channels, T] natural-log mel.
            excitation: [B, 1, T * hop] output of `m_source` for the matching F0.

        Returns:
            [B, 1, T * hop] waveform in (-1, 1).
        """
        x = F.mish(self.conv_pre(mel))
        nk = len(self.config.resblock_kernel_sizes)
        for i, (up, noise_conv) in enumerate(zip(self.ups, self.noise_convs, strict=True)):
            x = up(x) + noise_conv(excitation)
            acc = self.resblocks[i * nk](x)
            for j in range(1, nk):
                acc = acc + self.resblocks[i * nk + j](x)
            x = acc / nk
        return torch.tanh(self.conv_post(self.activation_post(x)))
