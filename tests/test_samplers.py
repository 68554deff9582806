"""Score-decoder schedule and samplers, checked on an analytic Gaussian case.

Data y0 = x0 - mu ~ N(m, s^2 I) under the mu-shifted VP-SDE has marginals N(alpha_t m, v_t I)
with v_t = alpha_t^2 s^2 + sigma_t^2, so the exact score is -(x - mu - alpha_t m) / v_t and the
probability-flow ODE maps y_t to alpha_t' m + sqrt(v_t'/v_t) (y_t - alpha_t m) exactly.
"""

from __future__ import annotations

import math

import pytest
import torch

from gvc.decoders import get_sampler, run_sampler, sampler_names
from gvc.decoders import schedule as sch
from gvc.decoders.samplers import (
    DPM_GRIDS,
    dpm_grid,
    ml_coefficients,
    sample_dpm_solver,
    sample_euler,
    sample_ml,
)
from gvc.decoders.score import prior_sample, score_loss
from gvc.errors import ConfigError

S = sch.VPSchedule(0.05, 20.0)
M0, S0 = 0.5, 0.3  # data mean / std relative to mu


def _v(t: float) -> float:
    return sch.alpha(S, t) ** 2 * S0**2 + sch.sigma(S, t) ** 2


def _flow(y: torch.Tensor, t_from: float, t_to: float) -> torch.Tensor:
    """Exact probability-flow map of y = x - mu between two times."""
    scale = math.sqrt(_v(t_to) / _v(t_from))
    return sch.alpha(S, t_to) * M0 + scale * (y - sch.alpha(S, t_from) * M0)


@pytest.fixture()
def case():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(2, 4, 8, generator=g, dtype=torch.float64)
    mask = torch.ones(2, 1, 8, dtype=torch.float64)
    mask[1, :, 6:] = 0
    mu = mu * mask
    z = (mu + torch.randn(2, 4, 8, generator=g, dtype=torch.float64)) * mask

    def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.double()
        a = sch.alpha(S, t)[:, None, None]
        var = a**2 * S0**2 + sch.sigma(S, t)[:, None, None] ** 2
        return -(x - mu - a * M0) / var * mask

    return score, z, mu, mask


# ---------------------------------------------------------------- schedule
def test_schedule_reference_values():
    assert sch.alpha(S, 1.0) == pytest.approx(0.00665, abs=1e-5)
    assert sch.sigma(S, 1.0) == pytest.approx(0.99998, abs=1e-5)
    assert sch.lam(S, 1.0) == pytest.approx(-5.0125, abs=1e-4)
    assert sch.lam(S, 1e-3) == pytest.approx(4.861, abs=1e-3)
    grid = sch.logsnr_grid(S, 10, 1.0, 1e-3)
    expected = [1.0, 0.896, 0.778, 0.640, 0.471, 0.276, 0.120, 0.0447, 0.0153, 0.00454, 0.001]
    assert grid.dtype == torch.float64
    assert grid.tolist() == pytest.approx(expected, rel=2e-3)


def test_inverse_lambda_round_trip():
    t = torch.logspace(-5, 0, 200, dtype=torch.float64)
    back = sch.t_of_lambda(S, sch.lam(S, t))
    assert torch.allclose(back, t, rtol=1e-6, atol=0)
    assert sch.t_of_lambda(S, sch.lam(S, 0.3)) == pytest.approx(0.3, rel=1e-9)  # float path


# ---------------------------------------------------------------- registry
def test_registry_names_reach_code(case):
    names = sampler_names("score")
    assert names == ["ml", "euler", "sde", "dpm-solver-1", "dpm-solver-2", "dpm-solver-3"]
    score, z, mu, mask = case
    for name in names:
        g = torch.Generator().manual_seed(1)
        out = run_sampler(name, score, z, mu, mask, 2, decoder="score", schedule=S, generator=g)
        assert out.shape == z.shape and torch.isfinite(out).all(), name
        assert (out[1, :, 6:] == 0).all(), f"{name} leaks into padding"
        assert not torch.equal(out, z), name


def test_unknown_sampler_lists_choices():
    with pytest.raises(ConfigError, match="choose one of: ml, euler"):
        get_sampler("heun", "score")


@pytest.mark.parametrize("name", ["ml", "sde"])
def test_stochastic_samplers_are_seeded(case, name):
    score, z, mu, mask = case
    fn = get_sampler(name).fn
    assert get_sampler(name).stochastic

    def run(seed: int) -> torch.Tensor:
        return fn(score, z, mu, mask, 4, schedule=S, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(3), run(3))
    assert not torch.allclose(run(3), run(4))


# ---------------------------------------------------------------- DPM-Solver
def test_dpm_solver_1_is_ddim(case):
    """Order 1 equals DDIM written through the x0 estimate: y_t = a_t y0_hat + s_t eps_hat."""
    score, z, mu, mask = case
    steps = 4
    out = sample_dpm_solver(score, z, mu, mask, steps, schedule=S, order=1)
    grid = sch.logsnr_grid(S, steps, 1.0, 1e-3).tolist()
    y = z - mu
    for s, t in zip(grid[:-1], grid[1:], strict=True):
        eps = -sch.sigma(S, s) * score(y + mu, torch.full((2,), s, dtype=torch.float64))
        y0 = (y - sch.sigma(S, s) * eps) / sch.alpha(S, s)
        y = (sch.alpha(S, t) * y0 + sch.sigma(S, t) * eps) * mask
    assert torch.allclose(out, (y + mu) * mask, atol=1e-12)


@pytest.mark.parametrize("predict", ["noise", "data"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_dpm_solver_convergence_order(case, order, predict):
    """Error vs the exact PF-ODE solution falls at least like h^order (h = logSNR step), for
    DPM-Solver (noise prediction) and DPM-Solver++ (data prediction) alike."""
    score, z, mu, mask = case
    exact = (mu + _flow(z - mu, 1.0, 1e-3)) * mask
    errors = [
        (sample_dpm_solver(score, z, mu, mask, n, schedule=S, order=order, predict=predict,
                           lower_order_final=False) - exact).abs().max().item()
        for n in (20, 40, 80)
    ]
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert rates[-1] > order - 0.15, (order, errors, rates)
    assert errors[-1] < [3e-2, 1e-3, 1e-4][order - 1]


@pytest.mark.parametrize("predict", ["noise", "data"])
@pytest.mark.parametrize(("order", "min_rate"), [(1, 0.9), (2, 1.85), (3, 2.8)])
def test_dpm_solver_order_on_forced_linear_ode(order, min_rate, predict):
    """A score that is a pure function of time, eps(lambda) = sin^3((lambda - lambda_T) / 2),
    turns the PF-ODE into y' = linear + forcing with an exact quadrature solution. Its first
    derivatives vanish at t = 1, so the low-order warm-up steps do not mask the method's order.
    (With the reference code's D2 weight, order 3 only reaches rate ~2.25 here.)"""
    quad = pytest.importorskip("scipy.integrate").quad
    lam_t, lam_0 = sch.lam(S, 1.0), sch.lam(S, 1e-3)

    def score(x, t):
        t = t.double()
        eps = torch.sin(0.5 * (sch.lam(S, t) - lam_t)) ** 3
        return (-eps / sch.sigma(S, t))[:, None, None] * torch.ones_like(x)

    def forcing(lmb):
        return math.exp(-lmb) * math.sin(0.5 * (lmb - lam_t)) ** 3

    a_end = sch.alpha(S, 1e-3)
    exact = a_end / sch.alpha(S, 1.0) * 0.5 - a_end * quad(forcing, lam_t, lam_0, epsabs=0,
                                                           epsrel=1e-12, limit=400)[0]
    zeros = torch.zeros(1, 1, 2, dtype=torch.float64)
    z, mask = zeros + 0.5, zeros + 1.0
    errors = [abs(sample_dpm_solver(score, z, zeros, mask, n, schedule=S, order=order,
                                    predict=predict, lower_order_final=False)[0, 0, 0].item()
                  - exact)
              for n in (40, 80, 160)]
    assert math.log2(errors[1] / errors[2]) > min_rate, errors


def test_dpm_solver_higher_order_is_more_accurate(case):
    score, z, mu, mask = case
    exact = (mu + _flow(z - mu, 1.0, 1e-3)) * mask
    errs = [(sample_dpm_solver(score, z, mu, mask, 10, schedule=S, order=k) - exact).abs().max()
            for k in (1, 2, 3)]
    assert errs[0] > errs[1] > errs[2]


def test_dpm_solver_rejects_bad_options(case):
    score, z, mu, mask = case
    with pytest.raises(ValueError, match="order"):
        sample_dpm_solver(score, z, mu, mask, 3, schedule=S, order=4)
    with pytest.raises(ValueError, match="predict"):
        sample_dpm_solver(score, z, mu, mask, 3, schedule=S, predict="x0")
    with pytest.raises(ValueError, match="choose one of: logsnr, time-uniform"):
        sample_dpm_solver(score, z, mu, mask, 3, schedule=S, grid="karras")
    with pytest.raises(ValueError, match="t_end"):
        sample_dpm_solver(score, z, mu, mask, 3, schedule=S, t_end=0.0)


def test_dpm_solver_final_step_is_first_order_at_any_step_count(case):
    """With lower_order_final the last step of order 2 is a DDIM step even at 20 steps (the
    reference only does this below 10-15 steps): 19 steps of the solver, then one order-1 step
    on the remaining interval, reproduce it exactly."""
    score, z, mu, mask = case
    out = sample_dpm_solver(score, z, mu, mask, 20, schedule=S, order=2)
    assert not torch.allclose(out, sample_dpm_solver(score, z, mu, mask, 20, schedule=S, order=2,
                                                     lower_order_final=False))
    times = dpm_grid(S, 20, "logsnr", 1e-3)
    y = z - mu
    history = []
    for i in range(20):
        s_, t_ = times[i], times[i + 1]
        eps = -sch.sigma(S, s_) * score(y + mu, torch.full((2,), s_, dtype=torch.float64))
        h = sch.lam(S, t_) - sch.lam(S, s_)
        y_new = sch.alpha(S, t_) / sch.alpha(S, s_) * y - sch.sigma(S, t_) * math.expm1(h) * eps
        if 0 < i < 19:
            r0 = (sch.lam(S, s_) - history[-1][0]) / h
            y_new = y_new - 0.5 * sch.sigma(S, t_) * math.expm1(h) * (eps - history[-1][1]) / r0
        history.append((sch.lam(S, s_), eps))
        y = y_new * mask
    assert torch.allclose(out, (y + mu) * mask, atol=1e-10)


@pytest.mark.parametrize("grid", DPM_GRIDS)
def test_dpm_grids(grid):
    times = dpm_grid(S, 8, grid, 1e-3)
    assert len(times) == 9 and times[0] == 1.0 and times[-1] == pytest.approx(1e-3, rel=1e-12)
    assert all(a > b for a, b in zip(times[:-1], times[1:], strict=False))
    if grid == "time-uniform":
        assert times[4] == pytest.approx((1.0 + 1e-3) / 2)
    elif grid == "time-quadratic":
        assert math.sqrt(times[4]) == pytest.approx((1.0 + math.sqrt(1e-3)) / 2)
    else:
        lams = [sch.lam(S, t) for t in times]
        assert lams[4] == pytest.approx((lams[0] + lams[-1]) / 2, rel=1e-9)


@pytest.mark.parametrize("grid", ["time-uniform", "time-quadratic"])
def test_dpm_solver_converges_on_every_grid(case, grid):
    score, z, mu, mask = case
    exact = (mu + _flow(z - mu, 1.0, 1e-3)) * mask
    errors = [(sample_dpm_solver(score, z, mu, mask, n, schedule=S, order=2, grid=grid)
               - exact).abs().max().item() for n in (20, 40, 80)]
    assert errors[0] > errors[1] > errors[2], errors
    assert math.log2(errors[1] / errors[2]) > 1.5, errors  # order 2 in the step count


# ---------------------------------------------------------------- Euler / ML
def test_euler_converges_to_exact_flow(case):
    score, z, mu, mask = case
    exact = (mu + _flow(z - mu, 1.0, 0.0)) * mask
    e1, e2 = [(sample_euler(score, z, mu, mask, n, schedule=S) - exact).abs().max().item()
              for n in (100, 200)]
    assert e2 < 0.02 and 1.6 < e1 / e2 < 2.6


def test_ml_step_is_tweedie_plus_gaussian_posterior(case):
    score, z, mu, mask = case
    steps = 5
    drawn: list[torch.Tensor] = []

    def noise(x: torch.Tensor) -> torch.Tensor:
        drawn.append(torch.randn(x.shape, dtype=x.dtype))
        return drawn[-1]

    out = sample_ml(score, z, mu, mask, steps, schedule=S, noise=noise)
    assert len(drawn) == steps - 1  # the last step (to t = 0) is deterministic
    y = z - mu
    for i in range(steps):
        t, s = 1 - i / steps, (1 - (i + 1) / steps if i < steps - 1 else 0.0)
        g_t, g_s = sch.alpha(S, t), sch.alpha(S, s)
        g_st = g_t / g_s
        sc = score(y + mu, torch.full((2,), t, dtype=torch.float64))
        y0 = (y + (1 - g_t**2) * sc) / g_t  # Tweedie
        mean = (g_st * (1 - g_s**2) * y + g_s * (1 - g_st**2) * y0) / (1 - g_t**2)
        var = (1 - g_s**2) * (1 - g_st**2) / (1 - g_t**2)
        y = mean + (math.sqrt(var) * drawn[i] if i < steps - 1 else 0.0)
        y = y * mask
    assert torch.allclose(out, (y + mu) * mask, atol=1e-10)


def test_ml_matches_grad_svc_kappa_omega_form():
    """Our scalar coefficients equal Grad-SVC's MaxLikelihood (kappa, omega) update."""
    for t, h in [(1.0, 0.05), (0.55, 0.05), (0.3, 0.1), (0.1, 0.1)]:
        s = t - h
        b0, b1 = S.beta_min, S.beta_max

        def gam(a, b, b0=b0, b1=b1):
            return math.exp(-0.5 * (b0 * (b - a) + 0.5 * (b1 - b0) * (b * b - a * a)))

        g0t, g0s, gst = gam(0, t), gam(0, s), gam(s, t)
        mu_t = gst * (1 - g0s**2) / (1 - g0t**2)
        nu = g0s * (1 - gst**2) / (1 - g0t**2)
        sig = math.sqrt((1 - g0s**2) * (1 - gst**2) / (1 - g0t**2))
        beta_t = b0 + (b1 - b0) * t
        kappa = nu * (1 - g0t**2) / (g0t * beta_t * h) - 1
        omega = (mu_t - 1) / (beta_t * h) + (1 + kappa) / (1 - g0t**2) - 0.5
        a, b, c = ml_coefficients(S, t, s)
        assert a == pytest.approx(1 + (0.5 + omega) * beta_t * h, rel=1e-9)
        assert b == pytest.approx((1 + kappa) * beta_t * h, rel=1e-9)
        assert c == pytest.approx(sig, rel=1e-9)


def test_ml_batch_equals_items(case):
    """Batch coefficients are scalars: each item of a batch equals its solo run (same noise)."""
    score, z, mu, mask = case
    noises = [torch.randn(z.shape, dtype=z.dtype) for _ in range(4)]
    batch_iter = iter(noises)
    out = sample_ml(score, z, mu, mask, 4, schedule=S, noise=lambda x: next(batch_iter))
    for b in range(2):
        solo_iter = iter(n[b:b + 1] for n in noises)

        def solo_score(x, t, b=b):
            return score(x.expand(2, -1, -1), t.expand(2))[b:b + 1]

        solo = sample_ml(solo_score, z[b:b + 1], mu[b:b + 1], mask[b:b + 1], 4, schedule=S,
                         noise=lambda x, it=solo_iter: next(it))
        assert torch.allclose(solo, out[b:b + 1], atol=1e-12)


# ---------------------------------------------------------------- prior / loss
def test_prior_sample_temperature_divides_noise():
    mu = torch.full((1, 100, 400), 2.0)
    mask = torch.ones(1, 1, 400)
    mask[..., 300:] = 0
    g = torch.Generator().manual_seed(0)
    z = prior_sample(mu, mask, temperature=2.0, generator=g)
    assert (z[..., 300:] == 0).all()
    assert (z[..., :300] - 2.0).std().item() == pytest.approx(0.5, rel=0.03)
    assert torch.equal(z, prior_sample(mu, mask, 2.0, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError):
        prior_sample(mu, mask, temperature=0.0)


def test_score_loss_ignores_padding(case):
    score, z, mu, mask = case
    x0 = (mu + M0 + S0 * torch.randn(z.shape, dtype=z.dtype)) * mask

    def noisy_score(x, t):
        return score(x, t) + 100.0 * (1 - mask)  # garbage on padded frames only

    t = torch.tensor([0.3, 0.7], dtype=torch.float64)
    a = score_loss(score, x0, mu, mask, S, torch.Generator().manual_seed(5), t=t).loss
    b = score_loss(noisy_score, x0, mu, mask, S, torch.Generator().manual_seed(5), t=t).loss
    assert torch.allclose(a, b)
    # With the exact score the loss equals E|sigma s + eps|^2 = 1 - sigma^2 / v_t per element.
    expected = sum(1 - sch.sigma(S, ti) ** 2 / _v(ti) for ti in (0.3, 0.7)) / 2
    big = torch.ones(2, 1, 4000, dtype=torch.float64)
    mu_b = torch.zeros(2, 4, 4000, dtype=torch.float64)
    x0_b = M0 + S0 * torch.randn(mu_b.shape, dtype=mu_b.dtype)

    def exact(x, tt):
        aa = sch.alpha(S, tt.double())[:, None, None]
        return -(x - aa * M0) / (aa**2 * S0**2 + sch.sigma(S, tt.double())[:, None, None] ** 2)

    loss = score_loss(exact, x0_b, mu_b, big, S, torch.Generator().manual_seed(1), t=t).loss
    assert loss.item() == pytest.approx(expected, rel=0.03)
