"""The DiffWave network (Kong et al. 2020, arXiv 2009.09761, §3 and Fig. 2).

A non-autoregressive WaveNet-like stack that predicts the noise `eps` added to a waveform at
diffusion step t, conditioned on a log-mel:

* input: Conv1x1(1 -> C) + ReLU on the noisy waveform [B, 1, L];
* diffusion-step embedding: 128-d sinusoidal code of t (§3.2, Eq. in "Diffusion-step
  embedding"), then two fully connected layers of width 512 with Swish (SiLU);
* conditioner: the mel is upsampled to the sample rate by two 2-D transposed convolutions
  (stride = the upsampling factor in time, leaky ReLU 0.4), then projected per layer by a
  Conv1x1(n_mels -> 2C) ("local conditioner", §3.2);
* N residual layers: x + FC(step embedding) -> dilated Conv(k=3, C -> 2C, dilation
  2^(i mod cycle)) + conditioner -> gated tanh * sigmoid -> Conv1x1(C -> 2C) split into a
  residual (added to x, scaled by 1/sqrt 2) and a skip output;
* output: sum of skips / sqrt(N) -> Conv1x1(C -> C) + ReLU -> Conv1x1(C -> 1), the last one
  zero-initialised so training starts from predicting zero noise.

The upsampled conditioning does not depend on the step, so samplers compute it once per window
(`condition`) and reuse it at every step (`forward(..., cond=...)`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vocoder.diffwave.config import DiffWaveConfig

EMBED_HIDDEN = 512  # width of the step-embedding MLP (paper: 512)


class StepEmbedding(nn.Module):
    """Diffusion step t (float, may be fractional for the fast schedule) -> [B, 512].

    The code is [sin(10^(4j/63) t), cos(10^(4j/63) t)] for j = 0..63 (§3.2); evaluated directly at
    a fractional t, which the fast sampler's aligned steps need.
    """

    def __init__(self, dim: int = 128) -> None:
        super().__init__()
        half = dim // 2
        exponents = torch.arange(half, dtype=torch.float32) * 4.0 / max(half - 1, 1)
        self.register_buffer("freqs", 10.0 ** exponents, persistent=False)
        self.fc1 = nn.Linear(dim, EMBED_HIDDEN)
        self.fc2 = nn.Linear(EMBED_HIDDEN, EMBED_HIDDEN)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t: [B] float steps (0-based) -> [B, 512]."""
        angles = t.float().unsqueeze(1) * self.freqs.unsqueeze(0)
        code = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
        return F.silu(self.fc2(F.silu(self.fc1(code))))


class MelUpsampler(nn.Module):
    """[B, n_mels, T] -> [B, n_mels, T * prod(factors)] by 2-D transposed convs over (band, time).

    Kernel (3, 2f), stride (1, f), padding (1, f / 2): each stage gives exactly f x as many frames
    (f even), so T frames become T * hop samples.
    """

    def __init__(self, factors: tuple[int, int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.ConvTranspose2d(1, 1, (3, 2 * f), stride=(1, f), padding=(1, f // 2))
            for f in factors)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel.unsqueeze(1)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.4)
        return x.squeeze(1)


class ResidualLayer(nn.Module):
    """One gated, dilated residual layer (Fig. 2)."""

    def __init__(self, channels: int, n_mels: int, dilation: int) -> None:
        super().__init__()
        self.dilated = nn.Conv1d(channels, 2 * channels, 3, padding=dilation, dilation=dilation)
        self.step_proj = nn.Linear(EMBED_HIDDEN, channels)
        self.cond_proj = nn.Conv1d(n_mels, 2 * channels, 1)
        self.out_proj = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x: torch.Tensor, step: torch.Tensor,
                cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [B, C, L], step: [B, 512], cond: [B, n_mels, L] -> (residual out, skip) [B, C, L]."""
        y = self.dilated(x + self.step_proj(step).unsqueeze(-1)) + self.cond_proj(cond)
        gate, filt = y.chunk(2, dim=1)
        y = self.out_proj(torch.sigmoid(gate) * torch.tanh(filt))
        residual, skip = y.chunk(2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class DiffWave(nn.Module):
    """The noise predictor eps_theta(x_t, t, mel).

    Args:
        cfg: sizes (`DiffWaveConfig`).
        n_mels: mel bands of the conditioning.
    """

    def __init__(self, cfg: DiffWaveConfig, n_mels: int = 100) -> None:
        super().__init__()
        self.cfg, self.n_mels = cfg, n_mels
        self.hop = cfg.upsample_factors[0] * cfg.upsample_factors[1]
        c = cfg.residual_channels
        self.input_proj = nn.Conv1d(1, c, 1)
        self.embedding = StepEmbedding(cfg.embedding_dim)
        self.upsampler = MelUpsampler(cfg.upsample_factors)
        self.layers = nn.ModuleList(
            ResidualLayer(c, n_mels, 2 ** (i % cfg.dilation_cycle))
            for i in range(cfg.residual_layers))
        self.skip_proj = nn.Conv1d(c, c, 1)
        self.output_proj = nn.Conv1d(c, 1, 1)
        nn.init.zeros_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    @property
    def receptive_field(self) -> int:
        """Samples seen on each side of an output sample in one network pass."""
        return sum(2 ** (i % self.cfg.dilation_cycle) for i in range(self.cfg.residual_layers))

    def condition(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, n_mels, T] log-mel -> [B, n_mels, T * hop] conditioning (step-independent)."""
        return self.upsampler(mel)

    def forward(self, audio: torch.Tensor, t: torch.Tensor, mel: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the noise.

        Args:
            audio: [B, L] noisy waveform x_t (L = T * hop).
            t: [B] diffusion steps (0-based, float allowed).
            mel: [B, n_mels, T] log-mel; or `cond` [B, n_mels, L] from `condition` instead.

        Returns:
            [B, L] predicted noise.
        """
        if cond is None:
            if mel is None:
                raise ValueError("DiffWave needs a mel or its precomputed conditioning")
            cond = self.condition(mel)
        x = F.relu(self.input_proj(audio.unsqueeze(1)))
        step = self.embedding(t)
        skips = torch.zeros_like(x)
        for layer in self.layers:
            x, skip = layer(x, step, cond)
            skips = skips + skip
        x = F.relu(self.skip_proj(skips / math.sqrt(len(self.layers))))
        return self.output_proj(x).squeeze(1)
