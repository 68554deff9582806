"""Source features for conversion: computed in-process or read from files, then aligned.

Rates and shapes:
    wav16k  [L]        float32, 16 kHz mono (the input file resampled, not normalised, as
                       Grad-SVC's inference feeds HuBERT and Praat)
    units   [L//320, 256]  float32 HuBERT-Soft units at 50 frames/s (`.vec.npy`)
    f0      [N]        float64 Hz at 100 frames/s, 0 = unvoiced (Praat grid: N ~ L/160 + 2)

`align` reproduces Grad-SVC's `gvc_inference.py`: units repeated x2 to 100 frames/s, F0 times
2^(shift/12) with 0 staying unvoiced, both truncated to their common length T.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gvc.errors import AudioError, FeatureMismatch
from gvc.inference.shift import shift_f0

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
UNIT_HOP = 320  # 16 kHz samples per HuBERT frame (20 ms)
FRAME_HOP = 160  # 16 kHz samples per mel/pitch frame (10 ms)
MIN_SAMPLES = 1600  # 0.1 s: one Praat analysis window


def load_source(path: Path) -> np.ndarray:
    """Decode an audio file to [L] float32 mono at 16 kHz.

    Raises:
        AudioError: unreadable, empty, NaN/Inf, shorter than 0.1 s, or completely silent.
    """
    from gvc.audio import load_audio

    wav = load_audio(Path(path), SAMPLE_RATE)
    if len(wav) < MIN_SAMPLES:
        raise AudioError(f"{path}: {len(wav) / SAMPLE_RATE:.3f} s of audio is too short to "
                         "convert (need at least 0.1 s)")
    if not np.any(wav):
        raise AudioError(f"{path}: the audio is completely silent; nothing to convert")
    return wav


def expected_unit_frames(num_samples: int) -> int:
    """HuBERT frames of `num_samples` 16 kHz samples: floor(L / 320)."""
    return num_samples // UNIT_HOP


def expected_pitch_frames(num_samples: int) -> int:
    """Pitch frames of `num_samples` 16 kHz samples on the shared Praat grid (padding included)."""
    from pitch import frame_count

    return frame_count(num_samples)


def compute_units(encoder, wav16k: np.ndarray) -> np.ndarray:
    """HuBERT-Soft units of a 16 kHz waveform: [L//320, 256] float32 (see `hubert.HubertSoft`)."""
    import torch

    units = encoder.units(torch.from_numpy(np.ascontiguousarray(wav16k, dtype=np.float32)))
    return np.ascontiguousarray(units.numpy(), dtype=np.float32)


def compute_pitch(extractor, wav16k: np.ndarray) -> np.ndarray:
    """F0 of a 16 kHz waveform with a `pitch.PitchExtractor`: [N] float64 Hz, 0 = unvoiced."""
    return np.asarray(extractor.extract(wav16k), dtype=np.float64)


def read_units(path: Path, dim: int) -> np.ndarray:
    """Read a `.vec.npy` ([T, dim] float) written by `gvc extract-hubert` or Grad-SVC.

    Raises:
        FeatureMismatch: unreadable, wrong rank or width, or NaN/Inf values.
    """
    path = Path(path)
    try:
        vec = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FeatureMismatch(f"{path}: not a readable .vec.npy ({exc})") from exc
    if vec.ndim != 2 or vec.shape[1] != dim or not np.issubdtype(vec.dtype, np.floating):
        raise FeatureMismatch(f"{path}: content units of shape {vec.shape} dtype {vec.dtype}, "
                              f"expected [T, {dim}] float (HuBERT-Soft .vec.npy)")
    if not np.isfinite(vec).all():
        raise FeatureMismatch(f"{path}: content units contain NaN or Inf; re-extract them")
    return np.ascontiguousarray(vec, dtype=np.float32)


def read_pitch(path: Path) -> np.ndarray:
    """Read an F0 track: Grad-SVC's pitch CSV (`.csv`) or a 1-D `.npy` (e.g. `.pit.npy`), in Hz.

    Raises:
        FeatureMismatch: unknown suffix, unreadable file, wrong shape, negative or NaN values.
        GvcError: a CSV line that is not a number (names the line).
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".csv"):
        from pitch import read_csv

        if not path.is_file():
            raise FeatureMismatch(f"pitch file {path} does not exist")
        f0 = read_csv(path)
    elif name.endswith(".npy"):
        try:
            f0 = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise FeatureMismatch(f"{path}: not a readable .npy pitch track ({exc})") from exc
        if f0.ndim != 1 or not np.issubdtype(f0.dtype, np.number):
            raise FeatureMismatch(f"{path}: pitch track of shape {f0.shape}, expected [N] Hz")
    else:
        raise FeatureMismatch(f"{path}: --pit must be a pitch CSV (.csv) or a .npy track")
    f0 = np.asarray(f0, dtype=np.float64)
    if not np.isfinite(f0).all() or (f0 < 0).any():
        raise FeatureMismatch(f"{path}: pitch values must be finite and >= 0 Hz (0 = unvoiced)")
    return f0


def align(units: np.ndarray, f0: np.ndarray, semitones: float) -> tuple[np.ndarray, np.ndarray]:
    """Grad-SVC's alignment of features to the mel rate.

    Args:
        units: [T50, 256] HuBERT units at 50 frames/s.
        f0: [N] source F0 in Hz at 100 frames/s.
        semitones: pitch shift applied to voiced frames.

    Returns:
        (vec [T, 256] float32 = units repeated x2, f0 [T] float64 shifted Hz), with
        T = min(2 * T50, N).

    Raises:
        AudioError: T == 0 (nothing to convert).
    """
    vec = np.repeat(np.asarray(units, dtype=np.float32), 2, axis=0)
    total = min(vec.shape[0], len(f0))
    if total == 0:
        raise AudioError("the input is too short: no frame has both content units and pitch")
    return np.ascontiguousarray(vec[:total]), shift_f0(np.asarray(f0)[:total], semitones)
