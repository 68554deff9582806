"""Praat autocorrelation F0, exactly as Grad-SVC's training preprocessing computes it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pitch.base import PAD_FRAMES, SAMPLE_RATE, PitchExtractor, analysis_frames, frame_count


@dataclass(frozen=True)
class PraatSettings:
    """parselmouth `to_pitch_ac` arguments and the post-processing Grad-SVC applies."""

    time_step: float = 0.01
    pitch_floor: float = 30.0
    pitch_ceiling: float = 1000.0
    voicing_threshold: float = 0.5
    #: round to this many Hz decimals (training files: 1 = 0.1 Hz); None keeps full precision
    decimals: int | None = 1


class PraatPitch(PitchExtractor):
    """`parselmouth.Sound.to_pitch_ac` (10 ms, 30-1000 Hz, voicing 0.5), padded 6 frames each side
    with zeros and rounded to 0.1 Hz (Grad-SVC `prepare/preprocess_f0.py`)."""

    name = "praat"

    def __init__(self, settings: PraatSettings = PraatSettings()):
        self.cfg = settings

    def settings(self) -> dict[str, Any]:
        return asdict(self.cfg)

    def extract(self, wav_16k: np.ndarray) -> np.ndarray:
        import parselmouth

        x = np.asarray(wav_16k, dtype=np.float64)
        out = np.zeros(frame_count(len(x)), dtype=np.float64)
        if analysis_frames(len(x)) == 0:
            return out
        pitch = parselmouth.Sound(x, SAMPLE_RATE).to_pitch_ac(
            time_step=self.cfg.time_step,
            voicing_threshold=self.cfg.voicing_threshold,
            pitch_floor=self.cfg.pitch_floor,
            pitch_ceiling=self.cfg.pitch_ceiling,
        )
        f0 = pitch.selected_array["frequency"]
        n = min(len(f0), len(out) - 2 * PAD_FRAMES)
        out[PAD_FRAMES : PAD_FRAMES + n] = f0[:n]
        if self.cfg.decimals is not None:
            out = np.round(out, self.cfg.decimals)
        return out
