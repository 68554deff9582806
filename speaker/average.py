"""Per-singer timbre code (mean d-vector) and a small per-singer profile.

`singer_mean` is Grad-SVC's `prepare/preprocess_speaker_ave.py`: the plain arithmetic mean of a
singer's per-utterance d-vectors, float32 [256], *not* renormalised (the shipped
`assets/singers/*.npy` have norms 0.64-0.83). Unlike the original, nothing here ever writes to
the per-utterance files: Grad-SVC overwrites every `.spk.npy` within cosine 0.85 of the mean
with the mean itself, which silently changes the training data on every run.

`SingerProfile` records what a user needs to pick a transposition for a singer: median F0 and
the 5th-95th percentile F0 range over voiced frames (Hz), voiced fraction, amount of data. It is
saved as JSON next to the mean, e.g. `data_gvc/singer/<singer>.profile.json`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gvc.errors import DataLayoutError, FeatureMismatch
from gvc.fileio import save_json
from speaker.base import EMBED_DIM

SPK_SUFFIX = ".spk.npy"
PROFILE_SUFFIX = ".profile.json"
PROFILE_FORMAT = 1


def singer_mean(embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """Arithmetic mean of per-utterance d-vectors (accumulated in float64).

    Args:
        embeddings: one or more [256] arrays (any float dtype); they are not modified.

    Returns:
        [256] float32 mean, not normalised.

    Raises:
        FeatureMismatch: an empty list, a vector of another shape, or NaN/Inf values.
    """
    if len(embeddings) == 0:
        raise FeatureMismatch("cannot average an empty list of speaker embeddings")
    total = np.zeros(EMBED_DIM, dtype=np.float64)
    for i, e in enumerate(embeddings):
        arr = np.asarray(e)
        if arr.shape != (EMBED_DIM,):
            raise FeatureMismatch(
                f"speaker embedding #{i} has shape {arr.shape}, expected ({EMBED_DIM},)"
            )
        if not np.isfinite(arr).all():
            raise FeatureMismatch(f"speaker embedding #{i} contains NaN or Inf")
        total += arr
    return (total / len(embeddings)).astype(np.float32)


def spk_files(folder: Path) -> list[Path]:
    """The `*.spk.npy` files of one singer folder, sorted; hidden temp files are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataLayoutError(f"{folder}: not a folder of per-utterance speaker embeddings")
    return sorted(
        p for p in folder.glob(f"*{SPK_SUFFIX}") if not p.name.startswith(".") and p.is_file()
    )


def load_embedding(path: Path) -> np.ndarray:
    """Read one `.spk.npy` (float32 [256]) without pickles.

    Raises:
        FeatureMismatch: unreadable, wrong shape, or not finite.
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FeatureMismatch(f"{path}: not a readable .npy speaker embedding ({exc})") from exc
    if arr.shape != (EMBED_DIM,) or not np.issubdtype(arr.dtype, np.floating):
        raise FeatureMismatch(
            f"{path}: speaker embedding of shape {arr.shape} dtype {arr.dtype}, expected "
            f"({EMBED_DIM},) float32; re-run the speaker extraction"
        )
    if not np.isfinite(arr).all():
        raise FeatureMismatch(f"{path}: speaker embedding contains NaN or Inf; re-extract it")
    return arr


def average_folder(folder: Path) -> np.ndarray:
    """Mean d-vector of every `*.spk.npy` in a singer folder (read-only; writes nothing).

    Returns:
        [256] float32, not normalised.

    Raises:
        DataLayoutError: the folder is missing or holds no `*.spk.npy`.
        FeatureMismatch: a file is unreadable or has the wrong shape.
    """
    files = spk_files(folder)
    if not files:
        raise DataLayoutError(
            f"{folder}: no *{SPK_SUFFIX} files; run the speaker extraction for this singer first"
        )
    return singer_mean([load_embedding(p) for p in files])


@dataclass(frozen=True)
class SingerProfile:
    """Summary of one singer's data (F0 in Hz; None when no frame is voiced).

    Attributes:
        utterance_count: number of utterances summarised.
        total_seconds: total audio duration in seconds.
        median_f0_hz: median F0 over voiced frames.
        f0_low_hz: 5th percentile F0 over voiced frames.
        f0_high_hz: 95th percentile F0 over voiced frames.
        voiced_fraction: voiced frames / all frames, in [0, 1].
        format: file-format version.
    """

    utterance_count: int
    total_seconds: float
    median_f0_hz: float | None
    f0_low_hz: float | None
    f0_high_hz: float | None
    voiced_fraction: float
    format: int = PROFILE_FORMAT

    def save(self, path: Path) -> None:
        """Write as JSON atomically (temp file in the same folder, then `os.replace`)."""
        save_json(Path(path), dataclasses.asdict(self))

    @classmethod
    def load(cls, path: Path) -> SingerProfile:
        """Read a profile written by `save`.

        Raises:
            DataLayoutError: unreadable JSON, missing or unknown fields, newer format.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataLayoutError(f"{path}: not a readable singer profile ({exc})") from exc
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) - names or (names - {"format"}) - set(data):
            raise DataLayoutError(
                f"{path}: singer profile fields "
                f"{sorted(data) if isinstance(data, dict) else data!r} "
                f"do not match {sorted(names)}; rebuild it with the speaker extraction step"
            )
        if int(data.get("format", PROFILE_FORMAT)) > PROFILE_FORMAT:
            raise DataLayoutError(
                f"{path}: singer profile format {data['format']} is newer than this gvc"
            )
        return cls(**data)


def profile_path(singer_dir: Path, singer: str) -> Path:
    """`<singer_dir>/<singer>.profile.json`, next to `<singer>.spk.npy`."""
    return Path(singer_dir) / f"{singer}{PROFILE_SUFFIX}"


def build_profile(
    utterance_count: int, total_seconds: float, pitch_arrays: Iterable[np.ndarray]
) -> SingerProfile:
    """Summarise a singer's F0 tracks.

    Args:
        utterance_count: number of utterances.
        total_seconds: their total duration in seconds.
        pitch_arrays: F0 tracks in Hz (any frame rate, e.g. Grad-SVC's 100 fps `.pit.npy`);
            frames <= 0 or non-finite are unvoiced.

    Returns:
        The profile; F0 statistics are None when no frame is voiced.
    """
    tracks = [np.asarray(p, dtype=np.float64).reshape(-1) for p in pitch_arrays]
    all_f0 = np.concatenate(tracks) if tracks else np.zeros(0)
    voiced = all_f0[np.isfinite(all_f0) & (all_f0 > 0)]
    frac = float(voiced.size / all_f0.size) if all_f0.size else 0.0
    if voiced.size:
        low, median, high = (float(v) for v in np.percentile(voiced, [5, 50, 95]))
    else:
        low = median = high = None
    return SingerProfile(
        utterance_count=int(utterance_count),
        total_seconds=float(total_seconds),
        median_f0_hz=median,
        f0_low_hz=low,
        f0_high_hz=high,
        voiced_fraction=frac,
    )
