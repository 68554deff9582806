"""Consistency decoder: a one-step (or few-step) student distilled from any teacher family.

A consistency function f(x, t) maps every point x_t of the teacher's probability-flow ODE
trajectory to its data end (Song et al. 2023, "Consistency Models", arXiv 2303.01469). The
student keeps the teacher's family as its *process* (`base`): its time variable t, initial state
(`initial_state`, so `temperature` and an explicit `z` mean what they mean for the teacher), state
space (`normalise`) and forward marginal (`perturb`). Its own U-Net (`estimator`, the same
architecture, keys `decoder.estimator.*`) is read through the teacher's parameterisation:

    f(x, t) = c_skip(t) x + c_out(t) D_theta(x, t),
    D_theta(x, t) = base.denoised(estimator output, x, t)     (the teacher-style x0 estimate)
    c_skip(t) = 1, c_out(t) = 0   at t = t_min (the grid's data end, within 1e-6 of its span)
    c_skip(t) = 0, c_out(t) = 1   elsewhere.

So f(x, t_min) = x exactly (the boundary condition), and a student initialised with the teacher's
weights outputs exactly the teacher's denoised (Tweedie) estimate at every other t. The switch is
not a discontinuity in practice: D(x, t_min) - x is the size of the noise left at t_min (score:
sigma_t = 0.008 at t = 1e-3; flow: sigma_min v; EDM: c_skip(0.002) = 0.999984). Song et al.'s
smooth scalings c_skip = sd^2 / ((sigma - sigma_min)^2 + sd^2) would make f differ from the
teacher's estimate at initialisation, and they need an EDM noise level that the score and flow
families do not have.

Sampling (`consistency` sampler, Song et al. Algorithm 1): x = f(z, t_max); for each intermediate
time tau_1 (noisiest) ... tau_{K-1}: x = f(base.perturb(x, tau_k, fresh noise), tau_k). K = 1 is
deterministic given z; the default taus are grid points evenly spaced in grid index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gvc.decoders.base import DecoderFamily, Field, decoder_family, register_decoder
from gvc.decoders.noise import NoiseFn, noise_from
from gvc.decoders.registry import register_sampler
from gvc.errors import ConfigError

TEACHER_SOLVERS = ("heun", "euler")
BOUNDARY_TOL = 1e-6  # |t - t_min| below this fraction of |t_max - t_min| is the boundary


@dataclass
class ConsistencyOptions:
    """`consistency:` config block: the teacher's process and the distillation settings.

    `teacher` and `teacher_options` (the teacher's own options block; None when its family has
    none) fix the time variable, initial state and state space; the rest records how the student
    was distilled (`gvc distill`) and sets the default intermediate times of multistep sampling.
    """

    teacher: str = "score"
    teacher_options: dict[str, Any] | None = None
    grid_points: int = 40  # N of the discretised ODE (CM paper ImageNet-64: 40, CoMoSVC: 25)
    teacher_solver: str = field(default="heun", metadata={"choices": TEACHER_SOLVERS})
    target_ema: float = 0.95  # EMA rate of the target network theta^-
    export_ema: float = 0.999  # EMA rate of the slow copy that `gvc export` writes

    def __post_init__(self) -> None:
        if self.grid_points < 2:
            raise ValueError(f"consistency.grid_points must be >= 2, got {self.grid_points}")
        for name in ("target_ema", "export_ema"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"consistency.{name} must be in [0, 1), got "
                                 f"{getattr(self, name)}")
        if self.teacher == "consistency":
            raise ValueError("consistency.teacher cannot be a consistency model: distil its "
                             "own teacher instead")
        self.teacher_config()  # unknown family or bad options fail at load time

    def teacher_config(self) -> Any:
        """The teacher family's typed options (None when the family has no options block).

        Raises:
            ConfigError: unknown family, or options that family rejects.
        """
        from gvc.config import build_block

        family = decoder_family(self.teacher)
        if family.options_type is None:
            if self.teacher_options:
                raise ConfigError(f"consistency.teacher_options: the {self.teacher} decoder "
                                  "takes no options")
            return None
        return build_block(family.options_type, self.teacher_options or {},
                           "consistency.teacher_options", "consistency")


@register_decoder
class ConsistencyDecoder(DecoderFamily):
    """A consistency student on the process of its teacher family (see module doc)."""

    name = "consistency"
    default_sampler = "consistency"
    default_steps = 1
    temperature_help = "consistency: the teacher family's meaning (its start noise)"
    options_type = ConsistencyOptions

    def __init__(self, estimator: nn.Module, base: DecoderFamily,
                 options: ConsistencyOptions) -> None:
        super().__init__(estimator, options)
        # the process shares `estimator`; kept out of the module tree so that the state dict has
        # only `estimator.*` (not a second `base.estimator.*` copy)
        object.__setattr__(self, "base", base)
        self.grid = base.distill_grid(options.grid_points)  # [N] float64, data end first

    @classmethod
    def build(cls, estimator: nn.Module, grad: Any, options: Any) -> ConsistencyDecoder:
        options = options or ConsistencyOptions()
        base = decoder_family(options.teacher).build(estimator, grad, options.teacher_config())
        return cls(estimator, base, options)

    @property
    def t_min(self) -> float:
        """The data end of the grid (f is the identity there)."""
        return float(self.grid[0])

    @property
    def t_max(self) -> float:
        """The noise end of the grid (one-step sampling evaluates f there)."""
        return float(self.grid[-1])

    def at_boundary(self, t: torch.Tensor) -> torch.Tensor:
        """[B] bool: t is the data end t_min (to 1e-6 of the grid's span)."""
        span = abs(self.t_max - self.t_min)
        return (t.detach().double() - self.t_min).abs() <= BOUNDARY_TOL * span

    # ------------------------------------------------------------------ the function
    def field(self, mu: torch.Tensor, mask: torch.Tensor, spk_emb: torch.Tensor,
              estimator: nn.Module | None = None) -> Field:
        """The consistency function f(x, t [B]) -> [B, F, T] (state space, masked).

        `estimator` replaces the student's network (the EMA target during distillation).
        """
        inner = self.base.field(mu, mask, spk_emb, estimator or self.estimator)

        def f(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            edge = self.at_boundary(t).to(x.device)
            if bool(edge.all()):
                return x * mask
            d = self.base.denoised(inner(x, t).to(x.dtype), x, t, mu)
            return torch.where(edge[:, None, None], x, d) * mask

        return f

    def normalise(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.base.normalise(mel, mask)

    def denormalise(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.base.denormalise(x, mask)

    # ------------------------------------------------------------------ objective
    def compute_loss(self, x0: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
                     spk_emb: torch.Tensor, *, generator: torch.Generator | None = None,
                     noise: NoiseFn | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
        raise ConfigError("a consistency model is trained by distillation from its teacher: "
                          "gvc distill --teacher MODEL.gvc.pth, not gvc train")

    # ------------------------------------------------------------------ sampling
    def initial_state(self, mu: torch.Tensor, mask: torch.Tensor, temperature: float,
                      noise: NoiseFn) -> torch.Tensor:
        return self.base.initial_state(mu, mask, temperature, noise)

    def sampler_context(self) -> dict[str, object]:
        return {"process": self.base, "grid": self.grid}


def intermediate_times(grid: torch.Tensor, steps: int,
                       times: float | str | None = None) -> list[float]:
    """The K - 1 = steps - 1 re-noising times of multistep sampling, noisiest first.

    Args:
        grid: [N] distillation grid, data end first.
        steps: K >= 1.
        times: None (grid points at indices round((N - 1)(K - k) / K), k = 1..K-1), one number,
            or numbers joined by ':' (e.g. `0.6:0.3`), strictly inside the grid, noisiest first.

    Raises:
        ValueError: steps < 1, a count that is not K - 1, or times outside or out of order.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    n = grid.shape[0]
    if times is None:
        return [float(grid[round((n - 1) * (steps - k) / steps)]) for k in range(1, steps)]
    values = [float(v) for v in str(times).split(":")] if str(times) else []
    if len(values) != steps - 1:
        raise ValueError(f"times gives {len(values)} value(s); {steps} steps need {steps - 1}")
    lo, hi = float(grid[0]), float(grid[-1])
    level = [(v - lo) / (hi - lo) for v in values]  # 0 at the data end, 1 at the noise end
    ordered = all(a > b for a, b in zip(level, level[1:], strict=False))
    if any(not 0.0 < u < 1.0 for u in level) or not ordered:
        raise ValueError(f"times {values} must lie strictly between {lo:g} (data) and {hi:g} "
                         "(noise), noisiest first")
    return values


@register_sampler("consistency", decoder="consistency", stochastic=True, nfe_per_step=1,
                  description="consistency sampling: 1 step = f(z, t_max); K > 1 re-noises "
                              "at K - 1 times (sampler option times=a:b)")
def sample_consistency(f: Field, z: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
                       steps: int, *, process: DecoderFamily, grid: torch.Tensor,
                       times: float | str | None = None, generator: torch.Generator | None = None,
                       noise: NoiseFn | None = None) -> torch.Tensor:
    """Multistep consistency sampling (Song et al. 2023, Algorithm 1) in the process's time.

    Args:
        f: the consistency function; z: [B, F, T] initial state at t_max (the teacher's);
        mu, mask: state-space condition and [B, 1, T] mask; steps: K evaluations of f.
        process: the teacher family (its `perturb` re-noises); grid: its distillation grid.
        times: intermediate times (see `intermediate_times`).
    """
    taus = intermediate_times(grid, steps, times)
    draw = noise_from(generator, noise)

    def full(t: float) -> torch.Tensor:
        return torch.full((z.shape[0],), t, dtype=torch.float32, device=z.device)

    x = f(z * mask, full(float(grid[-1])))
    for tau in taus:
        x = f(process.perturb(x, mu, mask, full(tau), draw(x)), full(tau))
    return x
