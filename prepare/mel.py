"""`gvc extract-mel`: 32 kHz waves -> `[100, T]` float32 log-mel `.mel.pt` (Grad-SVC exactly)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from gvc.audio import PEAK, load_audio, peak
from gvc.errors import AudioError
from gvc.fileio import save_torch
from gvc.layout import Feature, feature_path
from prepare.discover import Source
from prepare.engine import Task
from vocoder.mel import MEL


def mel_settings() -> dict:
    """Everything that defines the stored mel (recorded in the folder metadata)."""
    return {**asdict(MEL), "peak": PEAK}


def compute_mel(path: Path):
    """Load `path` at 32 kHz as Grad-SVC's `mel_spectrogram_file` does and return its log-mel.

    The audio is peak-normalised to 0.6 (again), trimmed to a whole number of 320-sample hops.

    Returns:
        (mel [100, T] float32 torch tensor, seconds of audio).
    """
    import torch

    from vocoder.mel import mel_spectrogram

    audio = load_audio(path, MEL.sampling_rate)
    p = peak(audio)
    if p == 0.0:
        raise AudioError(f"{path}: the audio is completely silent; remove the file")
    audio = audio / p * PEAK
    usable = len(audio) // MEL.hop_length * MEL.hop_length
    if usable == 0:
        raise AudioError(f"{path}: shorter than one mel frame (10 ms); remove the file")
    mel = mel_spectrogram(torch.from_numpy(np.ascontiguousarray(audio[:usable])))
    return mel.contiguous().clone(), len(audio) / MEL.sampling_rate


def write_mel(wave: Path, out: Path) -> float:
    """Single-file mode: compute the mel of `wave` and save it to `out`; returns seconds."""
    mel, seconds = compute_mel(wave)
    save_torch(out, mel)
    return seconds


class MelTask(Task):
    """One `.mel.pt` per 32 kHz wave."""

    name = "extract-mel"

    def __init__(self, out_root: Path):
        self.out_root = Path(out_root)

    def preload(self) -> None:
        from vocoder.mel import _basis

        _basis(MEL)  # librosa's filterbank, built once and inherited by the forked workers

    def outputs(self, src: Source) -> tuple[Path, ...]:
        return (feature_path(self.out_root, Feature.MEL, src.utt),)

    def run(self, src: Source) -> float:
        return write_mel(src.path, self.outputs(src)[0])
