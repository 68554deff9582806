"""`gvc resample`: any audio -> mono int16 WAVs at 16 kHz and 32 kHz, as Grad-SVC writes them.

By default every output is peak-normalised to 0.6 of full scale (Grad-SVC `preprocess_a.py`).
Options: loudness normalisation to a LUFS target instead of the peak rule, and splitting long
recordings at their quietest points into pieces of at most `max_seconds`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gvc.audio import AUDIO_SUFFIXES, read_audio, resample, to_int16_peak, write_wav_int16
from gvc.errors import AudioError, ConfigError
from prepare.discover import Source
from prepare.engine import Task

log = logging.getLogger(__name__)

SUPPORTED_RATES = (16000, 32000)
INPUT_SUFFIXES = tuple(sorted(AUDIO_SUFFIXES))


@dataclass(frozen=True)
class ResampleSettings:
    """What `gvc resample` writes."""

    #: output folder of each sample rate
    outputs: dict[int, Path] = field(default_factory=dict)
    #: integrated loudness target in LUFS (RIFT-SVC uses -18); None = Grad-SVC's peak 0.6
    loudness: float | None = None
    #: split recordings longer than this at their quietest points; None = never split
    max_seconds: float | None = None

    def __post_init__(self):
        for sr in self.outputs:
            if sr not in SUPPORTED_RATES:
                raise ConfigError(f"--sr {sr}: gvc writes 16000 or 32000 Hz audio only")
        if self.max_seconds is not None and self.max_seconds < 1.0:
            raise ConfigError(f"--max-seconds {self.max_seconds}: must be at least 1 second")
        if self.loudness is not None and not -70 <= self.loudness <= -5:
            raise ConfigError(f"--loudness {self.loudness}: expected a LUFS value in [-70, -5]")

    def describe(self) -> dict:
        """Settings recorded in each output folder's metadata (rate added per folder)."""
        d = asdict(self)
        d.pop("outputs")
        return d


def piece_name(utt: str, index: int) -> str:
    """Name of piece `index` of a split recording."""
    return f"{utt}_{index:03d}"


def split_points(audio: np.ndarray, sr: int, max_seconds: float) -> list[tuple[int, int]]:
    """Cut [L] audio into spans of at most `max_seconds`, each cut at the quietest 10 ms frame of
    the second half of the allowed span. Returns (start, end) sample pairs covering the audio."""
    hop = max(1, sr // 100)
    limit = int(max_seconds * sr)
    frames = len(audio) // hop
    energy = (
        np.sqrt(np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1))
        if frames
        else np.zeros(0)
    )
    spans, start = [], 0
    while len(audio) - start > limit:
        lo, hi = (start + limit // 2) // hop, (start + limit) // hop
        cut = (lo + int(np.argmin(energy[lo:hi]))) * hop if hi > lo else start + limit
        cut = min(max(cut, start + hop), start + limit)
        spans.append((start, cut))
        start = cut
    spans.append((start, len(audio)))
    return spans


class ResampleTask(Task):
    """Decode one raw recording and write it at each configured rate."""

    name = "resample"

    def __init__(self, settings: ResampleSettings):
        self.cfg = settings

    def preload(self) -> None:
        import soxr  # noqa: F401

    def outputs(self, src: Source) -> tuple[Path, ...]:
        name = src.utt.name if self.cfg.max_seconds is None else piece_name(src.utt.name, 0)
        return tuple(
            Path(root) / src.utt.singer / f"{name}.wav" for root in self.cfg.outputs.values()
        )

    def _level(self, audio: np.ndarray, sr: int, src: Path) -> np.ndarray:
        """Loudness-normalise (float, peak-limited to 0.99) when asked; else leave as is."""
        if self.cfg.loudness is None:
            return audio
        import pyloudnorm

        if len(audio) < int(0.4 * sr):
            raise AudioError(f"{src}: shorter than 0.4 s, too short to measure loudness")
        measured = pyloudnorm.Meter(sr).integrated_loudness(audio.astype(np.float64))
        if not np.isfinite(measured):
            raise AudioError(f"{src}: the audio is completely silent; remove the file")
        out = audio * 10 ** ((self.cfg.loudness - measured) / 20)
        top = float(np.max(np.abs(out)))
        if top > 0.99:
            log.info(
                "%s: peak-limited after loudness normalisation (%.1f dB)",
                src,
                20 * np.log10(0.99 / top),
            )
            out = out * (0.99 / top)
        return out.astype(np.float32)

    def _encode(self, audio: np.ndarray, src: Path) -> np.ndarray:
        if self.cfg.loudness is None:
            return to_int16_peak(audio, src)
        return np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)

    def run(self, src: Source) -> float:
        audio, sr = read_audio(src.path)
        if len(audio) < sr // 100:
            raise AudioError(f"{src.path}: shorter than 10 ms; nothing to convert")
        if float(np.max(np.abs(audio))) == 0.0:
            raise AudioError(f"{src.path}: the audio is completely silent; remove the file")
        audio = self._level(audio, sr, src.path)
        spans = (
            [(0, len(audio))]
            if self.cfg.max_seconds is None
            else split_points(audio, sr, self.cfg.max_seconds)
        )
        writes: list[tuple[Path, np.ndarray, int]] = []
        for a, b in spans:
            piece = audio[a:b]
            if self.cfg.max_seconds is not None and float(np.max(np.abs(piece))) < 1e-4:
                continue  # a silent gap between phrases: nothing to learn from it
            name = (
                src.utt.name
                if self.cfg.max_seconds is None
                else piece_name(src.utt.name, len(writes) // len(self.cfg.outputs))
            )
            for rate, root in self.cfg.outputs.items():
                path = Path(root) / src.utt.singer / f"{name}.wav"
                writes.append((path, self._encode(resample(piece, sr, rate), src.path), rate))
        # Piece 000 (or the only file) goes last: its presence marks the recording as finished.
        for path, pcm, rate in sorted(
            writes, key=lambda w: w[0].name.endswith("_000.wav") or self.cfg.max_seconds is None
        ):
            write_wav_int16(path, pcm, rate)
        return len(audio) / sr
