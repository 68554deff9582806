"""Long-input vocoding: the one place a song is cut into windows and joined again.

A window has a core [start, stop) it owns and an input span [lo, hi) = core plus `context`
frames on each side (clipped to the song). Cores tile the song and are at most `chunk` frames
long, so a vocoder never sees more than chunk + 2 * context frames and memory stays flat in the
song length. Windows are rendered in order with one per-song state (`Vocoder.begin`) and joined
in the audio domain by a linear crossfade of `crossfade` frames centred on each cut (0 = hard
cut). The plan depends only on the song length and the vocoder's declared chunking.
"""

from __future__ import annotations

import torch

from gvc.errors import ConfigError
from gvc.inference.chunks import Crossfader


def windows(total: int, chunk: int | None,
            context: int) -> list[tuple[int, int, int, int]]:
    """(start, stop, lo, hi) windows tiling [0, total) in mel frames.

    A last core shorter than `context` (too short to hold a crossfade) joins the one before.
    `chunk` None (or >= total) gives one window.
    """
    if chunk is None or total <= chunk:
        return [(0, total, 0, total)]
    cuts = list(range(0, total, chunk)) + [total]
    if len(cuts) > 2 and cuts[-1] - cuts[-2] < context:
        del cuts[-2]
    return [(a, b, max(0, a - context), min(total, b + context))
            for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def render_chunked(vocoder, mel: torch.Tensor, f0: torch.Tensor,
                   generator: torch.Generator | None, chunk: int | None, context: int,
                   crossfade: int) -> torch.Tensor:
    """Render a whole song window by window.

    Args:
        vocoder: a `vocoder.Vocoder`.
        mel: [B, n_mels, T] float32 on the vocoder's device; f0: [B, T] Hz, clamped at 0.
        generator: the song's random source, handed to every window in order.
        chunk: core frames per window (None: one window); context: frames per side;
        crossfade: crossfade width in frames (at most 2 x context).

    Returns:
        [B, T * hop] float32 audio on `mel`'s device.

    Raises:
        ConfigError: a chunk length < 1 or a negative context.
    """
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise ConfigError(f"chunk_frames must be a positive integer or None, got {chunk!r}")
    if context < 0:
        raise ConfigError(f"overlap_frames must be >= 0, got {context}")
    batch, _, total = mel.shape
    hop = vocoder.hop
    song = vocoder.begin(mel, f0, generator)
    plan = windows(total, chunk, context)
    if len(plan) == 1:
        return vocoder.render(mel, f0, 0, song, generator)
    width = crossfade * hop
    if width == 0:  # hard cuts: write each core in place, on the device
        audio = mel.new_empty(batch, total * hop)
    else:
        joiner = Crossfader(total * hop, batch, width)
    for start, stop, lo, hi in plan:
        piece = vocoder.render(mel[:, :, lo:hi], f0[:, lo:hi], lo, song, generator)
        if width == 0:
            audio[:, start * hop:stop * hop] = piece[:, (start - lo) * hop:(stop - lo) * hop]
        else:
            joiner.add(start * hop, stop * hop, lo * hop, piece)
    if width == 0:
        return audio
    return joiner.result().to(mel.device).clamp(-1.0, 1.0)
