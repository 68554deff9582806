"""Windowed processing of long files on HuBERT's 320-sample frame grid.

A file of L samples at 16 kHz gives T = floor(L/320) frames; frame j reads the padded samples
[320j, 320j + 400) (padded = 40 zeros + audio + 40 zeros). A window computing frames [s, e)
therefore needs exactly padded[320s : 320e + 80], and its convolutional features equal those of a
full pass, provided the conv0 GroupNorm uses the statistics of the *whole* file: that
normalisation is the only global operation of the feature extractor, so `group_norm_stats()`
computes it in a streaming pass over conv0 (exact, bounded memory). The positional convolution
(±64 frames) and self-attention still see only the window, which is why each window carries
`context` frames on both sides that are computed and dropped.

All windows of a file longer than one window have the same length (the last one is shifted
back to end at the file end, taking more left context), so windows of many files batch
together without padding, which would change the results (HuBERT-Soft has no attention mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gvc.errors import ConfigError
from hubert.model import GN_EPS, HOP, PAD, HubertSoftNet

FRAME_RATE = 50  # frames per second at 16 kHz with hop 320
CONV0_KERNEL, CONV0_STRIDE = 10, 5


@dataclass(frozen=True)
class WindowConfig:
    """How long inputs are cut into windows and batched.

    Attributes:
        chunk_seconds: output frames kept per window, in seconds (50 frames per second).
        context_seconds: frames computed and dropped on each side of a window, in seconds.
        max_batch: most windows per forward pass (bounds memory: about
            `max_batch × (chunk + 2·context)` seconds of audio in flight).
        stats_chunk_seconds: audio per step of the streaming GroupNorm statistics pass.
    """

    chunk_seconds: float = 20.0
    context_seconds: float = 2.0
    max_batch: int = 4
    stats_chunk_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.chunk_frames < 1:
            raise ConfigError(f"hubert chunk_seconds={self.chunk_seconds} must give at least one 20 ms frame")
        if self.context_seconds < 0:
            raise ConfigError(f"hubert context_seconds={self.context_seconds} must be >= 0")
        if self.max_batch < 1:
            raise ConfigError(f"hubert max_batch={self.max_batch} must be >= 1")
        if self.stats_chunk_seconds * FRAME_RATE < 1:
            raise ConfigError(f"hubert stats_chunk_seconds={self.stats_chunk_seconds} must be >= 0.02")

    @property
    def chunk_frames(self) -> int:
        """Output frames kept per window."""
        return int(round(self.chunk_seconds * FRAME_RATE))

    @property
    def context_frames(self) -> int:
        """Context frames on each side of a window."""
        return int(round(self.context_seconds * FRAME_RATE))

    @property
    def span_frames(self) -> int:
        """Frames computed per window: chunk + 2·context."""
        return self.chunk_frames + 2 * self.context_frames


@dataclass(frozen=True)
class Span:
    """One window of a file, in output frames.

    Attributes:
        start: first frame computed (inclusive).
        end: last frame computed (exclusive); the window's audio is padded[320·start : 320·end + 80].
        keep_start: first frame kept (start <= keep_start).
        keep_end: last frame kept, exclusive (keep_end <= end).
    """

    start: int
    end: int
    keep_start: int
    keep_end: int

    @property
    def frames(self) -> int:
        """Frames computed by this window."""
        return self.end - self.start


def num_frames(num_samples: int) -> int:
    """Frames of HuBERT-Soft units for `num_samples` of 16 kHz audio: floor(L / 320)."""
    return num_samples // HOP


def plan_spans(total: int, config: WindowConfig) -> list[Span]:
    """Cut `total` frames into windows whose kept parts tile [0, total) in order.

    A file of at most `config.span_frames` frames is one window. Longer files get windows of
    exactly `span_frames` frames, each keeping `chunk_frames` frames (fewer in the last) with at
    least `context_frames` of computed context on each side except at the file ends.
    """
    if total <= 0:
        return []
    span, chunk, ctx = config.span_frames, config.chunk_frames, config.context_frames
    if total <= span:
        return [Span(0, total, 0, total)]
    spans = []
    for keep_start in range(0, total, chunk):
        keep_end = min(keep_start + chunk, total)
        start = min(max(keep_start - ctx, 0), total - span)
        spans.append(Span(start, start + span, keep_start, keep_end))
    return spans


def pad_audio(wav: torch.Tensor) -> torch.Tensor:
    """[L] → [L + 80]: 40 zeros on each side, as bshall's `units()` does."""
    return torch.nn.functional.pad(wav, (PAD, PAD))


def span_audio(padded: torch.Tensor, span: Span) -> torch.Tensor:
    """The padded samples a window needs: padded[320·start : 320·end + 80] (a view)."""
    return padded[HOP * span.start : HOP * span.end + 2 * PAD]


@torch.no_grad()
def group_norm_stats(net: HubertSoftNet, padded: torch.Tensor, config: WindowConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and 1/std of conv0's output over a whole padded file, streamed.

    Equal to what `nn.GroupNorm(512, 512)` computes over the full input (biased variance,
    eps 1e-5), accumulated in float64 over conv0 frames in pieces of `stats_chunk_seconds`.

    Args:
        net: the network (only conv0 is used), on the same device as `padded`.
        padded: [S] float32 padded 16 kHz audio, S >= 10.
        config: supplies the piece length.

    Returns:
        (mean, rstd), each [512, 1] float32 on `padded`'s device.
    """
    frames = (padded.shape[0] - CONV0_KERNEL) // CONV0_STRIDE + 1
    step = max(1, int(config.stats_chunk_seconds * 16000) // CONV0_STRIDE)
    total = torch.zeros(512, dtype=torch.float64, device=padded.device)
    total_sq = torch.zeros_like(total)
    for first in range(0, frames, step):
        last = min(first + step, frames)
        piece = padded[CONV0_STRIDE * first : CONV0_STRIDE * (last - 1) + CONV0_KERNEL]
        out = net.conv0(piece[None].float())[0].double()  # [512, last - first]
        total += out.sum(dim=1)
        total_sq += out.square().sum(dim=1)
    mean = total / frames
    var = (total_sq / frames - mean.square()).clamp_min(0.0)
    rstd = torch.rsqrt(var + GN_EPS)
    return mean.float()[:, None], rstd.float()[:, None]
