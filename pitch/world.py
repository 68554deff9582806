"""WORLD F0 estimators (pyworld): Harvest, and DIO refined by StoneMask."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pitch.base import SAMPLE_RATE, PitchExtractor, frame_times, resample_track


@dataclass(frozen=True)
class WorldSettings:
    """Search range in Hz (NSF-BigVGAN's DIO uses a 900 Hz ceiling)."""

    f0_floor: float = 50.0
    f0_ceil: float = 1000.0


class _World(PitchExtractor):
    def __init__(self, settings: WorldSettings = WorldSettings()):
        self.cfg = settings

    def settings(self) -> dict[str, Any]:
        return asdict(self.cfg)

    def _native(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def extract(self, wav_16k: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(wav_16k, dtype=np.float64)
        target = frame_times(len(x))
        if len(x) == 0:
            return np.zeros(len(target))
        f0, t = self._native(x)
        return resample_track(f0, t, target)


class HarvestPitch(_World):
    """pyworld Harvest at a 10 ms frame period (slow, robust)."""

    name = "harvest"

    def _native(self, x):
        import pyworld

        return pyworld.harvest(
            x, SAMPLE_RATE, f0_floor=self.cfg.f0_floor, f0_ceil=self.cfg.f0_ceil, frame_period=10.0
        )


class DioPitch(_World):
    """pyworld DIO + StoneMask refinement at a 10 ms frame period (fast)."""

    name = "dio"

    def _native(self, x):
        import pyworld

        f0, t = pyworld.dio(
            x, SAMPLE_RATE, f0_floor=self.cfg.f0_floor, f0_ceil=self.cfg.f0_ceil, frame_period=10.0
        )
        return pyworld.stonemask(x, f0, t, SAMPLE_RATE), t
