"""Sampler noise indexed by absolute frame position, so chunking does not change it.

A diffusion sampler draws standard-normal noise shaped like its state [B, n_mels, T] several
times (the initial state x_T, then once per stochastic step). Converting a song in chunks with a
plain generator would give every chunk fresh noise, so the same frame would get different noise
depending on where the chunk boundaries fall. `NoiseField` instead defines one fixed noise value
for every (draw number, batch item, mel band, absolute frame), generated block by block from
`seed`: a chunk starting at frame `start` asks for frames [start, start + T) of draw k and gets
exactly the columns a whole-song pass would get there. Memory is one block per call, independent
of song length.
"""

from __future__ import annotations

import numpy as np
import torch

from gvc.decoders.noise import NoiseFn

DEFAULT_BLOCK = 128  # frames generated per seeded block


class NoiseField:
    """Deterministic N(0, 1) noise as a function of (draw, item, band, absolute frame).

    Args:
        seed: any non-negative integer; the same seed gives the same field.
        block: frames per independently seeded block (changing it changes the field).
    """

    def __init__(self, seed: int, block: int = DEFAULT_BLOCK) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.seed = int(seed)
        self.block = int(block)

    def _block(self, draw: int, item: int, index: int, channels: int) -> torch.Tensor:
        """[channels, block] float32 noise of one block (CPU)."""
        key = 2 * index if index >= 0 else -2 * index - 1  # SeedSequence takes naturals only
        state = np.random.SeedSequence([self.seed, draw, item, key]).generate_state(2, np.uint32)
        gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        return torch.randn((channels, self.block), generator=gen, dtype=torch.float32)

    def window(self, draw: int, start: int, length: int, batch: int = 1,
               channels: int = 100) -> torch.Tensor:
        """Frames [start, start + length) of draw number `draw`: [batch, channels, length] float32
        CPU.

        `start` may be negative or run past the song's end: the field is defined for every
        integer frame.
        """
        out = torch.empty((batch, channels, length), dtype=torch.float32)
        if length == 0:
            return out
        first, last = start // self.block, (start + length - 1) // self.block
        for item in range(batch):
            for index in range(first, last + 1):
                lo = max(start, index * self.block)
                hi = min(start + length, (index + 1) * self.block)
                blk = self._block(draw, item, index, channels)
                out[item, :, lo - start : hi - start] = blk[:, lo - index * self.block :
                                                             hi - index * self.block]
        return out

    def noise_fn(self, start: int) -> NoiseFn:
        """A sampler `NoiseFn` for a chunk whose first frame is the song's frame `start`.

        The k-th call returns draw k of the field at frames [start, start + T) for a tensor
        shaped [B, C, T], on that tensor's device and dtype. Use one `noise_fn` per sampler run.
        """
        count = 0

        def draw(x: torch.Tensor) -> torch.Tensor:
            nonlocal count
            if x.dim() != 3:
                raise ValueError(f"positional noise needs a [B, C, T] tensor, got {tuple(x.shape)}")
            b, c, t = x.shape
            noise = self.window(count, start, t, b, c)
            count += 1
            return noise.to(device=x.device, dtype=x.dtype)

        return draw
