"""NSF-BigVGAN as a `Vocoder`: loading, chunked synthesis and the excitation preview.

Long inputs are rendered in chunks of `chunk_frames` mel frames, each with `overlap_frames` of
context on both sides that is computed and then discarded, so memory stays flat with length. The
context (32 frames) exceeds the generator's receptive field (+-25 frames), so the network part is
exactly the same as a single pass. The
harmonic source keeps one phase track across chunks (initial phases drawn once, each chunk starts
from the phase accumulated over the frames before it); only the small additive noise is drawn per
chunk. With the noise switched off, chunked and whole-signal synthesis agree to float precision
(see tests/test_vocoder.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from gvc.device import Runtime
from gvc.errors import ConfigError
from vocoder.base import Vocoder
from vocoder.bigvgan import BigVGANConfig, NSFBigVGANGenerator
from vocoder.checkpoint import load_bigvgan_config, load_generator

logger = logging.getLogger(__name__)

# 4 s chunks: on CPU, multi-megabyte activations cost page faults on every allocation (a 30 s
# input in one pass ran ~2x slower and peaked at ~2 GB RSS); 4 s chunks plus context ran fastest.
DEFAULT_CHUNK_FRAMES = 400
# On a GPU the page-fault cost is absent and larger launches are cheaper: 30 s chunks.
GPU_CHUNK_FRAMES = 3000
# Context per side; the generator's receptive field is +-25 mel frames, so 32 makes chunking exact.
DEFAULT_OVERLAP_FRAMES = 32


class NSFBigVGAN(Vocoder):
    """The NSF-BigVGAN 32 kHz vocoder (Grad-SVC's `bigvgan_pretrain/nsf_bigvgan_pretrain_32K.pth`).

    Args:
        model: generator with folded weights (see `load_nsf_bigvgan`).
        runtime: device and autocast precision; the model is moved to `runtime.device`. CPU fp32
            if None.
        chunk_frames: default frames per chunk (None: whole input in one pass).
        overlap_frames: default context frames on each side of a chunk.
    """

    name = "nsf-bigvgan"

    def __init__(
        self,
        model: NSFBigVGANGenerator,
        runtime: Runtime | None = None,
        chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
        overlap_frames: int = DEFAULT_OVERLAP_FRAMES,
    ) -> None:
        self.runtime = runtime
        self.model = model.eval().requires_grad_(False)
        if runtime is not None:
            self.model.to(runtime.device)
        cfg = model.config
        self.sample_rate = cfg.sampling_rate
        self.hop = cfg.hop
        self.n_mels = cfg.mel_channels
        self.chunk_frames = chunk_frames
        self.overlap_frames = overlap_frames

    @property
    def device(self) -> torch.device:
        """Device holding the weights."""
        return self.model.conv_post.weight.device

    @property
    def config(self) -> BigVGANConfig:
        """Architecture of the loaded generator."""
        return self.model.config

    @torch.inference_mode()
    def excitation(
        self,
        f0: torch.Tensor,
        generator: torch.Generator | None = None,
        chunk_frames: int | None = None,
    ) -> torch.Tensor:
        """The NSF source alone (Grad-SVC's `pitch2wav`, saved as `gvc_pitch.wav`).

        Args:
            f0: [B, T] (or [T]) F0 in Hz at 100 frames/s, 0 = unvoiced.
            generator: random source for phases and noise.
            chunk_frames: render this many frames at a time (bounded memory for long inputs);
                one phase track runs through the chunks. None renders all at once.

        Returns:
            [B, T * 320] (or [T * 320]) float32 excitation in (-1, 1) at 32 kHz, on `f0`'s device.
        """
        squeeze = f0.dim() == 1
        f0b = (f0.reshape(1, -1) if squeeze else f0).to(self.device).float().clamp(min=0.0)
        src = self.model.m_source
        phases = src.initial_phases(f0b.shape[0], self.device, generator)
        step = chunk_frames or max(1, f0b.shape[-1])
        pieces = [
            src(f0b[:, a : a + step], generator, phases=phases, start=src.phase_offset(f0b[:, :a]))
            for a in range(0, f0b.shape[-1], step)
        ]
        out = torch.cat(pieces, dim=-1) if pieces else f0b.new_zeros(f0b.shape[0], 1, 0)
        out = out.squeeze(1).to(f0.device)
        return out[0] if squeeze else out

    @torch.inference_mode()
    def synthesize(
        self,
        mel: torch.Tensor,
        f0: torch.Tensor,
        generator: torch.Generator | None = None,
        chunk_frames: int | None | str = "default",
        overlap_frames: int | None = None,
    ) -> torch.Tensor:
        """Render audio (see `Vocoder.synthesize`).

        Args:
            mel: [B, 100, T] (or [100, T]) natural-log mel at 100 frames/s.
            f0: [B, T] (or [T]) F0 in Hz, 0 = unvoiced.
            generator: random source of the NSF excitation (global RNG if None).
            chunk_frames: frames per chunk; "default" uses the instance's, None disables chunking.
            overlap_frames: context frames per chunk side; None uses the instance default.

        Returns:
            [B, T * 320] (or [T * 320]) float32 audio in [-1, 1] on `mel`'s device.
        """
        mel_b, f0_b, unbatched = self.check_inputs(mel, f0)
        out_device = mel.device
        mel_b, f0_b = mel_b.to(self.device), f0_b.to(self.device).clamp(min=0.0)
        chunk = self.chunk_frames if chunk_frames == "default" else chunk_frames
        overlap = self.overlap_frames if overlap_frames is None else overlap_frames
        if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
            raise ConfigError(f"chunk_frames must be a positive integer or None, got {chunk!r}")
        if overlap < 0:
            raise ConfigError(f"overlap_frames must be >= 0, got {overlap}")
        total = mel_b.shape[-1]
        src = self.model.m_source
        phases = src.initial_phases(mel_b.shape[0], self.device, generator)
        if chunk is None or total <= chunk:
            audio = self._run(mel_b, src(f0_b, generator, phases=phases))
        else:
            audio = mel_b.new_empty(mel_b.shape[0], total * self.hop)
            for start in range(0, total, chunk):
                stop = min(total, start + chunk)
                lo, hi = max(0, start - overlap), min(total, stop + overlap)
                offset = src.phase_offset(f0_b[:, :lo])
                exc = src(f0_b[:, lo:hi], generator, phases=phases, start=offset)
                piece = self._run(mel_b[:, :, lo:hi], exc)
                audio[:, start * self.hop : stop * self.hop] = piece[
                    :, (start - lo) * self.hop : (stop - lo) * self.hop
                ]
        audio = audio.to(out_device)
        return audio[0] if unbatched else audio

    def _run(self, mel: torch.Tensor, excitation: torch.Tensor) -> torch.Tensor:
        """Generator pass under the runtime's autocast: [B, 100, T], [B, 1, T*hop] -> [B, T*hop]
        fp32."""
        if self.runtime is not None:
            with self.runtime.autocast():
                wav = self.model(mel, excitation)
        else:
            wav = self.model(mel, excitation)
        return wav.squeeze(1).float().clamp(-1.0, 1.0)


def load_nsf_bigvgan(
    ckpt_path: str | Path,
    config_path: str | Path | None = None,
    runtime: Runtime | None = None,
    chunk_frames: int | None | str = "auto",
) -> NSFBigVGAN:
    """Load the published NSF-BigVGAN generator (or one in the same layout).

    Args:
        ckpt_path: file with `model_g` (Grad-SVC's `bigvgan_pretrain/nsf_bigvgan_pretrain_32K.pth`).
        config_path: NSF-BigVGAN yaml (`bigvgan/configs/nsf_bigvgan.yaml`); if None the published
            architecture is assumed with the width read from the checkpoint.
        runtime: device and precision (CPU fp32 if None).
        chunk_frames: default chunk length in frames (None: no chunking; "auto":
            `DEFAULT_CHUNK_FRAMES` on CPU, `GPU_CHUNK_FRAMES` on CUDA).

    Raises:
        CheckpointError: missing/unreadable file or a state dict that does not match exactly.
        ConfigError: unreadable yaml.
    """
    config = load_bigvgan_config(config_path) if config_path is not None else None
    model = load_generator(ckpt_path, config)
    logger.info(
        "loaded NSF-BigVGAN from %s (upsample_initial_channel=%d)",
        ckpt_path,
        model.config.upsample_initial_channel,
    )
    if chunk_frames == "auto":
        on_gpu = runtime is not None and runtime.device.type == "cuda"
        chunk_frames = GPU_CHUNK_FRAMES if on_gpu else DEFAULT_CHUNK_FRAMES
    return NSFBigVGAN(model, runtime=runtime, chunk_frames=chunk_frames)
