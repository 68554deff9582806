"""Seeded Gaussian noise that does not depend on where the model runs.

Samplers draw every random number through a `NoiseFn`. By default it draws from a
`torch.Generator` on the generator's own device and moves the result to the tensor's device, so a
CPU generator with a fixed seed gives the same noise for a CPU or a CUDA model. A caller can pass
its own `NoiseFn` (e.g. to reuse one noise field across overlapping chunks).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

NoiseFn = Callable[[torch.Tensor], torch.Tensor]
"""Returns standard-normal noise with the shape, dtype and device of its argument."""


def gaussian_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, I) noise shaped like `x` (drawn on the generator's device, then moved to x's)."""
    if generator is None:
        return torch.randn(x.shape, dtype=x.dtype, device=x.device)
    draw_dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    noise = torch.randn(x.shape, generator=generator, dtype=draw_dtype, device=generator.device)
    return noise.to(device=x.device, dtype=x.dtype)


def noise_from(generator: torch.Generator | None = None,
               noise: NoiseFn | None = None) -> NoiseFn:
    """The `NoiseFn` to use: `noise` if given, else draws from `generator` (or the global RNG)."""
    if noise is not None:
        return noise
    return lambda x: gaussian_like(x, generator)
