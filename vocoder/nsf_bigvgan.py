"""NSF-BigVGAN as a `Vocoder`: loading, chunked synthesis and the excitation preview.

Long inputs are rendered (by `vocoder.chunking`) in chunks of `chunk_frames` mel frames, each with
`overlap_frames` of
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
from vocoder.base import Capabilities, Chunking, Vocoder
from vocoder.bigvgan import BigVGANConfig, NSFBigVGANGenerator
from vocoder.checkpoint import PUBLISHED_PATH, load_bigvgan_config, load_generator
from vocoder.chunking import windows
from vocoder.registry import VocoderSpec

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
        chunk_frames: default frames per chunk (None: whole input in one pass; "default": the
            capabilities' plan for the device).
        overlap_frames: default context frames on each side of a chunk.
    """

    name = "nsf-bigvgan"
    # the context covers the receptive field, so hard cuts are exact; on a CPU the depthwise
    # anti-aliasing filters have no fast bf16 kernel, so bf16 ran slower there than fp32
    # (RTF 0.57 against 0.43 on 30 s, 2 threads; BENCHMARKS.md, one-step conversion)
    capabilities = Capabilities(
        precisions=("fp32", "bf16", "fp16"), cpu_precisions=("fp32",), weights=True,
        excitation=True, needs_f0=True,
        chunking=Chunking(frames=DEFAULT_CHUNK_FRAMES, gpu_frames=GPU_CHUNK_FRAMES,
                          context=DEFAULT_OVERLAP_FRAMES, crossfade=0))

    def __init__(
        self,
        model: NSFBigVGANGenerator,
        runtime: Runtime | None = None,
        chunk_frames: int | None | str = "default",
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
        self, f0: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The NSF source alone (Grad-SVC's `pitch2wav`, saved as `gvc_pitch.wav`).

        Args:
            f0: [B, T] (or [T]) F0 in Hz at 100 frames/s, 0 = unvoiced.
            generator: random source for phases and noise.

        Returns:
            [B, T * 320] (or [T * 320]) float32 excitation in (-1, 1) at 32 kHz, on `f0`'s device.
        """
        squeeze = f0.dim() == 1
        f0b = (f0.reshape(1, -1) if squeeze else f0).to(self.device).float().clamp(min=0.0)
        src = self.model.m_source
        phases = src.initial_phases(f0b.shape[0], self.device, generator)
        pieces = []  # in 30 s pieces: the float64 phase tensors grow with the length
        for start, stop, _, _ in windows(f0b.shape[-1], GPU_CHUNK_FRAMES, 0):
            offset = src.phase_offset(f0b[:, :start]) if start > 0 else None
            pieces.append(src(f0b[:, start:stop], generator, phases=phases, start=offset))
        out = torch.cat(pieces, dim=-1).squeeze(1).to(f0.device)
        return out[0] if squeeze else out

    def begin(self, mel: torch.Tensor, f0: torch.Tensor,
              generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(initial harmonic phases [B, 11] drawn once for the song, the song's F0 [B, T])."""
        return self.model.m_source.initial_phases(mel.shape[0], self.device, generator), f0

    def render(self, mel: torch.Tensor, f0: torch.Tensor, lo: int,
               song: tuple[torch.Tensor, torch.Tensor],
               generator: torch.Generator | None) -> torch.Tensor:
        """One window (see `Vocoder.render`): the excitation continues the fundamental's phase
        accumulated over the song's frames before `lo`, so windows join without a phase jump;
        only the small additive noise is drawn per window."""
        phases, song_f0 = song
        src = self.model.m_source
        offset = src.phase_offset(song_f0[:, :lo]) if lo > 0 else None
        return self._run(mel, src(f0, generator, phases=phases, start=offset))

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
    chunk_frames: int | None | str = "default",
) -> NSFBigVGAN:
    """Load the published NSF-BigVGAN generator (or one in the same layout).

    Args:
        ckpt_path: file with `model_g` (Grad-SVC's `bigvgan_pretrain/nsf_bigvgan_pretrain_32K.pth`).
        config_path: NSF-BigVGAN yaml (`bigvgan/configs/nsf_bigvgan.yaml`); if None the published
            architecture is assumed with the width read from the checkpoint.
        runtime: device and precision (CPU fp32 if None).
        chunk_frames: default chunk length in frames (None: no chunking; "default":
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
    return NSFBigVGAN(model, runtime=runtime, chunk_frames=chunk_frames)


def load(ckpt: Path | None, config: Path | None, runtime: Runtime | None) -> NSFBigVGAN:
    """Registry loader: the checkpoint (default Grad-SVC's published path) on `runtime`."""
    return load_nsf_bigvgan(Path(ckpt) if ckpt is not None else Path(PUBLISHED_PATH), config,
                            runtime=runtime)


SPEC = VocoderSpec("nsf-bigvgan", NSFBigVGAN, load, "Grad-SVC's NSF-BigVGAN (published weights)",
                   Path(PUBLISHED_PATH))
