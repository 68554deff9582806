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
back to end at the file end, taking more left context), so windows of long files batch
together without padding. Shorter files are batched by length with right padding and a frame
mask (`HubertSoftNet.forward_frames`), which is exact because GroupNorm uses each file's own
statistics; bshall's model itself has no attention mask, so padding without one would change
the results.
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
            Below 1.28 s (64 frames) the positional convolution is truncated too; above it,
            only self-attention beyond the context is lost.
        max_batch: most windows per forward pass.
        max_batch_seconds: most audio per forward pass, counting padding (windows longer than
            this run alone). Bounds memory: on CPU in fp32 about 25 MB per second of audio.
        max_padding: a window joins a batch only if it is at least (1 − max_padding) times
            as long as the batch's longest window, so padding wastes at most this fraction of
            the batch's compute (0 batches equal lengths only).
        stats_chunk_seconds: audio per step of the streaming GroupNorm statistics pass.
    """

    chunk_seconds: float = 20.0
    context_seconds: float = 2.0
    max_batch: int = 8
    max_batch_seconds: float = 48.0
    max_padding: float = 0.1
    stats_chunk_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.chunk_frames < 1:
            raise ConfigError(
                f"hubert chunk_seconds={self.chunk_seconds} must give at least one 20 ms frame"
            )
        if self.context_seconds < 0:
            raise ConfigError(f"hubert context_seconds={self.context_seconds} must be >= 0")
        if self.max_batch < 1:
            raise ConfigError(f"hubert max_batch={self.max_batch} must be >= 1")
        if self.max_batch_seconds <= 0:
            raise ConfigError(f"hubert max_batch_seconds={self.max_batch_seconds} must be > 0")
        if not 0 <= self.max_padding < 1:
            raise ConfigError(f"hubert max_padding={self.max_padding} must be in [0, 1)")
        if self.stats_chunk_seconds * FRAME_RATE < 1:
            raise ConfigError(
                f"hubert stats_chunk_seconds={self.stats_chunk_seconds} must be >= 0.02"
            )

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
        end: last frame computed (exclusive); the window's audio is padded[320·start : 320·end +
        80].
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


def plan_batches(frames: list[int], config: WindowConfig) -> list[list[int]]:
    """Group windows into batches, longest first, each padded to its first (longest) window.

    Args:
        frames: frame count of each window.
        config: supplies `max_batch`, `max_batch_seconds` and `max_padding`.

    Returns:
        Lists of indices into `frames`; every index appears once. A batch holds at most
        `max_batch` windows and at most `max_batch_seconds` of padded audio (a longer single
        window forms its own batch), and no window shorter than (1 − max_padding) × the longest.
    """
    order = sorted(range(len(frames)), key=lambda i: -frames[i])
    budget = config.max_batch_seconds * FRAME_RATE
    batches: list[list[int]] = []
    for i in order:
        if batches:
            batch = batches[-1]
            longest = frames[batch[0]]
            fits = len(batch) < config.max_batch and (len(batch) + 1) * longest <= budget
            if fits and frames[i] >= (1.0 - config.max_padding) * longest:
                batch.append(i)
                continue
        batches.append([i])
    return batches


def pad_audio(wav: torch.Tensor) -> torch.Tensor:
    """[L] → [L + 80]: 40 zeros on each side, as bshall's `units()` does."""
    return torch.nn.functional.pad(wav, (PAD, PAD))


def span_audio(padded: torch.Tensor, span: Span) -> torch.Tensor:
    """The padded samples a window needs: padded[320·start : 320·end + 80] (a view)."""
    return padded[HOP * span.start : HOP * span.end + 2 * PAD]


@torch.no_grad()
def group_norm_stats(
    net: HubertSoftNet, padded: torch.Tensor, config: WindowConfig
) -> tuple[torch.Tensor, torch.Tensor]:
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
        with torch.autocast(device_type=padded.device.type, enabled=False):  # stats stay fp32+
            out = net.conv0(piece[None].float())[0].double()  # [512, last - first]
        total += out.sum(dim=1)
        total_sq += out.square_().sum(dim=1)
        del out
    mean = total / frames
    var = (total_sq / frames - mean.square()).clamp_min(0.0)
    rstd = torch.rsqrt(var + GN_EPS)
    return mean.float()[:, None], rstd.float()[:, None]
