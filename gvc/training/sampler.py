"""Seeded, resumable batch order with `DistributedSampler` semantics.

Epoch e uses the permutation `randperm(n, seed + e)`, truncated to a multiple of the world size;
rank r takes every world-size-th index from r. Batches are cut in order with `drop_last` (as
Grad-SVC's loader). `set_epoch(e, start_batch)` skips the batches already trained, so a resumed
run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class EpochBatchSampler:
    """Yields lists of `(index, epoch)` keys for `FeatureDataset`.

    Args:
        n_items: dataset size.
        batch_size: items per batch and process.
        seed: base seed (`train.seed`).
        rank, world_size: this process among the DDP processes.
        shuffle: seeded shuffle per epoch (training) or the index order (validation).
        drop_last: drop the last incomplete batch.
    """

    def __init__(self, n_items: int, batch_size: int, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, shuffle: bool = True, drop_last: bool = True) -> None:
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's order and the number of its batches to skip."""
        self.epoch, self.start_batch = epoch, start_batch

    @property
    def items_per_rank(self) -> int:
        """Items each process sees per epoch."""
        return self.n_items // self.world_size

    def __len__(self) -> int:
        """Batches per epoch and process (including any skipped by `start_batch`)."""
        n = self.items_per_rank
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def indices(self, epoch: int) -> list[int]:
        """This rank's item order for `epoch`."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(self.n_items, generator=g).tolist()
        else:
            order = list(range(self.n_items))
        used = self.items_per_rank * self.world_size
        return order[self.rank:used:self.world_size]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = self.indices(self.epoch)
        for b in range(self.start_batch, len(self)):
            chunk = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield [(i, self.epoch) for i in chunk]
