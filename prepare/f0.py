"""`gvc extract-f0`: 16 kHz waves -> F0 tracks (Hz, 100 fps, 0 = unvoiced) as `.pit.npy`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gvc.audio import load_audio
from gvc.errors import AudioError
from gvc.fileio import save_npy
from gvc.layout import Feature, feature_path
from pitch import F0Method, PitchExtractor, make_extractor, write_csv
from pitch.base import SAMPLE_RATE
from prepare.discover import Source
from prepare.engine import Task


def compute_f0(extractor: PitchExtractor, path: Path) -> tuple[np.ndarray, float]:
    """F0 track of an audio file loaded at 16 kHz; returns (track [N] float64 Hz, seconds)."""
    audio = load_audio(path, SAMPLE_RATE)
    if len(audio) < SAMPLE_RATE // 100:
        raise AudioError(f"{path}: shorter than one pitch frame (10 ms); remove the file")
    f0 = extractor.extract(audio)
    return f0.astype(np.float64), len(audio) / SAMPLE_RATE


def write_f0(
    wave: Path,
    *,
    method: F0Method | str = F0Method.PRAAT,
    csv: Path | None = None,
    npy: Path | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Single-file mode: Grad-SVC's inference pitch (Praat without 0.1 Hz rounding) to a CSV
    and/or a `.npy`; returns the track."""
    extractor = make_extractor(method, device=device, decimals=None)
    f0, _ = compute_f0(extractor, wave)
    if csv is not None:
        write_csv(csv, f0)
    if npy is not None:
        save_npy(npy, f0)
    return f0


class F0Task(Task):
    """One `.pit.npy` per 16 kHz wave."""

    name = "extract-f0"

    def __init__(self, out_root: Path, extractor: PitchExtractor, in_process_batch: int = 0):
        self.out_root = Path(out_root)
        self.extractor = extractor
        self.batch_size = in_process_batch
        self._ready = False

    def preload(self) -> None:
        import parselmouth  # noqa: F401
        import soxr  # noqa: F401

    def outputs(self, src: Source) -> tuple[Path, ...]:
        return (feature_path(self.out_root, Feature.PITCH, src.utt),)

    def setup(self) -> None:
        if not self._ready:
            self.extractor.setup()
            self._ready = True

    def run(self, src: Source) -> float:
        f0, seconds = compute_f0(self.extractor, src.path)
        save_npy(self.outputs(src)[0], f0)
        return seconds
