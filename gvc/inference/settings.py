"""Settings and results of a conversion (plain dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from gvc.inference.shift import ShiftChoice

DEFAULT_SEED = 1234


@dataclass(frozen=True)
class DecodeSettings:
    """Acoustic-model sampling settings.

    Attributes:
        sampler: a sampler of the model's decoder family (`gvc.decoders.sampler_names`).
        steps: sampler steps (network evaluations = steps x the sampler's `nfe_per_step`).
        temperature: the family's meaning (score: x_T = mu + N(0, I) / T; flow: x_0 = N(0, I) T).
        seed: seeds the sampler noise field and the vocoder.
        options: extra keywords of the sampler function (e.g. `grid` for DPM-Solver).
        cfg_strength: classifier-free guidance strength (0 = off).
    """

    sampler: str
    steps: int
    temperature: float
    seed: int = DEFAULT_SEED
    options: dict[str, object] = field(default_factory=dict)
    cfg_strength: float = 0.0


@dataclass
class Conversion:
    """Result of converting one input.

    Attributes:
        audio: [T * 320] float32 in [-1, 1] at `sample_rate` (32 kHz).
        sample_rate: output rate in Hz.
        mel: [n_mels, T] float32 converted log-mel (CPU).
        f0: [T] float64 shifted F0 in Hz (what the model and the vocoder saw).
        shift: the shift applied and how it was chosen.
        chunks: number of acoustic-model chunks.
        seconds: input duration in seconds.
        timings: wall seconds per stage (`load`, `units`, `pitch`, `acoustic`, `vocoder`).
    """

    audio: np.ndarray
    sample_rate: int
    mel: torch.Tensor
    f0: np.ndarray
    shift: ShiftChoice
    chunks: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
