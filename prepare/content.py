"""`gvc extract-hubert`: 16 kHz waves -> HuBERT-Soft units `[T, 256]` float32 `.vec.npy` (50 fps).

The model runs in this process on batches of files (length-sorted windows, see `hubert.soft`):
one copy of a 95M-parameter model using every thread beats one copy per worker process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gvc.audio import load_audio
from gvc.errors import AudioError
from gvc.fileio import save_npy
from gvc.layout import Feature, feature_path
from prepare.discover import Source
from prepare.engine import Task

SAMPLE_RATE = 16000


def hubert_settings(model: Path) -> dict:
    """Folder metadata: which weights made the units (name and size: a stat, no hashing)."""
    model = Path(model)
    return {
        "checkpoint": model.name,
        "bytes": model.stat().st_size if model.is_file() else None,
        "sample_rate": SAMPLE_RATE,
        "hop": 320,
    }


class HubertTask(Task):
    """Units of every 16 kHz wave, batch after batch, in-process."""

    name = "extract-hubert"

    def __init__(
        self,
        out_root: Path,
        model: Path,
        device: str = "cpu",
        precision: str = "fp32",
        batch_files: int = 8,
    ):
        self.out_root = Path(out_root)
        self.model = Path(model)
        self.device = device
        self.precision = precision
        self.batch_size = batch_files
        self._encoder = None

    def outputs(self, src: Source) -> tuple[Path, ...]:
        return (feature_path(self.out_root, Feature.HUBERT, src.utt),)

    def setup(self) -> None:
        if self._encoder is None:
            from gvc.device import resolve_runtime
            from hubert import load_content_encoder

            self._encoder = load_content_encoder(
                self.model, resolve_runtime(self.device, self.precision)
            )

    def run(self, src: Source) -> float:
        result = self.run_batch([src])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def run_batch(self, srcs: Sequence[Source]) -> list[float | BaseException]:
        self.setup()
        results: list[float | BaseException] = [0.0] * len(srcs)
        waves, slots = [], []
        for i, src in enumerate(srcs):
            try:
                audio = load_audio(src.path, SAMPLE_RATE)
                if len(audio) < 320:
                    raise AudioError(
                        f"{src.path}: shorter than one content frame (20 ms); remove the file"
                    )
                waves.append(audio)
                slots.append(i)
                results[i] = len(audio) / SAMPLE_RATE
            except Exception as exc:  # noqa: BLE001 - reported per file
                results[i] = exc
        if waves:
            try:
                units = self._encoder.units_batch(waves)
            except Exception as exc:  # noqa: BLE001 - the whole batch failed: retry one by one
                if len(waves) == 1:
                    results[slots[0]] = exc
                    return results
                units = []
                for w in waves:
                    try:
                        units.append(self._encoder.units(w))
                    except Exception as one:  # noqa: BLE001
                        units.append(one)
            for i, u in zip(slots, units, strict=True):
                if isinstance(u, BaseException):
                    results[i] = u
                    continue
                try:
                    save_npy(
                        self.outputs(srcs[i])[0], np.ascontiguousarray(u.numpy(), dtype=np.float32)
                    )
                except Exception as exc:  # noqa: BLE001
                    results[i] = exc
        return results


def write_units(
    wave: Path, out: Path, *, model: Path, device: str = "cpu", precision: str = "fp32"
) -> np.ndarray:
    """Single-file mode: units of `wave` (any rate, resampled to 16 kHz) saved to `out`."""
    task = HubertTask(out.parent, model, device, precision)
    task.setup()
    audio = load_audio(wave, SAMPLE_RATE)
    if len(audio) < 320:
        raise AudioError(f"{wave}: shorter than one content frame (20 ms)")
    units = np.ascontiguousarray(task._encoder.units(audio).numpy(), dtype=np.float32)
    save_npy(out, units)
    return units
