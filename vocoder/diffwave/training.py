"""Training parts for DiffWave, ready for the generic training loop: data and loss.

* `scan_items`: the utterances of a data tree (or of an index file) that have both a 32 kHz
  wave and a mel, with their frame counts; too-short ones are counted and left out.
* `SegmentDataset`: random (audio segment, mel segment) pairs, indexed by `(index, epoch)` so
  a resumed run crops exactly as an uninterrupted one; validation takes the head of each item.
* `diffwave_losses(model, batch, generator) -> {"diff": loss}`: the DDPM loss of a batch.

The audio is peak-normalised to 0.6 exactly as `gvc extract-mel` does before computing the
mel, so each audio segment is the signal its mel segment was computed from (mel frame k is
centred on sample 320 k + 160).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gvc.errors import DataLayoutError
from gvc.layout import DataTree, Feature, Utterance, strip_suffix
from vocoder.diffwave.schedule import diffusion_loss, training_schedule
from vocoder.mel import MelConfig


@dataclass(frozen=True)
class SegmentItem:
    """One utterance usable for vocoder training."""

    name: str  # <singer>/<utt>
    wave: Path  # waves-32k file
    mel: Path  # .mel.pt [n_mels, T]
    frames: int  # T


@dataclass
class ItemScan:
    """What `scan_items` found."""

    items: list[SegmentItem]
    too_short: int  # fewer frames than one training segment
    missing: list[str]  # utterances without a wave or a mel


def _mel_frames(path: Path) -> int:
    mel = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(mel, torch.Tensor) or mel.dim() != 2:
        raise DataLayoutError(f"{path}: expected a saved log-mel [n_mels, T]; recompute it with "
                              "gvc extract-mel")
    return int(mel.shape[1])


def scan_items(data: Path, segment_frames: int, index: Path | None = None) -> ItemScan:
    """Utterances with both `waves-32k/<singer>/<utt>.wav` and `mel/<singer>/<utt>.mel.pt`.

    Args:
        data: the `data_gvc/` root.
        segment_frames: training segment; shorter utterances are left out (counted).
        index: only the utterances of this index file (`mel|vec|pit|spk` lines), else all mels.

    Raises:
        DataLayoutError: no mel folder, or an index naming no utterance.
    """
    tree = DataTree(Path(data))
    if index is not None:
        from gvc.dataset.index import read_index

        utts = [Utterance(m.parent.name, strip_suffix(m, Feature.MEL))
                for m, _, _, _ in read_index(index)]
    else:
        utts = tree.utterances(Feature.MEL)
    if not utts:
        where = index if index is not None else tree.folder(Feature.MEL)
        raise DataLayoutError(f"{where}: no utterances; run gvc extract-mel (and gvc index)")
    scan = ItemScan([], 0, [])
    for utt in utts:
        wave, mel = tree.path(Feature.WAVES_32K, utt), tree.path(Feature.MEL, utt)
        if not (wave.is_file() and mel.is_file()):
            scan.missing.append(utt.key)
            continue
        frames = _mel_frames(mel)
        if frames < segment_frames:
            scan.too_short += 1
            continue
        scan.items.append(SegmentItem(utt.key, wave, mel, frames))
    return scan


@dataclass
class SegmentBatch:
    """A batch of aligned segments."""

    audio: torch.Tensor  # [B, L] float32 in [-1, 1], L = T * hop
    mel: torch.Tensor  # [B, n_mels, T]
    names: list[str]

    def to(self, device: torch.device, non_blocking: bool = False) -> SegmentBatch:
        """Copy the tensors to `device`."""
        return SegmentBatch(self.audio.to(device, non_blocking=non_blocking),
                            self.mel.to(device, non_blocking=non_blocking), self.names)

    def pin_memory(self) -> SegmentBatch:
        """Page-locked copy (DataLoader `pin_memory=True` calls this)."""
        return SegmentBatch(self.audio.pin_memory(), self.mel.pin_memory(), self.names)


def load_pair(item: SegmentItem, hop: int, sample_rate: int) -> tuple[np.ndarray, torch.Tensor]:
    """(audio [T * hop] float32 normalised as the mel was computed, mel [n_mels, T]).

    Raises:
        DataLayoutError: NaN/Inf in either file, or a silent wave.
    """
    from gvc.audio import PEAK, load_audio, peak

    mel = torch.load(item.mel, map_location="cpu", weights_only=True).float()
    audio = load_audio(item.wave, sample_rate)
    p = peak(audio)
    if p == 0.0 or not np.isfinite(audio).all() or not torch.isfinite(mel).all():
        raise DataLayoutError(f"{item.name}: silent audio or NaN/Inf in {item.wave} or "
                              f"{item.mel}; re-run gvc resample / extract-mel (gvc check)")
    frames = min(mel.shape[1], len(audio) // hop)
    return (audio[: frames * hop] / p * PEAK).astype(np.float32), mel[:, :frames]


class SegmentDataset(Dataset):
    """Random (audio, mel) segments of `segment_frames` frames.

    Args:
        items: from `scan_items`.
        segment_frames: mel frames per segment (audio: x hop samples).
        hop, sample_rate: the mel's framing.
        seed: base seed; training crops are drawn from (seed, epoch, index).
        train: random crop (True) or the head of the item (False, validation).
    """

    def __init__(self, items: list[SegmentItem], segment_frames: int, *, hop: int = 320,
                 sample_rate: int = 32000, seed: int = 0, train: bool = True) -> None:
        self.items, self.segment_frames = list(items), segment_frames
        self.hop, self.sample_rate, self.seed, self.train = hop, sample_rate, seed, train

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, str]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        item = self.items[index]
        audio, mel = load_pair(item, self.hop, self.sample_rate)
        seg = min(self.segment_frames, mel.shape[1])
        start = 0
        if self.train and mel.shape[1] > seg:
            rng = np.random.default_rng([self.seed, epoch, index])
            start = int(rng.integers(0, mel.shape[1] - seg + 1))
        piece = audio[start * self.hop:(start + seg) * self.hop]
        return torch.from_numpy(piece.copy()), mel[:, start:start + seg].contiguous(), item.name


def collate_segments(samples: list[tuple[torch.Tensor, torch.Tensor, str]]) -> SegmentBatch:
    """Stack equal-length segments (every item was cut to the same length)."""
    return SegmentBatch(torch.stack([s[0] for s in samples]), torch.stack([s[1] for s in samples]),
                        [s[2] for s in samples])


def diffwave_losses(model: torch.nn.Module, batch: SegmentBatch,
                    generator: torch.Generator | None) -> dict[str, torch.Tensor]:
    """The DDPM loss of one batch, as the training loop's named losses.

    Args:
        model: a `DiffWave`.
        batch: segments on the model's device.
        generator: source of the diffusion steps and noise of this step.

    Returns:
        {"diff": scalar eps-prediction MSE}.
    """
    return {"diff": diffusion_loss(model, batch.audio, batch.mel, training_schedule(model.cfg),
                                   generator)}


def copy_synthesis_l1(audio: torch.Tensor, mel: torch.Tensor, mel_cfg: MelConfig) -> float:
    """Mean |log-mel(audio) - mel| over the frames both have: the copy-synthesis error.

    Args:
        audio: [L] generated waveform; mel: [n_mels, T] the mel it was rendered from;
        mel_cfg: the mel definition.
    """
    from vocoder.mel import mel_spectrogram

    again = mel_spectrogram(audio.float().cpu(), mel_cfg)
    frames = min(again.shape[-1], mel.shape[-1])
    return float((again[:, :frames] - mel[:, :frames].float().cpu()).abs().mean())
