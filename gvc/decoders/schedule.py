"""The Grad-TTS noise schedule as pure functions, in float64.

Forward SDE (mean-reverting to mu): dX = 1/2 beta(t) (mu - X) dt + sqrt(beta(t)) dW, t in [0, 1],
with a linear beta(t) = beta_min + (beta_max - beta_min) t. Writing y = x - mu it is a standard
linear VP-SDE with

    B(t)       = int_0^t beta = beta_min t + 1/2 (beta_max - beta_min) t^2
    alpha(t)   = exp(-B(t) / 2)              (mean coefficient; alpha(1) = 0.00665 for 0.05/20)
    sigma(t)   = sqrt(1 - exp(-B(t)))        (noise std)
    lambda(t)  = log alpha - log sigma       (half log-SNR, decreasing in t)

Every function takes floats or tensors; tensors are promoted to float64 so that grids and step
coefficients never lose precision under fp16/bf16 autocast (half-precision
log-SNR grids collapse near t = 0). Callers cast
the few scalars they need to the working dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import torch

Num = TypeVar("Num", float, torch.Tensor)


def _f64(t: Num) -> Num:
    return t.double() if isinstance(t, torch.Tensor) else float(t)


def _exp(x: Num) -> Num:
    return torch.exp(x) if isinstance(x, torch.Tensor) else math.exp(x)


def _log(x: Num) -> Num:
    return torch.log(x) if isinstance(x, torch.Tensor) else math.log(x)


def _expm1(x: Num) -> Num:
    return torch.expm1(x) if isinstance(x, torch.Tensor) else math.expm1(x)


@dataclass(frozen=True)
class VPSchedule:
    """Linear-beta schedule of the Grad-TTS / Grad-SVC score decoder (config `grad.beta_*`)."""

    beta_min: float = 0.05
    beta_max: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.beta_min < self.beta_max:
            raise ValueError(f"need 0 < beta_min < beta_max, got {self.beta_min}, {self.beta_max}")


def beta(s: VPSchedule, t: Num) -> Num:
    """beta(t) = beta_min + (beta_max - beta_min) t."""
    t = _f64(t)
    return s.beta_min + (s.beta_max - s.beta_min) * t


def cum_beta(s: VPSchedule, t: Num) -> Num:
    """B(t) = integral of beta from 0 to t."""
    t = _f64(t)
    return s.beta_min * t + 0.5 * (s.beta_max - s.beta_min) * t * t


def log_alpha(s: VPSchedule, t: Num) -> Num:
    """log alpha(t) = -B(t)/2."""
    return -0.5 * cum_beta(s, t)


def alpha(s: VPSchedule, t: Num) -> Num:
    """alpha(t) = exp(-B(t)/2): weight of the clean data (relative to mu) at time t."""
    return _exp(log_alpha(s, t))


def sigma(s: VPSchedule, t: Num) -> Num:
    """sigma(t) = sqrt(1 - exp(-B(t))): noise std at time t (0 at t = 0)."""
    v = -_expm1(-cum_beta(s, t))
    return torch.sqrt(v) if isinstance(v, torch.Tensor) else math.sqrt(v)


def lam(s: VPSchedule, t: Num) -> Num:
    """lambda(t) = log alpha - log sigma (half log-SNR); +inf at t = 0, so keep t > 0."""
    b = cum_beta(s, t)
    return -0.5 * b - 0.5 * _log(-_expm1(-b))


def t_of_lambda(s: VPSchedule, lmb: Num) -> Num:
    """Closed-form inverse of `lam` for the linear schedule.

    With L = log(1 + exp(-2 lambda)) = B(t) and d = beta_max - beta_min, solve
    beta_min t + d t^2 / 2 = L for t >= 0:  t = 2L / (sqrt(beta_min^2 + 2 d L) + beta_min).
    """
    d = s.beta_max - s.beta_min
    if isinstance(lmb, torch.Tensor):
        lmb = lmb.double()
        big_l = torch.logaddexp(-2.0 * lmb, torch.zeros_like(lmb))
        return 2.0 * big_l / (torch.sqrt(s.beta_min**2 + 2.0 * d * big_l) + s.beta_min)
    big_l = max(-2.0 * lmb, 0.0) + math.log1p(math.exp(-abs(2.0 * lmb)))
    return 2.0 * big_l / (math.sqrt(s.beta_min**2 + 2.0 * d * big_l) + s.beta_min)


def gamma(s: VPSchedule, a: Num, b: Num) -> Num:
    """Diff-VC's gamma(a, b) = exp(-1/2 int_a^b beta) = alpha(b) / alpha(a)."""
    return _exp(log_alpha(s, b) - log_alpha(s, a))


def logsnr_grid(s: VPSchedule, steps: int, t_start: float = 1.0,
                t_end: float = 1e-3) -> torch.Tensor:
    """steps + 1 times from t_start down to t_end, uniform in lambda (float64, CPU)."""
    lambdas = torch.linspace(lam(s, t_start), lam(s, t_end), steps + 1, dtype=torch.float64)
    grid = t_of_lambda(s, lambdas)
    grid[0], grid[-1] = t_start, t_end  # exact endpoints
    return grid


def uniform_grid(steps: int, t_start: float = 1.0, t_end: float = 0.0) -> torch.Tensor:
    """steps + 1 times uniform in t (float64, CPU)."""
    return torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)


def midpoint_times(steps: int) -> torch.Tensor:
    """Grad-TTS evaluation times t_i = 1 - (i + 1/2) / steps, i = 0..steps-1 (float64)."""
    return 1.0 - (torch.arange(steps, dtype=torch.float64) + 0.5) / steps
