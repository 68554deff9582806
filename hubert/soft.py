"""HuBERT-Soft content units (bshall/hubert, as used by Grad-SVC), windowed and batched.

`HubertSoft.units()` reproduces bshall's `HubertSoft.units()` (40 zeros of padding per side,
encoder with all layers, `proj` 768→256; no normalisation) and therefore Grad-SVC's
`preprocess_hubert.py`, except that long inputs are processed in overlapping windows on the
320-sample grid (`hubert.windows`): the result equals one full pass up to the attention context
lost beyond `context_seconds` (the conv GroupNorm statistics are those of the whole file), and
memory stays bounded for files of any length. Grad-SVC's own inference instead cuts 20 s pieces
with no overlap and per-piece statistics.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gvc.device import Runtime
from gvc.errors import AudioError
from hubert.base import ContentEncoder
from hubert.checkpoint import DEFAULT_CHECKPOINT, load_net
from hubert.model import HOP, PAD, HubertSoftNet
from hubert.windows import (
    Span,
    WindowConfig,
    group_norm_stats,
    num_frames,
    pad_audio,
    plan_batches,
    plan_spans,
    span_audio,
)

log = logging.getLogger(__name__)


def _file_fingerprint(path: Path) -> str:
    """First 8 hex digits of the file's SHA-256 (bshall names its release file the same way)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:8]


class HubertSoft(ContentEncoder):
    """HuBERT-Soft units [T, 256] at 50 frames/s from 16 kHz audio.

    Args:
        net: the loaded network (moved to `runtime.device`, eval mode).
        runtime: device and autocast precision; default CPU fp32.
        windows: window and batch settings.
        source: where the weights came from (for `describe()`).
    """

    def __init__(
        self,
        net: HubertSoftNet,
        runtime: Runtime | None = None,
        windows: WindowConfig | None = None,
        source: dict[str, Any] | None = None,
    ) -> None:
        self.runtime = runtime or Runtime(torch.device("cpu"))
        self.windows = windows or WindowConfig()
        self.net = net.to(self.runtime.device).eval()
        self.source = dict(source or {})

    @classmethod
    def from_checkpoint(
        cls,
        path: Path | str = DEFAULT_CHECKPOINT,
        runtime: Runtime | None = None,
        windows: WindowConfig | None = None,
    ) -> HubertSoft:
        """Load bshall's published file (strictly; see `hubert.checkpoint`) and wrap it.

        Raises:
            CheckpointError: missing file (the message names it and the bshall/hubert v0.1
                release), unreadable file, or a layout that does not map exactly.
        """
        path = Path(path)
        net = load_net(path)
        source = {
            "checkpoint": path.name,
            "sha256_8": _file_fingerprint(path),
            "num_layers": net.num_layers,
        }
        return cls(net, runtime, windows, source)

    def describe(self) -> dict[str, Any]:
        """Name and settings that determine the units (recorded with feature folders)."""
        return {
            "name": "hubert-soft",
            "settings": {
                **self.source,
                "num_layers": self.net.num_layers,
                "sample_rate": self.sample_rate,
                "hop": self.hop,
                "dim": self.dim,
                "pad": 40,
                "precision": self.runtime.precision.value,
                "chunk_seconds": self.windows.chunk_seconds,
                "context_seconds": self.windows.context_seconds,
            },
        }

    def units(self, wav_16k: torch.Tensor) -> torch.Tensor:
        """Units of one waveform: [L] float 16 kHz → [floor(L/320), 256] float32 (CPU)."""
        return self.units_batch([wav_16k])[0]

    def units_batch(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """Units of several waveforms, batching windows across files.

        Each file is cut into windows (`plan_spans`); windows from all files are sorted by
        length and run in batches (`plan_batches`), right-padded to the longest with a frame
        mask, each normalised with its own file's GroupNorm statistics, so element i equals
        `units(waves[i])` up to float rounding.

        Args:
            waves: list of [L_i] float 16 kHz waveforms (tensors or numpy arrays).

        Returns:
            list of [floor(L_i / 320), 256] float32 CPU tensors, in input order.

        Raises:
            AudioError: an input that is not 1-D or holds NaN/Inf values.
        """
        device = self.runtime.device
        self.net.eval()  # inference never uses dropout, whatever the caller did to the net
        outputs: list[torch.Tensor] = []
        padded: list[torch.Tensor | None] = []
        stats: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        jobs: list[tuple[int, Span]] = []
        for index, wave in enumerate(waves):
            wav = self._checked(wave, index).to(device)
            total = num_frames(wav.shape[0])
            outputs.append(torch.zeros(total, self.dim, dtype=torch.float32))
            if total == 0:
                padded.append(None)
                stats.append(None)
                continue
            pad = pad_audio(wav)
            padded.append(pad)
            stats.append(group_norm_stats(self.net, pad, self.windows))
            jobs.extend((index, span) for span in plan_spans(total, self.windows))
        for batch in plan_batches([span.frames for _, span in jobs], self.windows):
            self._run_batch([jobs[j] for j in batch], padded, stats, outputs)
        return outputs

    @torch.no_grad()
    def _run_batch(
        self,
        batch: list[tuple[int, Span]],
        padded: list[torch.Tensor | None],
        stats: list[tuple[torch.Tensor, torch.Tensor] | None],
        outputs: list[torch.Tensor],
    ) -> None:
        """Run windows together (right-padded to the longest, with a frame mask when lengths
        differ) and copy their kept frames into `outputs`."""
        longest = max(span.frames for _, span in batch)
        rows = [span_audio(padded[i], span) for i, span in batch]
        size = HOP * longest + 2 * PAD  # samples giving `longest` frames
        audio = torch.stack([torch.nn.functional.pad(r, (0, size - r.shape[0])) for r in rows])
        mean = torch.stack([stats[i][0] for i, _ in batch])
        rstd = torch.stack([stats[i][1] for i, _ in batch])
        mask = None
        if any(span.frames != longest for _, span in batch):
            lengths = torch.tensor([span.frames for _, span in batch], device=audio.device)
            mask = torch.arange(longest, device=audio.device)[None] < lengths[:, None]
        with self.runtime.autocast():
            units = self.net.forward_frames(audio, mean, rstd, mask)
        units = units.float().cpu()
        for row, (i, span) in enumerate(batch):
            lo, hi = span.keep_start - span.start, span.keep_end - span.start
            outputs[i][span.keep_start : span.keep_end] = units[row, lo:hi]

    @staticmethod
    def _checked(wave: torch.Tensor | np.ndarray, index: int) -> torch.Tensor:
        """A 1-D float32 tensor, or AudioError naming the input's position and problem."""
        wav = torch.as_tensor(wave)
        if wav.ndim != 1:
            raise AudioError(
                f"hubert input {index}: expected mono [L] 16 kHz audio, got shape "
                f"{tuple(wav.shape)}"
            )
        wav = wav.to(torch.float32)
        if not torch.isfinite(wav).all():
            raise AudioError(f"hubert input {index}: audio contains NaN or Inf samples")
        return wav


def load_content_encoder(
    path: Path | str = DEFAULT_CHECKPOINT,
    runtime: Runtime | None = None,
    windows: WindowConfig | None = None,
) -> HubertSoft:
    """The HuBERT-Soft content encoder from bshall's checkpoint file (see
    `HubertSoft.from_checkpoint`)."""
    return HubertSoft.from_checkpoint(path, runtime, windows)
