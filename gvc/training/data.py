"""Training data: Grad-SVC's `TextMelSpeakerDataset` semantics, validated before any compute.

Per utterance (index line `mel|vec|pit|spk`, all at 100 frames/s after the x2 repeat of units):

    mel [n_mels, T] float32 log-mel     vec [T, n_vecs] float32 (HuBERT-Soft 50 fps, repeated x2)
    pit [T] float32 F0 in Hz (0 = unvoiced)     spk [n_spks] float32 d-vector

The usable length is `min(len(pit), len(vec) - 2, mel T)` ("- 2" as in Grad-SVC); items shorter
than `train.min_frames` are dropped (and counted); longer ones are randomly cropped to
`train.max_frames`. The V2 "perturbation" adds N(0, vec_noise_std^2) to the units of training
items. All randomness of an item comes from (seed, epoch, index), so it does not depend on the
number of loader workers and is reproduced exactly on resume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from gvc.errors import DataLayoutError, FeatureMismatch
from gvc.models.embeddings import fix_len_compatibility

if TYPE_CHECKING:
    from gvc.config import Config

log = logging.getLogger(__name__)

_SHOWN = 3  # offending files named in an error message


@dataclass(frozen=True)
class Item:
    """One usable utterance: its four feature files and its usable frame count."""

    mel: Path
    vec: Path
    pit: Path
    spk: Path
    frames: int

    @property
    def name(self) -> str:
        """`<singer>/<utterance>` (from the mel path)."""
        stem = (
            self.mel.name[: -len(".mel.pt")] if self.mel.name.endswith(".mel.pt") else self.mel.stem
        )
        return f"{self.mel.parent.name}/{stem}"


@dataclass
class ScanResult:
    """Items kept by `scan_items` and what was dropped."""

    items: list[Item] = field(default_factory=list)
    too_short: int = 0
    misaligned: int = 0  # kept, but mel/pitch/units lengths disagree by more than a few frames


def _names(paths: list[str]) -> str:
    more = f" (+{len(paths) - _SHOWN} more)" if len(paths) > _SHOWN else ""
    return ", ".join(paths[:_SHOWN]) + more


def mel_shape(path: Path) -> tuple[int, ...]:
    """Shape of a stored `.mel.pt` tensor without reading its data (memory-mapped)."""
    try:
        mel = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) torch files cannot be memory-mapped
        mel = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(mel, torch.Tensor):
        raise FeatureMismatch(
            f"{path}: expected a saved tensor [n_mels, T], found {type(mel).__name__}"
        )
    return tuple(mel.shape)


def _npy_shape(path: Path) -> tuple[int, ...]:
    return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)


def usable_frames(mel_frames: int, vec_frames: int, pit_frames: int) -> int:
    """Grad-SVC's common length: min(len(pit), 2 * len(vec) - 2, mel T) (units at 50 fps)."""
    return max(0, min(pit_frames, 2 * vec_frames - 2, mel_frames))


def scan_items(entries: list[tuple[Path, Path, Path, Path]], cfg: Config, what: str,
               min_frames: int) -> ScanResult:
    """Check every entry's files exist and have the right shapes; keep the long-enough ones.

    Only file headers are read (npy headers, memory-mapped tensors), so this is cheap.

    Args:
        entries: (mel, vec, pit, spk) paths from `read_index`.
        cfg: the config (`grad.n_mels`, `n_vecs`, `n_spks`).
        what: name of the list for messages (e.g. `files/train.txt`).
        min_frames: drop items with fewer usable frames.

    Raises:
        DataLayoutError: a file is missing or unreadable.
        FeatureMismatch: a file has the wrong shape for the config.
    """
    g = cfg.grad
    missing = [str(p) for entry in entries for p in entry if not Path(p).is_file()]
    if missing:
        raise DataLayoutError(
            f"{what}: {len(missing)} feature file(s) listed but missing: {_names(missing)}; "
            "re-run the extract steps, or delete the index to rebuild it (gvc index)")
    result, bad = ScanResult(), []
    for mel_p, vec_p, pit_p, spk_p in entries:
        try:
            mel, vec, pit, spk = (
                mel_shape(mel_p),
                _npy_shape(vec_p),
                _npy_shape(pit_p),
                _npy_shape(spk_p),
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise DataLayoutError(f"{mel_p.parent.name}/{mel_p.name}: unreadable feature file "
                                  f"({exc}); re-extract it with --force") from exc
        if len(mel) != 2 or mel[0] != g.n_mels:
            bad.append(f"{mel_p} has shape {list(mel)}, expected [{g.n_mels}, T]")
        elif len(vec) != 2 or vec[1] != g.n_vecs:
            bad.append(f"{vec_p} has shape {list(vec)}, expected [T, {g.n_vecs}]")
        elif len(pit) != 1:
            bad.append(f"{pit_p} has shape {list(pit)}, expected [T]")
        elif spk != (g.n_spks,):
            bad.append(f"{spk_p} has shape {list(spk)}, expected [{g.n_spks}]")
        if bad:
            continue
        frames = usable_frames(mel[1], vec[0], pit[0])
        if abs(pit[0] - mel[1]) > 8 or abs(2 * vec[0] - mel[1]) > 8:
            result.misaligned += 1
        if frames < min_frames:
            result.too_short += 1
            continue
        result.items.append(Item(Path(mel_p), Path(vec_p), Path(pit_p), Path(spk_p), frames))
    if bad:
        raise FeatureMismatch(f"{what}: {len(bad)} file(s) do not fit the config's grad: block: "
                              f"{_names(bad)}; re-extract them or use the matching config")
    return result


@dataclass
class Sample:
    """One loaded utterance (L frames at 100 fps)."""

    mel: torch.Tensor  # [n_mels, L] float32
    vec: torch.Tensor  # [L, n_vecs] float32
    pit: torch.Tensor  # [L] float32, Hz
    spk: torch.Tensor  # [n_spks] float32
    name: str


class FeatureDataset(Dataset):
    """Loads `Item`s; indexed by `(index, epoch)` so crops and noise are reproducible.

    Args:
        items: from `scan_items`.
        max_frames: random crop length (training) / head crop (validation).
        vec_noise_std: V2 perturbation of training units; 0 = off.
        seed: base seed (`train.seed`).
        train: random crop + perturbation (True) or deterministic head crop, clean units (False).
    """

    def __init__(self, items: list[Item], *, max_frames: int, vec_noise_std: float = 0.0,
                 seed: int = 0, train: bool = True) -> None:
        self.items, self.max_frames = list(items), max_frames
        self.vec_noise_std, self.seed, self.train = vec_noise_std, seed, train

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        item = self.items[index]
        mel = torch.load(item.mel, map_location="cpu", weights_only=True).float()
        vec = np.repeat(np.load(item.vec).astype(np.float32), 2, axis=0)
        pit = np.load(item.pit).astype(np.float32)
        spk = np.load(item.spk).astype(np.float32)
        length = usable_frames(mel.shape[1], vec.shape[0] // 2, len(pit))
        rng = np.random.default_rng([self.seed, epoch, index])
        start = 0
        if self.train and length > self.max_frames:
            start = int(rng.integers(0, length - self.max_frames + 1))
        stop = start + min(length, self.max_frames)
        mel, vec, pit = mel[:, start:stop], vec[start:stop], pit[start:stop]
        for arr, path in (
            (mel.numpy(), item.mel),
            (vec, item.vec),
            (pit, item.pit),
            (spk, item.spk),
        ):
            if not np.isfinite(arr).all():
                raise DataLayoutError(
                    f"{path}: contains NaN or Inf; re-extract it (gvc check lists every such file)"
                )
        if self.train and self.vec_noise_std > 0:
            vec = vec + self.vec_noise_std * rng.standard_normal(vec.shape, dtype=np.float32)
        return Sample(mel=mel.contiguous(), vec=torch.from_numpy(np.ascontiguousarray(vec)),
                      pit=torch.from_numpy(pit.copy()), spk=torch.from_numpy(spk), name=item.name)


@dataclass
class Batch:
    """A padded batch; T is a multiple of 4 (the U-Net halves time twice)."""

    mel: torch.Tensor  # [B, n_mels, T]
    vec: torch.Tensor  # [B, T, n_vecs]
    pit: torch.Tensor  # [B, T]
    spk: torch.Tensor  # [B, n_spks]
    lengths: torch.Tensor  # [B] int64 valid frames
    names: list[str]

    def to(self, device: torch.device, non_blocking: bool = False) -> Batch:
        """Copy the tensors to `device`."""
        move = lambda t: t.to(device, non_blocking=non_blocking)  # noqa: E731
        return Batch(move(self.mel), move(self.vec), move(self.pit), move(self.spk),
                     move(self.lengths), self.names)

    def pin_memory(self) -> Batch:
        """Page-locked copy (DataLoader `pin_memory=True` calls this)."""
        return Batch(self.mel.pin_memory(), self.vec.pin_memory(), self.pit.pin_memory(),
                     self.spk.pin_memory(), self.lengths.pin_memory(), self.names)


def quiet_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: workers ignore Ctrl-C/SIGTERM, so the main process can finish
    its step and save a checkpoint (workers exit with it)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def collate(samples: list[Sample]) -> Batch:
    """Zero-pad to `fix_len_compatibility(max length)` (Grad-SVC's collate)."""
    lengths = torch.tensor([s.mel.shape[1] for s in samples], dtype=torch.long)
    t = fix_len_compatibility(int(lengths.max()))
    b, n_mels, n_vecs = len(samples), samples[0].mel.shape[0], samples[0].vec.shape[1]
    mel = torch.zeros(b, n_mels, t)
    vec = torch.zeros(b, t, n_vecs)
    pit = torch.zeros(b, t)
    for i, s in enumerate(samples):
        n = s.mel.shape[1]
        mel[i, :, :n], vec[i, :n], pit[i, :n] = s.mel, s.vec, s.pit
    spk = torch.stack([s.spk for s in samples])
    return Batch(mel, vec, pit, spk, lengths, [s.name for s in samples])
