"""Objective scores between a reference and a generated recording (pure numpy functions).

Every F0 track here is the project's: Hz at 100 frames/s, 0 = unvoiced (`pitch.PitchExtractor`).
Every log-mel is the project's `vocoder.mel` (natural-log magnitude, [n_mels, T], 100 fps).

Tracks are compared frame by frame after cutting both to the shorter length, never warped: a
copy-synthesis or a gvc conversion keeps the timing of its input, so a timing error is an error
and dynamic time warping would hide it (Amphion aligns F0 by DTW; gvc deliberately does not).
Only MCD is DTW-aligned (the default of the `mel-cepstral-distance` package), so that
it measures timbre rather than timing.

A score that cannot be computed (no frame voiced in both tracks, a constant F0 for the Pearson
correlation) is NaN, never a flattering 0 or 1; summaries drop NaNs and say how many were dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: ln(x) of a magnitude -> log10 of the power x² (bels), the unit the MCD package expects.
LN_MAG_TO_BEL = 2.0 / math.log(10.0)


@dataclass(frozen=True)
class F0Scores:
    """Pitch agreement of a generated track with a reference track.

    Attributes:
        f0_rmse_cents: RMS of 1200·log2(gen / ref) over frames voiced in both (cents).
        fpc: Pearson r of the two tracks in cents over the same frames (1 = same contour).
        vuv_f1: F1 of the generated voicing decisions, reference voiced frames as positives.
        vuv_error: share of frames whose voicing decision differs (0-1).
        voiced_frames: frames voiced in both tracks (the support of the first two scores).
    """

    f0_rmse_cents: float
    fpc: float
    vuv_f1: float
    vuv_error: float
    voiced_frames: int


def cut(a: np.ndarray, b: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays truncated to the shorter length along `axis` (frame alignment by time)."""
    n = min(a.shape[axis], b.shape[axis])
    return np.take(a, np.arange(n), axis=axis), np.take(b, np.arange(n), axis=axis)


def shift_f0(f0: np.ndarray, semitones: float) -> np.ndarray:
    """F0 transposed by `semitones` (Hz × 2^(n/12)); unvoiced frames stay 0."""
    return np.asarray(f0, dtype=np.float64) * 2.0 ** (semitones / 12.0)


def to_cents(f0: np.ndarray, ref_hz: float = 440.0) -> np.ndarray:
    """1200·log2(f0 / ref_hz) for voiced frames; NaN where f0 is 0 (unvoiced)."""
    f0 = np.asarray(f0, dtype=np.float64)
    out = np.full(f0.shape, np.nan)
    voiced = f0 > 0
    out[voiced] = 1200.0 * np.log2(f0[voiced] / ref_hz)
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length vectors; NaN with < 2 points or no variance."""
    if len(a) < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    return float(np.dot(da, db) / denom) if denom > 0 else float("nan")


def f0_scores(ref_f0: np.ndarray, gen_f0: np.ndarray) -> F0Scores:
    """Pitch and voicing agreement of `gen_f0` with `ref_f0` ([T] Hz, 0 = unvoiced, 100 fps).

    The tracks are cut to the shorter one. Transpose the reference first (`shift_f0`) to score a
    conversion made with a shift.
    """
    ref, gen = cut(np.asarray(ref_f0, np.float64), np.asarray(gen_f0, np.float64))
    ref_v, gen_v = ref > 0, gen > 0
    both = ref_v & gen_v
    ref_c, gen_c = to_cents(ref[both]), to_cents(gen[both])
    rmse = float(np.sqrt(np.mean((gen_c - ref_c) ** 2))) if both.any() else float("nan")
    tp = int(both.sum())
    fp = int((gen_v & ~ref_v).sum())
    fn = int((ref_v & ~gen_v).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    error = (fp + fn) / len(ref) if len(ref) else float("nan")
    return F0Scores(rmse, pearson(ref_c, gen_c), f1, error, tp)


def mel_l1(ref_mel: np.ndarray, gen_mel: np.ndarray) -> float:
    """Mean |ref - gen| of two log-mels [n_mels, T] (natural-log units), cut to the shorter."""
    ref, gen = cut(np.asarray(ref_mel), np.asarray(gen_mel))
    return float(np.mean(np.abs(ref - gen))) if ref.size else float("nan")


def mcd_db(ref_mel: np.ndarray, gen_mel: np.ndarray) -> float:
    """Mel-cepstral distortion in dB of two log-mels [n_mels, T] (natural log of magnitudes).

    The `mel-cepstral-distance` package computes Kubichek's (1993) MCD: cepstral coefficients
    1-16 of an unnormalised DCT-II of the log10 mel power (bels), frames aligned by DTW
    (fastdtw, radius 10), mean of the per-frame Euclidean distances. Its cepstrum C relates to
    the natural-log amplitude cepstrum c of the usual dB formula, MCD = 10·√2 / ln 10 · ‖Δc‖
    (Kominek et al. 2008), by c = C · ln 10 / (2 · n_mels); the factor 5·√2 / n_mels puts the
    package's figure on that dB scale. The cepstrum is the DCT of the project's 100-band mel (as
    in MFCCs), not SPTK's all-pass mel-cepstrum, so values are close to, not equal to, published
    WORLD/SPTK MCDs: use them to compare settings with one another.
    """
    from mel_cepstral_distance import compare_mel_spectrograms

    ref = np.asarray(ref_mel, np.float64).T * LN_MAG_TO_BEL
    gen = np.asarray(gen_mel, np.float64).T * LN_MAG_TO_BEL
    if len(ref) == 0 or len(gen) == 0:
        return float("nan")
    mcd, _penalty = compare_mel_spectrograms(ref, gen, aligning="dtw")
    return float(mcd) * 5.0 * math.sqrt(2.0) / ref.shape[1]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embedding vectors (NaN when either is all zeros)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denom) if denom > 0 else float("nan")


@dataclass(frozen=True)
class Summary:
    """Mean of one score over files with its 95 % confidence interval.

    Attributes:
        mean: mean over the finite values (NaN when there are none).
        ci95: half-width of the Student-t 95 % interval of the mean (NaN with < 2 values).
        n: number of finite values.
        dropped: values left out because they were NaN (score undefined for that file).
    """

    mean: float
    ci95: float
    n: int
    dropped: int


def summarise(values: list[float]) -> Summary:
    """Mean and 95 % interval of per-file scores, NaNs dropped and counted."""
    x = np.asarray(values, dtype=np.float64)
    finite = x[np.isfinite(x)]
    n = len(finite)
    if n == 0:
        return Summary(float("nan"), float("nan"), 0, len(x))
    mean = float(finite.mean())
    if n < 2:
        return Summary(mean, float("nan"), 1, len(x) - 1)
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1) * finite.std(ddof=1) / math.sqrt(n))
    return Summary(mean, half, n, len(x) - n)
