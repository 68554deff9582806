"""The content-encoder interface: 16 kHz audio in, content units at 50 frames/s out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch


class ContentEncoder(ABC):
    """Speech content features for voice conversion.

    Every implementation maps a mono waveform of L samples at `sample_rate` (16 000 Hz) to
    T = floor(L / `hop`) frames of `dim` float32 values: 50 frames per second, frame j centred
    at 20·j + 10 ms. Grad-SVC stores them as `<utt>.vec.npy` and repeats each frame twice to reach
    the 100 frames/s mel rate.
    """

    sample_rate: ClassVar[int] = 16000
    hop: ClassVar[int] = 320
    dim: ClassVar[int] = 256

    @abstractmethod
    def units(self, wav_16k: torch.Tensor) -> torch.Tensor:
        """Units of one waveform.

        Args:
            wav_16k: [L] float audio at 16 kHz (any device; values roughly in [-1, 1]).

        Returns:
            [floor(L / 320), 256] float32 on the CPU.
        """

    def units_batch(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """Units of several waveforms; element i equals `units(waves[i])`.

        The default runs them one by one; implementations batch for speed.

        Args:
            waves: list of [L_i] float 16 kHz waveforms.

        Returns:
            list of [floor(L_i / 320), 256] float32 CPU tensors, in input order.
        """
        return [self.units(w) for w in waves]

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` of 16 kHz audio."""
        return num_samples // self.hop

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-serialisable `{"name": ..., "settings": {...}}` recorded with feature folders.

        Two encoders whose `describe()` differ may give different units for the same audio.
        """
