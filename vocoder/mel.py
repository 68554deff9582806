"""The log-mel spectrogram shared by the acoustic model and the vocoder.

This is the only mel definition in the project. It reproduces Grad-SVC / NSF-BigVGAN
(`spec/inference.py`) exactly: 32 kHz audio, n_fft 1024, hop 320 (10 ms, 100 fps), periodic Hann
window of 1024, 100 Slaney-scale bands with Slaney norm over 40-16000 Hz, magnitude
sqrt(re^2 + im^2 + 1e-9), natural log of the magnitude clamped at 1e-5, STFT without centring
after reflect-padding (n_fft - hop) / 2 = 352 samples on both sides.

A waveform of L samples (L a multiple of 320) gives exactly L / 320 frames; frame k is centred on
sample 320 k + 160.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torch and librosa are imported inside the functions: the no-op path of `gvc extract-mel`
# (every output up to date) reads this module's settings and must not pay for them.


@dataclass(frozen=True)
class MelConfig:
    """Parameters of the log-mel; the defaults are Grad-SVC's `data:` block."""

    sampling_rate: int = 32000
    n_fft: int = 1024
    hop_length: int = 320
    win_length: int = 1024
    n_mels: int = 100
    fmin: float = 40.0
    fmax: float = 16000.0
    clamp: float = 1e-5

    @property
    def pad(self) -> int:
        """Reflect padding on each side, in samples."""
        return (self.n_fft - self.hop_length) // 2


MEL = MelConfig()
LOG_FLOOR = math.log(MEL.clamp)


@lru_cache(maxsize=8)
def _basis(cfg: MelConfig) -> torch.Tensor:
    """Slaney mel filterbank [n_mels, n_fft // 2 + 1], float32, on CPU."""
    import librosa
    import torch

    fb = librosa.filters.mel(
        sr=cfg.sampling_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    )
    return torch.from_numpy(fb).float()


@lru_cache(maxsize=8)
def _window(cfg: MelConfig) -> torch.Tensor:
    import torch

    return torch.hann_window(cfg.win_length)


def mel_spectrogram(audio: torch.Tensor, cfg: MelConfig = MEL) -> torch.Tensor:
    """Log-mel of a waveform.

    Args:
        audio: [L] or [B, L] float waveform at `cfg.sampling_rate`, nominally in [-1, 1].
            Samples past the last whole hop are ignored by the framing.
        cfg: mel parameters (Grad-SVC's by default).

    Returns:
        [n_mels, T] or [B, n_mels, T] float32 natural-log magnitudes with T = L // hop;
        the floor is ln(1e-5) ~= -11.513. Computed in fp32 on the input's device.
    """
    import torch
    import torch.nn.functional as F

    squeeze = audio.dim() == 1
    x = audio.float().reshape(-1, audio.shape[-1])
    x = F.pad(x.unsqueeze(1), (cfg.pad, cfg.pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        x,
        cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=_window(cfg).to(x.device),
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
    mel = torch.matmul(_basis(cfg).to(x.device), mag)
    out = torch.log(torch.clamp(mel, min=cfg.clamp))
    return out[0] if squeeze else out
