"""The EDM decoder family: preconditioning, Karras grid, samplers on an exact denoiser, loss,
normalisation, presets and a short training run through `gvc train`."""

from __future__ import annotations

import math

import pytest
import torch

from gvc.config import load_config
from gvc.decoders.edm import EDMDecoder, EDMOptions, karras_grid, precondition
from gvc.decoders.registry import get_sampler
from gvc.export import export_checkpoint, load_exported
from gvc.models import GradSVC
from gvc.training import train
from tests.test_training import FAST, make_tree, one_thread, options

__all__ = ["one_thread"]  # the autouse one-thread fixture applies here too


def test_preconditioning_values_and_identities():
    sigma = torch.tensor([0.002, 0.3, 1.0, 80.0], dtype=torch.float64)
    c = precondition(sigma, 0.5, torch.zeros(4, dtype=torch.float64))
    skip, out, inp = c.skip.flatten(), c.out.flatten(), c.inp.flatten()
    # EDM Table 1 at the grid ends (reference values)
    assert float(skip[0]) == pytest.approx(0.999984, abs=1e-6)
    assert float(out[0]) == pytest.approx(0.002, rel=1e-4)
    assert float(inp[0]) == pytest.approx(2.0, rel=1e-4)
    assert float(c.noise[0]) == pytest.approx(-1.554, abs=1e-3)
    assert float(skip[-1]) == pytest.approx(3.9e-5, rel=0.01)
    assert float(out[-1]) == pytest.approx(0.5, rel=1e-4)
    assert float(inp[-1]) == pytest.approx(0.0125, rel=1e-3)
    assert float(c.noise[-1]) == pytest.approx(1.0955, abs=1e-3)
    # unit-variance input and target: c_in^2 (sigma^2 + sd^2) = 1, c_skip sigma^2 = c_out^2,
    # and the loss weight lambda = 1 / c_out^2
    torch.testing.assert_close(inp**2 * (sigma**2 + 0.25), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(skip * sigma**2, out**2)
    lam = (sigma**2 + 0.25) / (sigma**2 * 0.25)
    torch.testing.assert_close(lam * out**2, torch.ones(4, dtype=torch.float64))


def test_karras_grid_reference_values():
    g40 = karras_grid(40, 0.002, 80.0, 7.0).flip(0)
    assert g40[:4].tolist() == pytest.approx([0.002, 0.00368, 0.00644, 0.01081], rel=2e-3)
    assert g40[-3:].tolist() == pytest.approx([60.117, 69.451, 80.0], rel=1e-4)
    g25 = karras_grid(25, 0.002, 80.0, 7.0).flip(0)
    assert g25[:3].tolist() == pytest.approx([0.002, 0.00524, 0.01224], rel=2e-3)
    assert g25[-3:].tolist() == pytest.approx([49.98, 63.48, 80.0], rel=1e-3)
    assert karras_grid(1, 0.002, 80.0, 7.0).tolist() == [80.0]
    family = EDMDecoder(torch.nn.Identity())
    torch.testing.assert_close(family.distill_grid(40), g40)


def _gaussian_denoiser(m: float, s: float):
    """The exact denoiser of data N(m, s^2) per element (noise mean zero)."""
    return lambda x, sigma: m + s**2 / (s**2 + sigma[:, None, None] ** 2) * (x - m)


@pytest.mark.parametrize("name", ["heun", "euler"])
def test_samplers_solve_the_probability_flow_ode_and_count_nfe(name):
    m, s = 0.3, 0.5
    z = 80.0 * torch.randn(2, 8, 12, generator=torch.Generator().manual_seed(0),
                           dtype=torch.float64)
    mask = torch.ones(2, 1, 12, dtype=torch.float64)
    # x(sigma) = m + (z - m) sqrt(s^2 + sigma^2) / sqrt(s^2 + sigma_max^2) solves the ODE exactly
    exact = m + (z - m) * s / math.sqrt(s**2 + 80.0**2)
    spec = get_sampler(name, "edm")
    errors, calls, d = [], [], _gaussian_denoiser(m, s)

    def counted(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return d(x, sigma)

    for steps in (20, 40):
        calls.clear()
        out = spec.fn(counted, z, z, mask, steps, sigma_min=0.002, sigma_max=80.0, rho=7.0)
        assert len(calls) == spec.nfe_for(steps) == (2 * steps - 1 if name == "heun" else steps)
        errors.append(float((out - exact).abs().max()))
    ratio = errors[0] / errors[1]  # halving the steps: x4 error for order 2, x2 for order 1
    assert ratio > 3.5 if name == "heun" else 1.7 < ratio < 2.3
    assert errors[1] < (0.02 if name == "heun" else 0.12)


def test_loss_is_unit_weight_regression_of_the_network_and_normalisation_round_trips():
    cfg = load_config("tiny-edm")
    model = GradSVC.from_config(cfg)
    dec = model.decoder
    g = torch.Generator().manual_seed(1)
    mel = -6 + 2 * torch.randn(2, 100, 16, generator=g)
    mu = mel + 0.3 * torch.randn(2, 100, 16, generator=g)
    mask = torch.ones(2, 1, 16)
    mask[1, :, 12:] = 0
    spk = torch.randn(2, 16, generator=g)
    n = torch.randn(2, 100, 16, generator=g)
    sigma = torch.tensor([0.05, 3.0], dtype=torch.float64)
    loss = dec.compute_loss(mel, mu, mask, spk, t=sigma, noise=lambda x: n)
    # by hand: F's target (x0 - c_skip x) / c_out with unit weight (lambda c_out^2 = 1)
    x0, mun = dec.normalise(mel, mask), dec.normalise(mu, mask)
    x = (x0 + sigma.float()[:, None, None] * n) * mask
    c = precondition(sigma, 0.5, x)
    f = dec.estimator(x * c.inp, mask, mun, c.noise, spk)
    want = (((f - (x0 - c.skip * x) / c.out) ** 2) * mask).sum() / (mask.sum() * 100)
    assert float(loss) == pytest.approx(float(want), rel=1e-4)
    torch.testing.assert_close(dec.denormalise(x0, mask), mel * mask)
    assert float(x0[0].min()) > -1.5 and float(x0[0].max()) < 1.5  # [-12, 2] -> [-1, 1]


def test_noise_mean_mu_starts_around_sigma_max_mu():
    dec = EDMDecoder(torch.nn.Identity(), EDMOptions(noise_mean="mu"))
    mu, mask = torch.full((1, 4, 8), 0.5), torch.ones(1, 1, 8)
    z = dec.initial_state(mu, mask, 1.0, lambda x: torch.zeros_like(x))
    torch.testing.assert_close(z, 80.0 * mu)
    x = dec.perturb(mu, mu, mask, torch.tensor([2.0]), torch.zeros_like(mu))
    torch.testing.assert_close(x, 3.0 * mu)  # x0 + sigma (n + mu)


def test_presets_and_bad_options():
    assert load_config("edm").grad.dec_dim == 96
    cfg = load_config("tiny-edm")
    assert (cfg.grad.decoder, cfg.infer.sampler, cfg.decoder.sigma_data) == ("edm", "heun", 0.5)
    with pytest.raises(Exception, match="mel_min"):
        load_config("tiny-edm", {"edm.mel_min": 5.0})


def test_gvc_train_edm_resume_export_and_sample(tmp_path):
    make_tree(tmp_path / "data_gvc")
    cfg = load_config("tiny-edm", {**FAST, "train.fast_epochs": 0})
    first = train(options(tmp_path, cfg, max_steps=2))
    resumed = train(options(tmp_path, cfg, max_steps=3, valid_every=3))  # images: heun x 18
    assert (first.step, resumed.step) == (2, 3)
    export_checkpoint(resumed.checkpoint, tmp_path / "edm.pth")
    model, cfg2, meta = load_exported(tmp_path / "edm.pth")
    assert meta["config"]["edm"]["mel_min"] == -12.0  # the normalisation travels with the file
    mu, mask = -6 + torch.randn(1, 100, 8), torch.ones(1, 1, 8)
    with torch.no_grad():
        mel = model.sample(mu, mask, torch.randn(1, 16), steps=3,
                           generator=torch.Generator().manual_seed(0))
    assert mel.shape == (1, 100, 8) and bool(torch.isfinite(mel).all())
