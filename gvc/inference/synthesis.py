"""The two heavy stages, chunked: acoustic model (features -> mel) and vocoder (mel -> audio).

Acoustic model: one `GradSVC.infer` call per chunk of `gvc.inference.chunks`, each seeing at
most chunk + 2 * context frames, with sampler noise from a `NoiseField` indexed by absolute
frame, so the chunk plan changes the result only through the model's finite context. Pieces are
joined in the log-mel domain by a linear crossfade.

Vocoder: NSF-BigVGAN chunks internally (one continuous harmonic phase across chunks, see
`vocoder.nsf_bigvgan`); other vocoders (Griffin-Lim) are run here in fixed windows of
`VOCODER_CHUNK` frames with `VOCODER_OVERLAP` frames of context and an audio crossfade. Both plans
depend only on the song length, never on the acoustic chunk size.
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
VOCODER_CHUNK = 3000  # frames per vocoder window (30 s)
VOCODER_OVERLAP = 32  # context frames per side of a vocoder window

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


def _windows(total: int, size: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(start, stop, lo, hi) windows of `size` frames tiling [0, total) with `overlap` context;
    a last core shorter than `overlap` (too short for the crossfade) joins the one before."""
    cuts = list(range(0, total, size)) + [total]
    if len(cuts) > 2 and cuts[-1] - cuts[-2] < overlap:
        del cuts[-2]
    return [
        (a, b, max(0, a - overlap), min(total, b + overlap))
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]


def _is_nsf(vocoder) -> bool:
    from vocoder import NSFBigVGAN

    return isinstance(vocoder, NSFBigVGAN)


@torch.inference_mode()
def run_vocoder(vocoder, mel: torch.Tensor, f0: np.ndarray, seed: int,
                device: torch.device | None = None) -> np.ndarray:
    """Render audio from a log-mel and the (shifted) F0.

    Args:
        vocoder: a `vocoder.Vocoder`.
        mel: [n_mels, T] log-mel (CPU or device).
        f0: [T] Hz, 0 = unvoiced (the same track the acoustic model saw).
        seed: seeds the vocoder's random source (NSF excitation noise, Griffin-Lim phases).
        device: where to run a vocoder without weights (Griffin-Lim); default CPU.

    Returns:
        [T * hop] float32 audio in [-1, 1] at `vocoder.sample_rate`.
    """
    total = mel.shape[-1]
    mel = clamp_mel(mel)
    gen = torch.Generator().manual_seed(seed)
    f0_t = torch.from_numpy(np.asarray(f0, dtype=np.float32))
    if _is_nsf(vocoder):
        # NSF-BigVGAN chunks with its own device-tuned plan (4 s on CPU, 30 s on CUDA)
        audio = vocoder.synthesize(mel[None].to(vocoder.device), f0_t[None].to(vocoder.device),
                                   generator=gen)
        return audio[0].float().cpu().numpy()
    device = device or torch.device("cpu")
    hop = vocoder.hop
    joiner = Crossfader(total * hop, 1, VOCODER_OVERLAP * hop)
    for start, stop, lo, hi in _windows(total, VOCODER_CHUNK, VOCODER_OVERLAP):
        piece = vocoder.synthesize(mel[None, :, lo:hi].to(device), f0_t[None, lo:hi].to(device),
                                   generator=gen)
        joiner.add(start * hop, stop * hop, lo * hop, piece[0].float().cpu()[None])
    return joiner.result()[0].clamp(-1.0, 1.0).numpy()


@torch.inference_mode()
def run_excitation(vocoder, f0: np.ndarray, seed: int) -> np.ndarray:
    """NSF-BigVGAN's harmonic-plus-noise source alone (Grad-SVC's `gvc_pitch.wav`), chunked.

    Returns:
        [T * hop] float32 in (-1, 1) at the vocoder's rate.

    Raises:
        ValueError: the vocoder has no NSF source.
    """
    if not _is_nsf(vocoder):
        raise ValueError(f"vocoder {vocoder.name!r} has no NSF excitation")
    f0_t = torch.from_numpy(np.asarray(f0, dtype=np.float32))
    gen = torch.Generator().manual_seed(seed)
    return vocoder.excitation(f0_t, gen, chunk_frames=VOCODER_CHUNK).float().numpy()
