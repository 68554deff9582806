"""Fixed-step ODE solvers of the flow decoder: functions of a velocity field, never of a network.

Every sampler has the signature

    fn(velocity, z, mu, mask, steps, *, sigma_min, grid="uniform", sway=-1.0, t_start=0.0,
       generator=None, noise=None) -> x1

with `velocity(x [B, F, T], t [B]) -> [B, F, T]`, `z` the noise at t = 0, `mu` [B, F, T] the
encoder output and `mask` [B, 1, T]. Time runs from 0 (noise) to 1 (data), the convention of
conditional flow matching (Lipman et al. 2023) and Grad-SVC V3. `steps` counts solver steps;
network evaluations per step are the sampler's `nfe_per_step` (Euler 1, midpoint and Heun 2,
RK4 4). Grid options:

* `grid="uniform"`: t_k = t_start + (1 - t_start) k / steps (Grad-SVC V3, Matcha-TTS).
* `grid="sway"`: uniform u_k warped as u + s (cos(pi u / 2) - 1 + u) with s = `sway`
  (F5-TTS sway sampling, arXiv 2410.06885; s < 0 puts more steps near the noise end).
* `t_start` > 0 starts from the path point of a guess at the data, x_t0 =
  (1 - (1 - sigma_min) t0) z + t0 mu (a shallow start: mu is the encoder's mel estimate, as
  DDSP-SVC starts its flow from its own mel at t = 0.7).

The solvers are hand-written rather than taken from torchdiffeq: they are a few lines each, and
the step loop must mask x after every step and pass the same [B] time to a doubled (guided) batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from gvc.decoders.base import Field
from gvc.decoders.noise import NoiseFn
from gvc.decoders.registry import register_sampler

FLOW_GRIDS = ("uniform", "sway")


def flow_grid(steps: int, grid: str = "uniform", sway: float = -1.0,
              t_start: float = 0.0) -> list[float]:
    """steps + 1 increasing times from `t_start` to 1 (see the module docstring)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 <= t_start < 1.0:
        raise ValueError(f"t_start must be in [0, 1), got {t_start}")
    u = [k / steps for k in range(steps + 1)]
    if grid == "sway":
        if not -1.0 <= sway <= 1.0:
            raise ValueError(f"sway must be in [-1, 1] (monotone grid), got {sway}")
        u = [v + sway * (math.cos(math.pi / 2 * v) - 1.0 + v) for v in u]
        u[0], u[-1] = 0.0, 1.0
    elif grid != "uniform":
        raise ValueError(f"unknown flow grid {grid!r}; choose one of: {', '.join(FLOW_GRIDS)}")
    return [t_start + (1.0 - t_start) * v for v in u]


Step = Callable[[Field, torch.Tensor, float, float], torch.Tensor]
"""step(velocity, x, t, dt) -> the increment dx of one solver step."""


def _times(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.full((x.shape[0],), t, dtype=torch.float32, device=x.device)


def _euler(v: Field, x: torch.Tensor, t: float, dt: float) -> torch.Tensor:
    return dt * v(x, _times(x, t))


def _midpoint(v: Field, x: torch.Tensor, t: float, dt: float) -> torch.Tensor:
    half = x + 0.5 * dt * v(x, _times(x, t))
    return dt * v(half, _times(x, t + 0.5 * dt))


def _heun(v: Field, x: torch.Tensor, t: float, dt: float) -> torch.Tensor:
    k1 = v(x, _times(x, t))
    k2 = v(x + dt * k1, _times(x, t + dt))
    return 0.5 * dt * (k1 + k2)


def _rk4(v: Field, x: torch.Tensor, t: float, dt: float) -> torch.Tensor:
    k1 = v(x, _times(x, t))
    k2 = v(x + 0.5 * dt * k1, _times(x, t + 0.5 * dt))
    k3 = v(x + 0.5 * dt * k2, _times(x, t + 0.5 * dt))
    k4 = v(x + dt * k3, _times(x, t + dt))
    return dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def solve(step: Step, velocity: Field, z: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
          steps: int, *, sigma_min: float, grid: str = "uniform", sway: float = -1.0,
          t_start: float = 0.0) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t) over `flow_grid(...)` with `step`; returns x at t = 1."""
    if z.shape != mu.shape or mask.shape != (z.shape[0], 1, z.shape[-1]):
        raise ValueError(f"shapes disagree: z {tuple(z.shape)}, mu {tuple(mu.shape)}, "
                         f"mask {tuple(mask.shape)} (expected [B, F, T] x2 and [B, 1, T])")
    times = flow_grid(steps, grid, sway, t_start)
    x = z if t_start == 0 else (1.0 - (1.0 - sigma_min) * t_start) * z + t_start * mu
    x = x * mask
    for t, t_next in zip(times[:-1], times[1:], strict=True):
        x = (x + step(velocity, x, t, t_next - t)) * mask
    return x


def _register(name: str, step: Step, nfe: int, description: str) -> None:
    def fn(velocity: Field, z: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, steps: int,
           *, sigma_min: float = 0.0, grid: str = "uniform", sway: float = -1.0,
           t_start: float = 0.0, generator: torch.Generator | None = None,
           noise: NoiseFn | None = None) -> torch.Tensor:
        return solve(step, velocity, z, mu, mask, steps, sigma_min=sigma_min, grid=grid,
                     sway=sway, t_start=t_start)

    fn.__name__ = f"sample_flow_{name}"
    fn.__doc__ = f"{description} (`solve` with the {name} step)."
    register_sampler(name, decoder="flow", stochastic=False, nfe_per_step=nfe,
                     description=description)(fn)


_register("euler", _euler, 1, "explicit Euler, 1 NFE/step (Grad-SVC V3, Matcha-TTS)")
_register("midpoint", _midpoint, 2, "explicit midpoint, 2 NFE/step (Voicebox)")
_register("heun", _heun, 2, "Heun's method (trapezoid), 2 NFE/step")
_register("rk4", _rk4, 4, "classic Runge-Kutta 4, 4 NFE/step")
