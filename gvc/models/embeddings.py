"""Pitch quantisation, masks and length helpers (Grad-SVC `grad/utils.py` numerics)."""

from __future__ import annotations

import math

import torch

F0_BIN = 256
F0_MIN_HZ = 50.0
F0_MAX_HZ = 1100.0
F0_MEL_MIN = 1127.0 * math.log(1.0 + F0_MIN_HZ / 700.0)  # 77.755
F0_MEL_MAX = 1127.0 * math.log(1.0 + F0_MAX_HZ / 700.0)  # 1064.408


def f0_to_coarse(f0: torch.Tensor) -> torch.Tensor:
    """Quantise F0 to Grad-SVC's 256 pitch bins (exactly the original torch path).

    m = 1127 ln(1 + f/700); voiced m is mapped linearly from [m(50 Hz), m(1100 Hz)] to [1, 255],
    clamped to [1, 255] and rounded half up. Unvoiced (0 Hz) and anything <= 50 Hz give bin 1;
    bin 0 is never produced. Examples: 100 Hz -> 20, 220 Hz -> 60, 440 Hz -> 122.

    Args:
        f0: [...] F0 in Hz, 0 = unvoiced (100 frames/s). Computed in float32 like the original
            data loader (which stores pitch as a FloatTensor).

    Returns:
        [...] int64 bin indices in 1..255.
    """
    f0 = f0.float()
    mel = 1127.0 * (1.0 + f0 / 700.0).log()
    scaled = (mel - F0_MEL_MIN) * (F0_BIN - 2) / (F0_MEL_MAX - F0_MEL_MIN) + 1.0
    mel = torch.where(mel > 0, scaled, mel)
    mel = mel.clamp(min=1.0, max=F0_BIN - 1.0)
    return (mel + 0.5).long()


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """Boolean mask [B, T] with True on frames < length (T = max(lengths) by default)."""
    if max_length is None:
        max_length = int(lengths.max())
    frames = torch.arange(max_length, device=lengths.device)
    return frames.unsqueeze(0) < lengths.unsqueeze(1)


def frame_mask(lengths: torch.Tensor, max_length: int, dtype: torch.dtype) -> torch.Tensor:
    """Float mask [B, 1, T] (1 = valid frame) as used throughout the model."""
    return sequence_mask(lengths, max_length).unsqueeze(1).to(dtype)


def fix_len_compatibility(length: int, num_downsamplings: int = 2) -> int:
    """Round a frame count up to a multiple of 2**num_downsamplings (4 for the U-Net)."""
    unit = 2**num_downsamplings
    return int(math.ceil(length / unit) * unit)
