"""The harmonic-plus-noise excitation of NSF-BigVGAN (`SourceModuleHnNSF` with its `SineGen`).

From frame-rate F0 (Hz, 100 fps, 0 = unvoiced) it renders a 32 kHz excitation:

1. F0 is upsampled to the sample rate by repetition (nearest neighbour, x hop).
2. Eleven sines at 1..11 x F0 share one phase track, the running sum of F0 / sr in cycles
   (the sum includes the current sample); each overtone gets a random initial phase in [0, 1)
   cycles, the fundamental none. Amplitude `sine_amp` = 0.1, zeroed where F0 <= 0.
3. Gaussian noise is added per harmonic: std 0.003 where voiced, sine_amp / 3 where unvoiced.
4. The 11 channels are merged by the fixed linear layer (`merge_w` [1, 11], `merge_b` [1]), then
   tanh.

Random numbers are drawn in the original's order (initial phases `rand(B, 11)`, then noise
`randn(B, L, 11)`), so the same seed of the same generator reproduces the original run.
The phase track is accumulated in float64 and may start from a given offset, so a long signal can
be rendered chunk by chunk with a continuous phase.
"""

from __future__ import annotations

import math

import torch
from torch import nn

HARMONIC_NUM = 10
MERGE_W = (
    0.2942,
    -0.2243,
    0.0033,
    -0.0056,
    -0.0020,
    -0.0046,
    0.0221,
    -0.0083,
    -0.0241,
    -0.0036,
    -0.0581,
)
MERGE_B = 0.0008


def _draw(
    shape: tuple[int, ...], kind: str, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """`rand` or `randn` of `shape` from `generator` (or the global RNG) placed on `device`."""
    where = generator.device if generator is not None else device
    fn = torch.rand if kind == "rand" else torch.randn
    return fn(shape, generator=generator, device=where).to(device)


class HarmonicSource(nn.Module):
    """NSF harmonic source; buffer names `merge_w`, `merge_b` match the published state dict.

    Args:
        sampling_rate: output sample rate in Hz (32000).
        hop: samples per F0 frame (320 = 10 ms at 32 kHz).
        sine_amp: amplitude of each sine (0.1).
        noise_std: noise std in voiced samples (0.003).
        voiced_threshold: F0 above this (Hz) counts as voiced (0).
    """

    def __init__(
        self,
        sampling_rate: int = 32000,
        hop: int = 320,
        sine_amp: float = 0.1,
        noise_std: float = 0.003,
        voiced_threshold: float = 0.0,
    ) -> None:
        super().__init__()
        self.sampling_rate = sampling_rate
        self.hop = hop
        self.dim = HARMONIC_NUM + 1
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.unvoiced_std = sine_amp / 3.0
        self.voiced_threshold = voiced_threshold
        self.register_buffer("merge_w", torch.tensor([MERGE_W], dtype=torch.float32))
        self.register_buffer("merge_b", torch.tensor([MERGE_B], dtype=torch.float32))

    def initial_phases(
        self, batch: int, device: torch.device, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Random initial phases [B, 11] in cycles; column 0 (the fundamental) is 0."""
        phases = _draw((batch, self.dim), "rand", device, generator)
        phases[:, 0] = 0.0
        return phases

    def phase_offset(self, f0: torch.Tensor) -> torch.Tensor:
        """Fundamental phase (cycles, float64 [B]) accumulated over the frames of `f0` [B, T]."""
        return f0.double().sum(dim=1) * (self.hop / self.sampling_rate)

    def forward(
        self,
        f0: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        phases: torch.Tensor | None = None,
        start: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Render the excitation.

        Args:
            f0: [B, T] F0 in Hz at frame rate (sr / hop), 0 = unvoiced.
            generator: random source for initial phases and noise (global RNG if None); it may live
                on another device than `f0`.
            phases: [B, 11] initial phases in cycles; drawn from `generator` if None.
            start: [B] float64 fundamental phase (cycles) before the first sample (chunking).

        Returns:
            [B, 1, T * hop] float32 excitation in (-1, 1), on `f0`'s device.
        """
        f0 = f0.float()
        b, _ = f0.shape
        device = f0.device
        if phases is None:
            phases = self.initial_phases(b, device, generator)
        f0_up = f0.repeat_interleave(self.hop, dim=1)  # [B, L]
        cycles = torch.cumsum(f0_up.double() / self.sampling_rate, dim=1)
        if start is not None:
            cycles = cycles + start.to(device=device, dtype=torch.float64).unsqueeze(1)
        cycles = torch.frac(cycles)
        harmonics = torch.arange(1, self.dim + 1, device=device, dtype=torch.float64)
        total = cycles.unsqueeze(-1) * harmonics + phases.to(
            device=device, dtype=torch.float64
        ).unsqueeze(1)
        sines = torch.sin(torch.frac(total).float() * (2.0 * math.pi)) * self.sine_amp  # [B, L, 11]
        uv = (f0_up > self.voiced_threshold).float().unsqueeze(-1)
        noise_amp = uv * self.noise_std + (1.0 - uv) * self.unvoiced_std
        noise = noise_amp * _draw(tuple(sines.shape), "randn", device, generator)
        merged = torch.nn.functional.linear(sines * uv + noise, self.merge_w, self.merge_b)
        return torch.tanh(merged).transpose(1, 2)
