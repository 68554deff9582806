"""Samplers of the score decoder: functions of a score estimator, never of a network.

Every sampler has the signature

    fn(score, z, mu, mask, steps, *, schedule, generator=None, noise=None) -> x0

with `score(x [B, F, T], t [B]) -> [B, F, T]`, `z` the terminal state x_T (see
`score.prior_sample`), `mu` [B, F, T] the prior mean and `mask` [B, 1, T]. All items of a batch
share the same time grid, so step coefficients are scalars (computed in float64) and any batch
size works. Deterministic samplers ignore `generator`/`noise`; stochastic ones draw every random
number through them, so the same seed gives the same output.
"""

from __future__ import annotations

import math

import torch

from gvc.decoders import schedule as sch
from gvc.decoders.base import Field as ScoreFn
from gvc.decoders.noise import NoiseFn, noise_from
from gvc.decoders.registry import register_sampler


def _times(x: torch.Tensor, t: float) -> torch.Tensor:
    """[B] tensor filled with t (float32, or float64 when x is float64) on x's device."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    return torch.full((x.shape[0],), t, dtype=dtype, device=x.device)


def _check(z: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, steps: int) -> None:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if z.shape != mu.shape or mask.shape != (z.shape[0], 1, z.shape[-1]):
        raise ValueError(f"shapes disagree: z {tuple(z.shape)}, mu {tuple(mu.shape)}, "
                         f"mask {tuple(mask.shape)} (expected [B, F, T] x2 and [B, 1, T])")


def ml_coefficients(schedule: sch.VPSchedule, t: float, s: float) -> tuple[float, float, float]:
    """Coefficients (a, b, c) of one Diff-VC maximum-likelihood step from t down to s < t.

    With y = x - mu, the step is y_s = a * y_t + b * score(x_t, t) + c * xi. It equals the
    Tweedie estimate y0 = (y_t + (1 - g_t^2) score) / g_t followed by the exact Gaussian
    posterior q(y_s | y_t, y0) = N(m_st y_t + n_st y0, v_st) of the forward process, with
    g_t = gamma(0, t), m_st = gamma(s,t)(1 - g_s^2)/(1 - g_t^2),
    n_st = g_s (1 - gamma(s,t)^2)/(1 - g_t^2), v_st = (1 - g_s^2)(1 - gamma(s,t)^2)/(1 - g_t^2).
    """
    g_t, g_s = sch.alpha(schedule, t), sch.alpha(schedule, s)
    g_st = g_t / g_s
    var_t = -math.expm1(-sch.cum_beta(schedule, t))  # 1 - g_t^2
    var_s = -math.expm1(-sch.cum_beta(schedule, s))
    m_st = g_st * var_s / var_t
    n_st = g_s * (1.0 - g_st**2) / var_t
    c = math.sqrt(max(var_s * (1.0 - g_st**2) / var_t, 0.0))
    return m_st + n_st / g_t, n_st * var_t / g_t, c


@register_sampler("ml", decoder="score", stochastic=True,
                  description="Diff-VC fast maximum-likelihood SDE (Grad-SVC V1/V2 default)")
def sample_ml(score: ScoreFn, z: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, steps: int,
              *, schedule: sch.VPSchedule, generator: torch.Generator | None = None,
              noise: NoiseFn | None = None) -> torch.Tensor:
    """Diff-VC "ml" sampler on the grid t_i = 1 - i/N (score evaluated at the step start).

    Same update as Grad-SVC's `MaxLikelihood` (see `ml_coefficients`), but with scalar
    coefficients, so batches of any size work (the original broadcast them to [B, 1, B]).
    The last step (s = 0) is deterministic.
    """
    _check(z, mu, mask, steps)
    draw = noise_from(generator, noise)
    h = 1.0 / steps
    x = z * mask
    for i in range(steps):
        t = 1.0 - i * h
        s = max(t - h, 0.0) if i < steps - 1 else 0.0
        a, b, c = ml_coefficients(schedule, t, s)
        y = a * (x - mu) + b * score(x, _times(x, t))
        if c > 0:
            y = y + c * draw(x)
        x = (mu + y) * mask
    return x


@register_sampler("euler", decoder="score", stochastic=False,
                  description="probability-flow ODE, Euler, midpoint times (Grad-TTS GradRaw)")
def sample_euler(score: ScoreFn, z: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
                 steps: int, *, schedule: sch.VPSchedule,
                 generator: torch.Generator | None = None,
                 noise: NoiseFn | None = None) -> torch.Tensor:
    """x <- x - 1/2 (mu - x - s(x, t_i)) beta(t_i) h, with t_i = 1 - (i + 1/2) h."""
    _check(z, mu, mask, steps)
    h = 1.0 / steps
    x = z * mask
    for t in sch.midpoint_times(steps).tolist():
        bh = sch.beta(schedule, t) * h
        x = (x - 0.5 * bh * (mu - x - score(x, _times(x, t)))) * mask
    return x


@register_sampler("sde", decoder="score", stochastic=True,
                  description="reverse SDE, Euler-Maruyama, midpoint times (Grad-TTS stoc=True)")
def sample_sde(score: ScoreFn, z: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, steps: int,
               *, schedule: sch.VPSchedule, generator: torch.Generator | None = None,
               noise: NoiseFn | None = None) -> torch.Tensor:
    """x <- x - (1/2 (mu - x) - s(x, t_i)) beta h - sqrt(beta h) xi, with t_i = 1 - (i + 1/2) h."""
    _check(z, mu, mask, steps)
    draw = noise_from(generator, noise)
    h = 1.0 / steps
    x = z * mask
    for t in sch.midpoint_times(steps).tolist():
        bh = sch.beta(schedule, t) * h
        drift = (0.5 * (mu - x) - score(x, _times(x, t))) * bh
        x = (x - drift - math.sqrt(bh) * draw(x)) * mask
    return x


DPM_GRIDS = ("logsnr", "time-uniform", "time-quadratic")
"""Time grids of `sample_dpm_solver` (`decoders.md` §2.3)."""


def dpm_grid(schedule: sch.VPSchedule, steps: int, grid: str, t_end: float) -> list[float]:
    """steps + 1 times from 1 down to `t_end` (> 0): uniform in lambda, in t, or in sqrt(t)."""
    if not 0.0 < t_end < 1.0:
        raise ValueError(f"t_end must be in (0, 1), got {t_end}")
    if grid == "logsnr":
        return sch.logsnr_grid(schedule, steps, 1.0, t_end).tolist()
    if grid == "time-uniform":
        return sch.uniform_grid(steps, 1.0, t_end).tolist()
    if grid == "time-quadratic":
        return (sch.uniform_grid(steps, 1.0, math.sqrt(t_end)) ** 2).tolist()
    raise ValueError(f"unknown DPM-Solver grid {grid!r}; choose one of: {', '.join(DPM_GRIDS)}")


def sample_dpm_solver(score: ScoreFn, z: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
                      steps: int, *, schedule: sch.VPSchedule, order: int = 2,
                      predict: str = "noise", grid: str = "logsnr", t_end: float = 1e-3,
                      lower_order_final: bool = True, generator: torch.Generator | None = None,
                      noise: NoiseFn | None = None) -> torch.Tensor:
    """Multistep DPM-Solver (`predict="noise"`) or DPM-Solver++ (`predict="data"`).

    Works on y = x - mu, integrating the probability-flow ODE from t = 1 to `t_end` on the
    time `grid` (one network call per step). The model output is used as the noise
    eps(y, t) = -sigma_t * score(y + mu, t), or as the clean-data estimate
    y0(y, t) = (y + sigma_t^2 * score(y + mu, t)) / alpha_t for DPM-Solver++. The first steps
    warm up with lower orders; with `lower_order_final` the last steps also drop to order
    (steps - i), so the final step is first order (`decoders.md` §2.2 and pitfall 1; the
    reference gates this below 10-15 steps, but ungated a time-uniform grid at 20 steps lands
    3x closer to the exact ODE solution and the logSNR grid is unchanged, see BENCHMARKS.md).
    Order 1 with noise prediction on the logSNR grid equals DDIM and Grad-SVC's
    `reverse_diffusion_dpm`. Global error is O(h^order) in the logSNR step h (order 3 uses the
    exact Taylor weight of the second difference, see below).

    Args:
        order: 1, 2 or 3.
        predict: "noise" (DPM-Solver) or "data" (DPM-Solver++).
        grid: "logsnr" (Grad-SVC), "time-uniform" or "time-quadratic"; see `dpm_grid`.
        t_end: final time (> 0; lambda is infinite at 0).
        lower_order_final: lower the order of the final steps (at any step count).
    """
    _check(z, mu, mask, steps)
    if order not in (1, 2, 3):
        raise ValueError(f"DPM-Solver order must be 1, 2 or 3, got {order}")
    if predict not in ("noise", "data"):
        raise ValueError(f"DPM-Solver predict must be 'noise' or 'data', got {predict!r}")
    data = predict == "data"
    times = dpm_grid(schedule, steps, grid, t_end)
    lams = [sch.lam(schedule, t) for t in times]
    y = (z - mu) * mask
    history: list[tuple[float, torch.Tensor]] = []  # (lambda, model output), newest last
    for i in range(steps):
        s, t = times[i], times[i + 1]
        sig_s, sig_t = sch.sigma(schedule, s), sch.sigma(schedule, t)
        out = score(y + mu, _times(y, s))
        if data:
            out = (y + sig_s**2 * out) / sch.alpha(schedule, s)
        else:
            out = -sig_s * out
        history = (history + [(lams[i], out)])[-3:]
        k = min(order, i + 1)
        if lower_order_final:
            k = min(k, steps - i)
        h = lams[i + 1] - lams[i]
        if data:
            # y_t = (sigma_t/sigma_s) y - alpha_t phi1 y0 + alpha_t phi2 D1 - alpha_t phi3 D2
            scale, weight = sig_t / sig_s, sch.alpha(schedule, t)
            phi1 = math.expm1(-h)
            phi2 = phi1 / h + 1.0
            sign = -1.0
        else:
            # y_t = (alpha_t/alpha_s) y - sigma_t phi1 eps - sigma_t phi2 D1 - sigma_t phi3 D2
            scale = math.exp(sch.log_alpha(schedule, t) - sch.log_alpha(schedule, s))
            weight = sig_t
            phi1 = math.expm1(h)
            phi2 = phi1 / h - 1.0
            sign = 1.0
        y_new = scale * y - weight * phi1 * out
        if k >= 2:
            r0 = (lams[i] - history[-2][0]) / h
            d1_0 = (out - history[-2][1]) / r0
            if k == 2:
                y_new = y_new - 0.5 * weight * phi1 * d1_0
            else:
                r1 = (history[-2][0] - history[-3][0]) / h
                d1_1 = (history[-2][1] - history[-3][1]) / r1
                d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)  # h f' + O(h^3)
                # h^2 f'' + O(h^3). The reference code (and diffusers) use half of this with
                # the same phi3, which leaves an O(h^3) local error (global order 2); the full
                # Taylor term restores order 3 (checked in tests/test_samplers.py).
                d2 = 2.0 * (d1_0 - d1_1) / (r0 + r1)
                phi3 = phi2 / h - 0.5
                y_new = y_new - sign * weight * phi2 * d1 - weight * phi3 * d2
        y = y_new * mask
    return (y + mu) * mask


def _dpm(order: int):
    def fn(score: ScoreFn, z: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, steps: int,
           *, schedule: sch.VPSchedule, generator: torch.Generator | None = None,
           noise: NoiseFn | None = None, **options) -> torch.Tensor:
        return sample_dpm_solver(score, z, mu, mask, steps, schedule=schedule, order=order,
                                 **options)

    fn.__name__ = f"sample_dpm_solver_{order}"
    fn.__doc__ = f"`sample_dpm_solver` with order {order}."
    return fn


for _order in (1, 2, 3):
    register_sampler(f"dpm-solver-{_order}", decoder="score", stochastic=False,
                     description=f"multistep DPM-Solver order {_order}, logSNR grid 1 -> 1e-3")(
        _dpm(_order))
