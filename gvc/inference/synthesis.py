"""The two heavy stages, chunked: acoustic model (features -> mel) and vocoder (mel -> audio).

Acoustic model: one `GradSVC.infer` call per chunk of `gvc.inference.chunks`, each seeing at
most chunk + 2 * context frames, with sampler noise from a `NoiseField` indexed by absolute
frame, so the chunk plan changes the result only through the model's finite context. Pieces are
joined in the log-mel domain by a linear crossfade.

Vocoder: every vocoder chunks long inputs itself, with the plan it declares
(`vocoder.chunking`); the plan depends only on the song length, never on the acoustic chunk size.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from gvc.device import Runtime
from gvc.inference.chunks import Chunk, Crossfader
from gvc.inference.noise import NoiseField

log = logging.getLogger(__name__)

MEL_FLOOR = math.log(1e-5)  # the mel definition's floor, ln(1e-5) ~ -11.51
MEL_CEILING = 8.0  # far above any real log-mel (speech and song peak near 2-4)

Progress = Callable[[int, int], None]  # (chunks done, chunks total)


@torch.inference_mode()
def run_acoustic(model, vec: np.ndarray, f0: np.ndarray, spk: np.ndarray,
                 chunks: Sequence[Chunk], crossfade: int, *, sampler: str, steps: int,
                 temperature: float, noise: NoiseField, runtime: Runtime,
                 progress: Progress | None = None, **options) -> torch.Tensor:
    """Convert aligned features to a mel, chunk by chunk.

    Args:
        model: a `GradSVC` on `runtime.device` in eval mode.
        vec: [T, 256] float32 units at 100 frames/s; f0: [T] Hz (already shifted).
        spk: [256] float32 speaker vector.
        chunks: the plan (cores tile [0, T)); crossfade: width in frames.
        sampler, steps, temperature: decoder settings (see `GradSVC.sample`).
        noise: the positional noise field (seeded).
        runtime: device and autocast precision.
        progress: called with (done, total) after each chunk.
        options: extra sampler keywords.

    Returns:
        [n_mels, T] float32 CPU log-mel.
    """
    total = vec.shape[0]
    device = runtime.device
    spk_t = torch.from_numpy(np.ascontiguousarray(spk, dtype=np.float32))[None].to(device)
    joiner = Crossfader(total, model.n_mels, crossfade)
    for i, chunk in enumerate(chunks):
        v = torch.from_numpy(vec[chunk.lo : chunk.hi])[None].to(device)
        p = torch.from_numpy(np.asarray(f0[chunk.lo : chunk.hi], dtype=np.float32))[None].to(device)
        with runtime.autocast():
            out = model.infer(v, p, spk_t, sampler=sampler, steps=steps, temperature=temperature,
                              noise=noise.noise_fn(chunk.lo), **options)
        joiner.add(chunk.start, chunk.stop, chunk.lo, out.mel[0].float())
        log.debug("chunk %d/%d: frames [%d, %d) from input [%d, %d)", i + 1, len(chunks),
                  chunk.start, chunk.stop, chunk.lo, chunk.hi)
        if progress is not None:
            progress(i + 1, len(chunks))
    return joiner.result()


def clamp_mel(mel: torch.Tensor) -> torch.Tensor:
    """Clamp a log-mel to [ln(1e-5), 8] before vocoding, warning when > 1 % of it was outside.

    A sane model never leaves that range; an untrained or broken one can (exp() of it would
    overflow Griffin-Lim), so the warning says so instead of writing NaN audio.
    """
    outside = ((mel < MEL_FLOOR - 1.0) | (mel > MEL_CEILING)).float().mean().item()
    if outside > 0.01:
        log.warning("%.0f%% of the converted mel lies outside the log-mel range [%.1f, %.1f]: "
                    "is the model trained? (clamped before vocoding)", 100 * outside, MEL_FLOOR,
                    MEL_CEILING)
    return mel.clamp(MEL_FLOOR, MEL_CEILING)


@torch.inference_mode()
def run_vocoder(vocoder, mel: torch.Tensor, f0: np.ndarray, seed: int) -> np.ndarray:
    """Render audio from a log-mel and the (shifted) F0.

    Args:
        vocoder: a `vocoder.Vocoder`.
        mel: [n_mels, T] log-mel (CPU or device).
        f0: [T] Hz, 0 = unvoiced (the same track the acoustic model saw).
        seed: seeds the vocoder's random source (NSF excitation noise, Griffin-Lim phases).

    Returns:
        [T * hop] float32 audio in [-1, 1] at `vocoder.sample_rate`.
    """
    mel = clamp_mel(mel)
    gen = torch.Generator().manual_seed(seed)
    f0_t = torch.from_numpy(np.asarray(f0, dtype=np.float32))
    # the vocoder chunks long inputs with its own declared plan (vocoder.chunking)
    audio = vocoder.synthesize(mel[None].to(vocoder.device), f0_t[None].to(vocoder.device),
                               generator=gen)
    return audio[0].float().cpu().numpy()


@torch.inference_mode()
def run_excitation(vocoder, f0: np.ndarray, seed: int) -> np.ndarray:
    """The vocoder's NSF source alone (Grad-SVC's `gvc_pitch.wav`).

    Returns:
        [T * hop] float32 in (-1, 1) at the vocoder's rate.

    Raises:
        ConfigError: the vocoder has no NSF excitation (`capabilities.excitation`).
    """
    gen = torch.Generator().manual_seed(seed)
    f0_t = torch.from_numpy(np.asarray(f0, dtype=np.float32))
    return vocoder.excitation(f0_t, generator=gen).float().cpu().numpy()
