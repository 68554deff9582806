"""A weight-free preview vocoder: invert the shared log-mel with Griffin-Lim.

Steps: `exp` of the log-mel gives mel magnitudes; the pseudo-inverse of the Slaney mel basis maps
them back to 513 linear-frequency magnitudes (clamped at 0); fast Griffin-Lim (momentum 0.99)
recovers a phase with the same framing as `vocoder.mel` (n_fft 1024, hop 320, Hann 1024,
reflect padding of 352 samples, frame k centred on sample 320 k + 160), so T frames give exactly
T * 320 samples. F0 is not used. The result is intelligible but phasey: a preview only.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from gvc.device import Runtime
from vocoder.base import Capabilities, Chunking, Vocoder
from vocoder.mel import MEL, MelConfig, _basis
from vocoder.registry import VocoderSpec

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _pseudo_inverse(cfg: MelConfig) -> torch.Tensor:
    """[n_fft // 2 + 1, n_mels] Moore-Penrose inverse of the mel basis, float32."""
    return torch.linalg.pinv(_basis(cfg).double()).float()


class GriffinLimVocoder(Vocoder):
    """Mel inversion by pseudo-inverse + fast Griffin-Lim; needs no weights.

    Args:
        n_iter: Griffin-Lim iterations (32).
        momentum: fast Griffin-Lim momentum (0.99; 0 gives the classic algorithm).
        cfg: mel definition to invert (Grad-SVC's).
        device: where to compute (CPU if None).
    """

    name = "griffinlim"
    # 30 s windows; a crossfade hides the phase discontinuity at each cut
    capabilities = Capabilities(chunking=Chunking(frames=3000, gpu_frames=3000, context=32,
                                                  crossfade=32))

    def __init__(self, n_iter: int = 32, momentum: float = 0.99, cfg: MelConfig = MEL,
                 device: torch.device | None = None) -> None:
        if n_iter < 1:
            raise ValueError(f"n_iter must be >= 1, got {n_iter}")
        self.n_iter = n_iter
        self.momentum = momentum
        self.cfg = self.mel = cfg
        self.sample_rate = cfg.sampling_rate
        self.hop = cfg.hop_length
        self.n_mels = cfg.n_mels
        self._warned = False
        self._device = device or torch.device("cpu")

    def linear_magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, n_mels, T] log-mel -> [B, n_fft // 2 + 1, T] non-negative linear magnitudes."""
        inv = _pseudo_inverse(self.cfg).to(mel.device)
        return torch.matmul(inv, torch.exp(mel)).clamp(min=0.0)

    def _stft(self, x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        """[B, L] -> [B, n_fft // 2 + 1, L // hop] complex, framed exactly like `vocoder.mel`."""
        cfg = self.cfg
        xp = F.pad(x.unsqueeze(1), (cfg.pad, cfg.pad), mode="reflect").squeeze(1)
        return torch.stft(
            xp,
            cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=window,
            center=False,
            normalized=False,
            onesided=True,
            return_complex=True,
        )

    def _istft(self, spec: torch.Tensor, window: torch.Tensor, length: int) -> torch.Tensor:
        """Least-squares overlap-add inverse of `_stft`: [B, F, T] complex -> [B, length]."""
        cfg = self.cfg
        frames = torch.fft.irfft(spec, n=cfg.n_fft, dim=1) * window.unsqueeze(-1)  # [B, n_fft, T]
        n_frames = spec.shape[-1]
        padded = (n_frames - 1) * cfg.hop_length + cfg.n_fft
        fold = dict(output_size=(1, padded), kernel_size=(1, cfg.n_fft), stride=(1, cfg.hop_length))
        y = F.fold(frames, **fold).reshape(spec.shape[0], padded)
        wsq = (window**2).view(1, -1, 1).expand(1, -1, n_frames)
        env = F.fold(wsq, **fold).reshape(1, padded)
        y = y / env.clamp(min=1e-8)
        return y[:, cfg.pad : cfg.pad + length]

    @property
    def device(self) -> torch.device:
        """Where the inversion runs."""
        return self._device

    def begin(self, mel: torch.Tensor, f0: torch.Tensor,
              generator: torch.Generator | None) -> None:
        """Warn once per instance that this is a preview."""
        if not self._warned:
            logger.warning(
                "using the Griffin-Lim fallback vocoder: preview quality only; "
                "pass an NSF-BigVGAN checkpoint or a trained DiffWave for real output"
            )
            self._warned = True

    def render(self, mel: torch.Tensor, f0: torch.Tensor, lo: int, song: None,
               generator: torch.Generator | None) -> torch.Tensor:
        """Invert one window's log-mel (see `Vocoder.render`); `f0` is unused.

        The initial phases are uniform random from `generator` (global RNG if None).
        """
        b, _, t = mel.shape
        length = t * self.hop
        mag = self.linear_magnitude(mel)
        window = torch.hann_window(self.cfg.win_length, device=mel.device)
        where = generator.device if generator is not None else mel.device
        angle = torch.rand(mag.shape, generator=generator, device=where).to(mel.device) * (
            2 * torch.pi
        )
        phase = torch.polar(torch.ones_like(mag), angle)
        previous = torch.zeros_like(phase)
        for _ in range(self.n_iter):
            audio = self._istft(mag * phase, window, length)
            rebuilt = self._stft(audio, window)
            phase = rebuilt - previous * (self.momentum / (1.0 + self.momentum))
            phase = phase / (phase.abs() + 1e-16)
            previous = rebuilt
        return self._istft(mag * phase, window, length).clamp(-1.0, 1.0)


def load_griffinlim(ckpt: Path | None, config: Path | None,
                    runtime: Runtime | None) -> GriffinLimVocoder:
    """Registry loader: Griffin-Lim on the runtime's device (always fp32); no weights."""
    if ckpt is not None or config is not None:
        logger.info("griffinlim needs no weights; ignoring the vocoder checkpoint/config arguments")
    return GriffinLimVocoder(device=runtime.device if runtime is not None else None)


SPEC = VocoderSpec("griffinlim", GriffinLimVocoder, load_griffinlim,
                   "weight-free Griffin-Lim preview")
