"""The pitch-extractor interface and the frame grid every method shares.

Every extractor returns F0 in Hz at 100 frames/s (hop 160 at 16 kHz), 0.0 for unvoiced frames,
on Grad-SVC's Praat grid: a file of L samples at 16 kHz gives `frame_count(L)` frames,
floor((L/16000 - 0.1) / 0.01) + 1 analysis frames plus 6 zero frames on each side, and frame i is
centred at `frame_times(L)[i]` ~= (i - 1) * 10 ms. That is about 3 frames more than the mel of the
same audio and 15 ms early, exactly as the released checkpoints were trained; the data loader
truncates to the common length.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
HOP_SECONDS = 0.01
WINDOW_SECONDS = 0.1  # Praat AC window: 3 periods of the 30 Hz floor
PAD_FRAMES = 1024 // 160  # = 6, inherited from whisper-vits-svc


def analysis_frames(num_samples: int, sr: int = SAMPLE_RATE) -> int:
    """Frames Praat analyses in `num_samples` (0 when shorter than one window)."""
    dur = num_samples / sr
    return (
        max(0, int(np.floor((dur - WINDOW_SECONDS) / HOP_SECONDS + 1e-9)) + 1)
        if dur >= WINDOW_SECONDS
        else 0
    )


def frame_count(num_samples: int, sr: int = SAMPLE_RATE) -> int:
    """Length of the pitch track of `num_samples` samples, padding included."""
    return analysis_frames(num_samples, sr) + 2 * PAD_FRAMES


def frame_times(num_samples: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Centre time in seconds of every frame of the padded track ([frame_count] float64).

    Praat centres its analysis frames in the signal: the first one sits at
    (dur - (n - 1) * hop) / 2; padding frames continue the grid outwards.
    """
    n = analysis_frames(num_samples, sr)
    dur = num_samples / sr
    t1 = (dur - (n - 1) * HOP_SECONDS) / 2 if n else 0.0
    return t1 + (np.arange(n + 2 * PAD_FRAMES) - PAD_FRAMES) * HOP_SECONDS


def resample_track(f0: np.ndarray, times: np.ndarray, target_times: np.ndarray) -> np.ndarray:
    """Nearest-frame lookup of a native F0 track onto `target_times` (0 outside the track).

    Nearest (not linear) keeps voiced/unvoiced boundaries crisp; the offsets involved are at most
    half a frame (5 ms).
    """
    out = np.zeros(len(target_times), dtype=np.float64)
    if len(f0) == 0:
        return out
    step = times[1] - times[0] if len(times) > 1 else HOP_SECONDS
    idx = np.rint((target_times - times[0]) / step).astype(np.int64)
    ok = (idx >= 0) & (idx < len(f0))
    out[ok] = f0[idx[ok]]
    return out


class PitchExtractor(ABC):
    """F0 of 16 kHz mono audio: [L] float -> [frame_count(L)] float64 Hz, 0 = unvoiced."""

    name: str = "pitch"
    sample_rate: int = SAMPLE_RATE

    @abstractmethod
    def extract(self, wav_16k: np.ndarray) -> np.ndarray:
        """F0 track on the shared grid (see the module docstring)."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Every setting that changes the output (recorded in feature-folder metadata)."""

    def describe(self) -> dict[str, Any]:
        """Extractor name plus settings."""
        return {"extractor": self.name, **self.settings()}

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Load models (called once per process before the first `extract`)."""
