"""The vocoder interface: log-mel + F0 -> 32 kHz waveform, and what each vocoder supports.

Every vocoder takes Grad-SVC's log-mel (`vocoder.mel`: 100 bands, natural log, 100 frames/s) and
frame-rate F0, and returns float32 audio in [-1, 1] with exactly `hop` samples per frame.

A vocoder implements `render` (one window of a song) and may implement `begin` (state shared by
the windows of one song, e.g. NSF-BigVGAN's harmonic phases). `Vocoder.synthesize` cuts long
inputs into windows with `vocoder.chunking.render_chunked`, the one place where vocoder chunking
happens; each vocoder only declares its plan in `capabilities.chunking`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from gvc.errors import ConfigError, FeatureMismatch
from vocoder.mel import MEL, MelConfig

DEFAULT = "default"  # `chunk_frames="default"`: the instance's plan


@dataclass(frozen=True)
class Chunking:
    """How a vocoder cuts a long input (all in mel frames, 10 ms).

    Attributes:
        frames: longest core per window on a CPU.
        gpu_frames: the same on a GPU (large launches are cheap there, page faults absent).
        context: frames computed on each side of a core and discarded.
        crossfade: width of the linear audio crossfade centred on each cut; 0 = hard cut, exact
            when `context` covers the network's receptive field.
    """

    frames: int = 3000
    gpu_frames: int = 3000
    context: int = 32
    crossfade: int = 32

    def __post_init__(self) -> None:
        if min(self.frames, self.gpu_frames) < 1 or self.context < 0:
            raise ConfigError(f"bad vocoder chunking {self}: frames >= 1 and context >= 0")
        if not 0 <= self.crossfade <= 2 * self.context:
            raise ConfigError(f"vocoder crossfade {self.crossfade} must lie in [0, 2 x context]")


@dataclass(frozen=True)
class Capabilities:
    """What a vocoder supports, so that no caller checks names or classes.

    Attributes:
        precisions: autocast precisions it runs in; others fall back to fp32 with a log line.
        cpu_precisions: the same on a CPU, where a precision without fast kernels for the
            vocoder's layers costs more than fp32 (None = `precisions`).
        weights: needs a checkpoint file (`--vocoder-ckpt`).
        excitation: has an NSF excitation (`Vocoder.excitation`, `--save-pitch-wav`).
        needs_f0: its output depends on the F0 track (copy-synthesis must supply one).
        chunking: its long-input plan.
    """

    precisions: tuple[str, ...] = ("fp32",)
    cpu_precisions: tuple[str, ...] | None = None
    weights: bool = False
    excitation: bool = False
    needs_f0: bool = False
    chunking: Chunking = Chunking()


class Vocoder(ABC):
    """Abstract vocoder.

    Attributes:
        name: short identifier (`"nsf-bigvgan"`, `"griffinlim"`, ...).
        capabilities: what it supports (class-level, read by the registry and the callers).
        sample_rate: output rate in Hz (32000).
        hop: output samples per mel frame (320 = 10 ms).
        n_mels: mel bands expected (100).
        mel: the whole mel definition it expects (checked against an acoustic model's).
        chunk_frames: core frames per window (None: whole input at once); set per instance,
            defaults to the capabilities' plan for the vocoder's device.
        overlap_frames: context frames per window side (default: the plan's).
    """

    name: str = "vocoder"
    capabilities: ClassVar[Capabilities] = Capabilities()
    sample_rate: int = 32000
    hop: int = 320
    n_mels: int = 100
    mel: MelConfig = MEL
    chunk_frames: int | None | str = DEFAULT
    overlap_frames: int | None = None

    @property
    def device(self) -> torch.device:
        """Where the vocoder computes (CPU unless a subclass says otherwise)."""
        return torch.device("cpu")

    def __call__(
        self,
        mel: torch.Tensor,
        f0: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """Same as `synthesize`."""
        return self.synthesize(mel, f0, generator=generator, **options)

    def synthesize(
        self,
        mel: torch.Tensor,
        f0: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        chunk_frames: int | None | str = DEFAULT,
        overlap_frames: int | None = None,
    ) -> torch.Tensor:
        """Render audio, in windows when the input is longer than the chunk length.

        Args:
            mel: [B, 100, T] (or [100, T]) natural-log mel at 100 frames/s.
            f0: [B, T] (or [T]) F0 in Hz at 100 frames/s, 0 = unvoiced; None = all unvoiced.
            generator: random source (global RNG if None); a fixed seed reproduces the output.
            chunk_frames: core frames per window; "default" uses the instance's, None disables
                chunking.
            overlap_frames: context frames per window side; None uses the instance's.

        Returns:
            [B, T * hop] (or [T * hop]) float32 audio in [-1, 1], on `mel`'s device.
        """
        from vocoder.chunking import render_chunked

        if f0 is None:
            f0 = mel.new_zeros(mel.shape[:-2] + mel.shape[-1:])
        mel_b, f0_b, unbatched = self.check_inputs(mel, f0)
        plan = self.capabilities.chunking
        chunk = self.chunk_frames if chunk_frames == DEFAULT else chunk_frames
        if chunk == DEFAULT:
            chunk = plan.gpu_frames if self.device.type == "cuda" else plan.frames
        overlap = overlap_frames if overlap_frames is not None else self.overlap_frames
        overlap = plan.context if overlap is None else overlap
        with torch.inference_mode():
            audio = render_chunked(self, mel_b.to(self.device), f0_b.to(self.device).clamp(min=0),
                                   generator, chunk, overlap, min(plan.crossfade, 2 * overlap))
        audio = audio.to(mel.device)
        return audio[0] if unbatched else audio

    def begin(self, mel: torch.Tensor, f0: torch.Tensor,
              generator: torch.Generator | None) -> Any:
        """State shared by every window of one song (None by default).

        Args:
            mel: [B, n_mels, T] the whole song's mel; f0: [B, T] its F0 (on `self.device`).
            generator: the song's random source.
        """
        return None

    @abstractmethod
    def render(self, mel: torch.Tensor, f0: torch.Tensor, lo: int, song: Any,
               generator: torch.Generator | None) -> torch.Tensor:
        """Render one window.

        Args:
            mel: [B, n_mels, W] the window's mel; f0: [B, W] its F0 in Hz (clamped at 0).
            lo: the song frame of the window's first frame.
            song: what `begin` returned for this song.
            generator: the song's random source.

        Returns:
            [B, W * hop] float32 audio in [-1, 1] on `mel`'s device.
        """

    def set_steps(self, steps: int) -> None:
        """Choose the number of sampling steps (`--vocoder-steps`) of an iterative vocoder.

        Raises:
            ConfigError: the vocoder is not iterative, or does not support `steps`.
        """
        raise ConfigError(f"vocoder {self.name} is not iterative: it takes no --vocoder-steps")

    def excitation(self, f0: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """The NSF source alone: [B, T] (or [T]) Hz -> [B, T * hop] (or [T * hop]).

        Raises:
            ConfigError: this vocoder has no excitation (`capabilities.excitation` is False).
        """
        raise ConfigError(f"vocoder {self.name} has no NSF excitation")

    def check_inputs(
        self, mel: torch.Tensor, f0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Validate shapes; return batched float32 (mel [B, n_mels, T], f0 [B, T]) and whether
        to unbatch.

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
                "or frames; truncate both to the common length first"
            )
        return mel.float(), f0.to(device=mel.device, dtype=torch.float32), unbatched
