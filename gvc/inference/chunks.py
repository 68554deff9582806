"""Cutting a long song into chunks at quiet frames, and joining the pieces with a crossfade.

All positions are mel frames (100 frames/s, 10 ms). A chunk has a *core* [start, stop) that it
owns and an *input span* [lo, hi) = core plus `context_frames` on each side (clipped to the
song, widened to the U-Net's 4-frame grid and to one fixed length except at the song's end), which
the
model sees so that the core is computed with real neighbours on both sides. Cores tile the song;
each is at most `chunk_frames` long, so the model never sees more than
chunk_frames + 2 * context_frames + 6 frames (alignment slack) at once, in at most three
tensor shapes, and memory stays flat in song length.

Cut points are chosen near each nominal boundary (up to `search_frames` earlier) at the frame
whose neighbourhood is quietest: the source's RMS energy in dB, plus a penalty for voiced
frames (F0 > 0), averaged over the crossfade width (`cut_scores`). Pieces are joined by a
linear crossfade of `crossfade_frames` centred on each cut (`Crossfader`), taken from the
context both neighbours computed, so no frame near a cut comes from the edge of a chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gvc.errors import ConfigError

VOICED_PENALTY_DB = 30.0  # a voiced frame counts as this much louder when choosing a cut
SILENCE_DB = -100.0  # energy floor (dB re full scale)


@dataclass(frozen=True)
class ChunkSettings:
    """How a song is cut (all in mel frames, 10 ms).

    Attributes:
        chunk_frames: longest core per chunk (Grad-SVC: 2400 = 24 s).
        context_frames: extra frames computed on each side of a core and discarded.
        crossfade_frames: width of the linear crossfade centred on each cut (0 = hard cut);
            at most 2 * context_frames.
        search_frames: how far before a nominal boundary to look for a quiet cut.
        align: input spans start (and, except at the song end, stop) on multiples of this,
            the U-Net's total downsampling (4): its strided convolutions then see the same
            frame grid as in a whole-song pass.
    """

    chunk_frames: int = 2400
    context_frames: int = 50
    crossfade_frames: int = 10
    search_frames: int = 300
    align: int = 4

    def __post_init__(self) -> None:
        if self.chunk_frames < 8:
            raise ConfigError(f"chunk length {self.chunk_frames} frames is too short; use >= 8 "
                              "(0.08 s)")
        if self.context_frames < 0 or self.search_frames < 0 or self.crossfade_frames < 0:
            raise ConfigError("chunk context, crossfade and search widths must be >= 0")
        if self.align < 1:
            raise ConfigError(f"chunk alignment must be >= 1, got {self.align}")
        if self.crossfade_frames > 2 * self.context_frames:
            raise ConfigError(
                f"crossfade of {self.crossfade_frames} frames needs at least "
                f"{(self.crossfade_frames + 1) // 2} context frames per side, got "
                f"{self.context_frames}")
        if self.crossfade_frames > self.chunk_frames // 2:
            raise ConfigError(f"crossfade of {self.crossfade_frames} frames is longer than half a "
                              f"chunk ({self.chunk_frames} frames)")


@dataclass(frozen=True)
class Chunk:
    """One chunk: core [start, stop) and input span [lo, hi), in song frames."""

    start: int
    stop: int
    lo: int
    hi: int


def frame_energy_db(wav: np.ndarray, frames: int, hop: int) -> np.ndarray:
    """RMS energy per frame in dB re full scale: frame i covers samples [hop*i, hop*(i+1)).

    Args:
        wav: [L] float audio (16 kHz: hop 160 gives the 10 ms mel grid).
        frames: number of frames wanted (frames past the audio end are silent).
        hop: samples per frame.

    Returns:
        [frames] float64 dB (>= SILENCE_DB).
    """
    x = np.asarray(wav, dtype=np.float64).reshape(-1)
    n = min(frames, len(x) // hop)
    out = np.full(frames, SILENCE_DB)
    if n:
        rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))
        out[:n] = np.maximum(20.0 * np.log10(np.maximum(rms, 1e-12)), SILENCE_DB)
    return out


def cut_scores(energy_db: np.ndarray, f0: np.ndarray | None, width: int) -> np.ndarray:
    """Per-frame cost of cutting there: energy plus voiced penalty, averaged over `width` frames.

    Args:
        energy_db: [T] frame energy in dB.
        f0: [T] F0 in Hz (0 = unvoiced) or None.
        width: averaging window in frames (the crossfade width; at least 1).

    Returns:
        [T] float64, lower = better place to cut.
    """
    cost = np.asarray(energy_db, dtype=np.float64).copy()
    if f0 is not None:
        cost += VOICED_PENALTY_DB * (np.asarray(f0)[: len(cost)] > 0)
    width = max(1, int(width))
    if width > 1 and len(cost):
        kernel = np.ones(width) / width
        padded = np.pad(cost, (width // 2, width - 1 - width // 2), mode="edge")
        cost = np.convolve(padded, kernel, mode="valid")
    return cost


def plan_chunks(
    total: int, settings: ChunkSettings, scores: np.ndarray | None = None
) -> list[Chunk]:
    """Cut `total` frames into chunks (see the module docstring).

    Args:
        total: song length in frames.
        settings: chunk, context, crossfade and search widths.
        scores: [total] cut costs (`cut_scores`); None cuts exactly every chunk_frames.

    Returns:
        Chunks whose cores tile [0, total) in order (empty list for total == 0).
    """
    n = settings.chunk_frames
    half = (settings.crossfade_frames + 1) // 2
    cuts = [0]
    while total - cuts[-1] > n:
        s = cuts[-1]
        nominal = s + n
        # the last core must hold a whole crossfade ramp
        upper = min(nominal, total - settings.crossfade_frames)
        first = min(upper, max(s + n // 2, nominal - settings.search_frames, s + half + 1))
        cut = upper
        if scores is not None and first < upper:
            window = scores[first : upper + 1]
            cut = first + int(len(window) - 1 - np.argmin(window[::-1]))  # latest minimum
        cuts.append(cut)
    cuts.append(total)
    return [Chunk(a, b, *_span(a, total, settings))
            for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def span_frames(settings: ChunkSettings) -> int:
    """Length of every input span of a song longer than it: chunk + 2 * context, plus up to
    align - 1 frames of alignment slack, rounded up to a multiple of `align`."""
    unit = settings.align
    need = settings.chunk_frames + 2 * settings.context_frames + unit - 1
    return -(-need // unit) * unit


def _span(start: int, total: int, settings: ChunkSettings) -> tuple[int, int]:
    """Input span [lo, hi) of the chunk whose core starts at `start`.

    lo sits on the `align` grid at or before start - context. Spans have one fixed length
    (`span_frames`, reaching past stop + context) except near the song's end, where they run to
    the end: at most three tensor shapes per song. oneDNN/cuDNN build and cache kernels per
    shape, so shapes that vary with every cut would make memory grow with the number of chunks.
    """
    unit, length = settings.align, span_frames(settings)
    if total <= length:
        return 0, total
    lo = max(0, (start - settings.context_frames) // unit * unit)
    return lo, min(total, lo + length)


class Crossfader:
    """Overlap-add of chunk outputs with linear crossfades centred on the cuts.

    Args:
        total: song length (frames, or samples when joining audio).
        channels: rows of the output (n_mels, or 1 for audio).
        width: crossfade width (same unit as `total`); 0 = hard cuts.
    """

    def __init__(self, total: int, channels: int, width: int) -> None:
        self.total, self.width = total, int(width)
        self.out = torch.zeros((channels, total), dtype=torch.float32)

    def _ramp(self, up: bool) -> torch.Tensor:
        r = (torch.arange(self.width, dtype=torch.float32) + 0.5) / self.width
        return r if up else 1.0 - r

    def add(self, start: int, stop: int, lo: int, piece: torch.Tensor) -> None:
        """Add a chunk's output.

        Args:
            start, stop: the chunk's core (cuts at `start` unless 0, at `stop` unless total).
            lo: position of `piece[..., 0]`.
            piece: [channels, n] output covering at least the core plus half the crossfade
                beyond each inner cut.
        """
        piece = piece.detach().to("cpu", torch.float32).reshape(self.out.shape[0], -1)
        left = self.width // 2
        a = start - left if start > 0 else 0
        b = stop - left + self.width if stop < self.total else self.total
        if a < lo or b > lo + piece.shape[-1]:
            raise ValueError(f"chunk output [{lo}, {lo + piece.shape[-1]}) does not cover the "
                             f"crossfade span [{a}, {b})")
        seg = piece[:, a - lo : b - lo].clone()
        if start > 0 and self.width:
            seg[:, : self.width] *= self._ramp(True)
        if stop < self.total and self.width:
            seg[:, seg.shape[-1] - self.width :] *= self._ramp(False)
        self.out[:, a:b] += seg

    def result(self) -> torch.Tensor:
        """The joined signal [channels, total] float32 (CPU)."""
        return self.out
