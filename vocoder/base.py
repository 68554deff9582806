"""The vocoder interface: log-mel + F0 -> 32 kHz waveform.

Every vocoder takes Grad-SVC's log-mel (`vocoder.mel`: 100 bands, natural log, 100 frames/s) and
frame-rate F0, and returns float32 audio in [-1, 1] with exactly `hop` samples per frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from gvc.errors import FeatureMismatch


class Vocoder(ABC):
    """Abstract vocoder.

    Attributes:
        name: short identifier (`"nsf-bigvgan"`, `"griffinlim"`, ...).
        sample_rate: output rate in Hz (32000).
        hop: output samples per mel frame (320 = 10 ms).
        n_mels: mel bands expected (100).
    """

    name: str = "vocoder"
    sample_rate: int = 32000
    hop: int = 320
    n_mels: int = 100

    def __call__(
        self,
        mel: torch.Tensor,
        f0: torch.Tensor,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """Same as `synthesize` (extra keyword options go to the implementation)."""
        return self.synthesize(mel, f0, generator=generator, **options)

    @abstractmethod
    def synthesize(
        self, mel: torch.Tensor, f0: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Render audio.

        Args:
            mel: [B, 100, T] (or [100, T]) natural-log mel at 100 frames/s.
            f0: [B, T] (or [T]) F0 in Hz at 100 frames/s, 0 = unvoiced.
            generator: random source (global RNG if None); a fixed seed reproduces the output.

        Returns:
            [B, T * 320] (or [T * 320]) float32 audio in [-1, 1] at 32 kHz, on `mel`'s device.
        """

    def check_inputs(
        self, mel: torch.Tensor, f0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Validate shapes; return batched float32 (mel [B, n_mels, T], f0 [B, T]) and whether to
        unbatch.

        Raises:
            FeatureMismatch: wrong rank, band count, batch or frame count.
        """
        unbatched = mel.dim() == 2
        if unbatched:
            mel = mel.unsqueeze(0)
        if f0.dim() == 1:
            f0 = f0.unsqueeze(0)
        if mel.dim() != 3 or f0.dim() != 2:
            raise FeatureMismatch(
                f"{self.name}: expected mel [B, {self.n_mels}, T] and f0 [B, T], got "
                f"{tuple(mel.shape)} and {tuple(f0.shape)}"
            )
        if mel.shape[1] != self.n_mels:
            raise FeatureMismatch(
                f"{self.name}: mel has {mel.shape[1]} bands, the vocoder needs {self.n_mels}"
            )
        if mel.shape[0] != f0.shape[0] or mel.shape[2] != f0.shape[1]:
            raise FeatureMismatch(
                f"{self.name}: mel {tuple(mel.shape)} and f0 {tuple(f0.shape)} disagree in batch "
                f"or frames; "
                "truncate both to the common length first"
            )
        return mel.float(), f0.to(device=mel.device, dtype=torch.float32), unbatched
