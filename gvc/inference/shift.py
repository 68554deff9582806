"""Pitch shift: semitone transposition of an F0 track and the automatic choice of it.

Grad-SVC's `--shift` scales Hz: f0 * 2^(shift / 12), unvoiced frames (0 Hz) stay 0, and the same
shifted track feeds the acoustic model's pitch embedding and the vocoder. `--shift auto` picks
round(12 * log2(target_median / source_median)) from the source's median voiced F0 and the target
singer's profile (`speaker.SingerProfile`, median F0 of the singer's training data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gvc.errors import ConfigError

AUTO = "auto"
SPK_SUFFIX = ".spk.npy"


def parse_shift(text: str | float | int) -> float | str:
    """`--shift` value: a number of semitones (e.g. `-3`, `12`, `0.5`) or `"auto"`.

    Raises:
        ConfigError: anything else.
    """
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        word = str(text).strip().lower()
        if word == AUTO:
            return AUTO
        try:
            value = float(word)
        except ValueError:
            raise ConfigError(
                f"--shift {text!r} is neither a number of semitones nor 'auto'"
            ) from None
    if not math.isfinite(value) or abs(value) > 48:
        raise ConfigError(f"--shift {text!r} is out of range; use -48..48 semitones or 'auto'")
    return value


def shift_f0(f0: np.ndarray, semitones: float) -> np.ndarray:
    """Transpose an F0 track: voiced frames times 2^(semitones / 12), unvoiced (<= 0) become 0.

    Args:
        f0: [N] F0 in Hz (any frame rate), 0 = unvoiced.
        semitones: transposition; +12 doubles every voiced frequency.

    Returns:
        [N] float64 Hz.
    """
    f0 = np.asarray(f0, dtype=np.float64)
    out = np.where(f0 > 0, f0 * 2.0 ** (float(semitones) / 12.0), 0.0)
    return out


def median_voiced(f0: np.ndarray) -> float | None:
    """Median of the voiced (> 0, finite) frames in Hz; None when no frame is voiced."""
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = f0[np.isfinite(f0) & (f0 > 0)]
    return float(np.median(voiced)) if voiced.size else None


def auto_semitones(source_median_hz: float, target_median_hz: float) -> int:
    """round(12 * log2(target / source)): the whole-semitone shift between two median F0s."""
    if source_median_hz <= 0 or target_median_hz <= 0:
        raise ConfigError("median F0 values must be positive to choose a shift")
    return int(round(12.0 * math.log2(target_median_hz / source_median_hz)))


def default_profile_path(spk: Path) -> Path | None:
    """`<dir>/<singer>.profile.json` next to a `<singer>.spk.npy`; None for other file names."""
    spk = Path(spk)
    if not spk.name.endswith(SPK_SUFFIX) or len(spk.name) == len(SPK_SUFFIX):
        return None
    from speaker import profile_path

    return profile_path(spk.parent, spk.name[: -len(SPK_SUFFIX)])


def target_median(spk: Path, profile: Path | None) -> tuple[float, Path]:
    """The target singer's median F0 (Hz) for `--shift auto`, and the profile it came from.

    Args:
        spk: the `--spk` file (its sibling `<singer>.profile.json` is the default profile).
        profile: an explicit `--profile` path, or None.

    Raises:
        ConfigError: no profile given or found next to the speaker file, or the profile has no
            median F0 (the singer's data had no voiced frame).
        DataLayoutError: an unreadable profile.
    """
    from speaker import SingerProfile

    path = Path(profile) if profile is not None else default_profile_path(spk)
    if path is None:
        raise ConfigError(
            f"--shift auto needs the target singer's profile: {spk} is not named <singer>.spk.npy, "
            "so pass --profile <singer>.profile.json (written by gvc extract-speaker) or a number"
        )
    if not path.is_file():
        raise ConfigError(
            f"--shift auto needs the target singer's profile {path}, which does not exist; run "
            "gvc extract-speaker (it writes <singer>.profile.json next to <singer>.spk.npy), "
            "pass --profile PATH, or give --shift a number"
        )
    prof = SingerProfile.load(path)
    if prof.median_f0_hz is None or prof.median_f0_hz <= 0:
        raise ConfigError(f"{path}: the singer profile has no median F0 (no voiced frames); "
                          "give --shift a number")
    return float(prof.median_f0_hz), path


@dataclass(frozen=True)
class ShiftChoice:
    """The shift applied to one input and why.

    Attributes:
        semitones: the transposition applied.
        auto: whether it was chosen automatically.
        source_median_hz: the source's median voiced F0 (None if it has no voiced frame).
        target_median_hz: the target profile's median F0 (auto only).
        profile: the profile file used (auto only).
    """

    semitones: float
    auto: bool = False
    source_median_hz: float | None = None
    target_median_hz: float | None = None
    profile: Path | None = None

    def describe(self) -> str:
        """One line for the user, e.g. `shift +3 semitones (auto: source median 200.0 Hz ...)`."""
        s = f"{self.semitones:+g} semitones"
        if self.auto:
            s += (f" (auto: source median {self.source_median_hz:.1f} Hz, target median "
                  f"{self.target_median_hz:.1f} Hz from {self.profile})")
        return s


def choose_shift(shift: float | str, source_f0: np.ndarray, spk: Path,
                 profile: Path | None = None) -> ShiftChoice:
    """Resolve a `--shift` value for one source F0 track.

    Args:
        shift: semitones, or `"auto"`.
        source_f0: [N] unshifted source F0 (Hz, 0 = unvoiced).
        spk: the target `--spk` file (locates the default profile).
        profile: explicit profile path for auto.

    Raises:
        ConfigError: auto without a usable profile, or a source without voiced frames.
    """
    src = median_voiced(source_f0)
    if shift != AUTO:
        return ShiftChoice(float(shift), source_median_hz=src)
    tgt, path = target_median(spk, profile)
    if src is None:
        raise ConfigError("--shift auto: the source has no voiced frames to measure; "
                          "give --shift a number")
    return ShiftChoice(float(auto_semitones(src, tgt)), True, src, tgt, path)
