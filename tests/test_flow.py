"""The flow decoder family: Grad-SVC V3-CFM parity, solvers, rectified flow, guidance, import."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from gvc.config import load_config
from gvc.decoders.base import decoder_family, decoder_names
from gvc.decoders.flow import FlowDecoder, FlowOptions, sample_times
from gvc.decoders.flow_samplers import flow_grid
from gvc.decoders.registry import get_sampler, sampler_names
from gvc.errors import CheckpointError, ConfigError
from gvc.export import export_checkpoint, import_gradsvc, load_exported
from gvc.models import GradSVC, load_acoustic_state, read_checkpoint
from gvc.models.unet import GradLogPEstimator2d
from gvc.training import train
from tests.helpers import run_gvc
from tests.test_training import make_tree, one_thread, options

__all__ = ["one_thread"]  # the autouse one-thread fixture applies here too

TOL = 1e-4  # fixture README: max abs error <= 1e-4 x max abs value


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


# ---------------------------------------------------------------- Grad-SVC V3-CFM parity
@pytest.fixture(scope="module")
def v3(fixtures_dir):
    folder = fixtures_dir / "gradsvc_v3_cfm_small"
    case = torch.load(folder / "case.pt", weights_only=False)
    cfg = load_config(folder / "config.yaml", {"grad.decoder": "flow"})
    model = GradSVC.from_config(cfg).eval()
    load_acoustic_state(model, read_checkpoint(folder / "gvc.pth")["model"], folder)
    return folder, case, model


def test_v3_encoder_velocity_euler_and_loss_match_the_original(v3):
    _, c, model = v3
    with torch.no_grad():
        state = model.encode_full(c["vec"], c["pit"], c["spk"], torch.tensor([c["T"]]))
        assert _rel(state.mu, c["mu"]) < TOL
        for t, want in c["velocity"].items():
            got = model.decoder(c["x_t"], c["mask"], c["mu"], torch.tensor([float(t)]),
                                state.spk_emb)
            assert _rel(got, want) < TOL, t
        mel = model.sample(c["mu"], c["mask"], state.spk_emb, z=c["z"].clone(), steps=10)
        assert _rel(mel, c["cfm_euler_10steps"]) < TOL
        loss = model.decoder.compute_loss(c["mel"], c["mu"], c["mask"], state.spk_emb,
                                          t=c["t_loss"].reshape(1), noise=lambda x: c["z_loss"])
    assert float(loss) == pytest.approx(float(c["cfm_loss"]), rel=TOL)


def test_v3_import_needs_the_decoder_and_refuses_other_widths(v3, tmp_path):
    folder, c, model = v3
    out = tmp_path / "v3.gvc.pth"
    res = import_gradsvc(folder / "gvc.pth", str(folder / "config.yaml"), out, decoder="flow")
    loaded, cfg, meta = load_exported(res.path)
    assert meta["decoder"] == "flow" and meta["source"]["decoder"] == "flow"
    # Grad-SVC V3's defaults: Euler, 10 steps, temperature 1.015 (multiplying), sigma_min 1e-4
    assert (cfg.infer.sampler, cfg.infer.steps, cfg.infer.temperature) == ("euler", 10, 1.015)
    assert cfg.decoder.sigma_min == 1e-4 and not loaded.decoder.guidance
    with torch.no_grad():
        state = loaded.encode_full(c["vec"], c["pit"], c["spk"], torch.tensor([c["T"]]))
        mel = loaded.sample(c["mu"], c["mask"], state.spk_emb, z=c["z"].clone())
    assert _rel(mel, c["cfm_euler_10steps"]) < TOL  # sampler=None, steps=None: V3's defaults
    # the published v3-cfm preset has other widths than the fixture: strict shape refusal
    with pytest.raises(CheckpointError, match=r"shape.*--preset v3-cfm"):
        import_gradsvc(folder / "gvc.pth", "v3-cfm", tmp_path / "wrong.pth")
    assert not (tmp_path / "wrong.pth").exists()


def test_export_cli_imports_v3_and_exits_2_on_wrong_widths(v3, tmp_path):
    folder = v3[0]
    wrong = run_gvc("export", "--from-grad-svc", str(folder / "gvc.pth"), "--preset", "v3-cfm",
                    "--out", str(tmp_path / "a.pth"), cwd=tmp_path)
    assert wrong.returncode == 2 and not (tmp_path / "a.pth").exists()
    assert "does not fit" in wrong.stdout + wrong.stderr
    ok = run_gvc("export", "--from-grad-svc", str(folder / "gvc.pth"), "--preset",
                 str(folder / "config.yaml"), "--decoder", "flow", "--out",
                 str(tmp_path / "b.pth"), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "flow decoder" in ok.stdout and "euler x 10" in ok.stdout
    both = run_gvc("export", "--checkpoint", str(tmp_path), "--decoder", "flow", cwd=tmp_path)
    assert both.returncode == 2 and "only for --from-grad-svc" in both.stdout + both.stderr


def test_v3_rope_preset_builds_the_rope_encoder():
    model = GradSVC.from_config(load_config("v3-cfm-rope"))
    keys = model.state_dict().keys()
    assert model.decoder_kind == "flow" and not any("emb_rel" in k for k in keys)
    assert any("emb_rel" in k for k in GradSVC.from_config(load_config("v3-cfm")).state_dict())


# ---------------------------------------------------------------- solvers
def _linear_case():
    """dx/dt = cos(2 t) x + t, x(0) = z: x(1) has a closed form via the integrating factor."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 8, 4, generator=g, dtype=torch.float64)

    def velocity(x, t):
        tt = t.to(x.dtype)[:, None, None]
        return torch.cos(2 * tt) * x + tt

    # x(1) = e^{s(1)} (z + int_0^1 t e^{-s(t)} dt), s(t) = sin(2 t) / 2 (Simpson, 2000 panels)
    n = 2000
    ts = torch.linspace(0, 1, n + 1, dtype=torch.float64)
    f = ts * torch.exp(-torch.sin(2 * ts) / 2)
    w = torch.ones(n + 1, dtype=torch.float64)
    w[1:-1:2], w[2:-1:2] = 4, 2
    integral = float((w * f).sum() / (3 * n))
    exact = math.exp(math.sin(2.0) / 2) * (z + integral)
    return velocity, z, exact


@pytest.mark.parametrize(("name", "order"), [("euler", 1), ("midpoint", 2), ("heun", 2),
                                             ("rk4", 4)])
def test_flow_solvers_converge_at_their_order(name, order):
    velocity, z, exact = _linear_case()
    fn = get_sampler(name, "flow").fn
    mask = torch.ones(2, 1, 4, dtype=torch.float64)
    errs = [float((fn(velocity, z, torch.zeros_like(z), mask, n) - exact).abs().max())
            for n in (8, 16, 32)]
    rates = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(abs(r - order) < 0.35 for r in rates), (errs, rates)


def test_solver_nfe_per_step_is_what_the_solver_calls():
    velocity, z, _ = _linear_case()
    mask = torch.ones(2, 1, 4, dtype=torch.float64)
    for name in sampler_names("flow"):
        spec = get_sampler(name, "flow")
        calls: list[int] = []

        def counted(x, t, calls=calls):
            calls.append(1)
            return velocity(x, t)

        spec.fn(counted, z, z, mask, 3)
        assert len(calls) == 3 * spec.nfe_per_step, name


def test_grids_and_shallow_start():
    assert flow_grid(4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    sway = flow_grid(4, "sway", sway=-1.0)
    assert sway[0] == 0.0 and sway[-1] == 1.0
    assert all(a < b for a, b in zip(sway, sway[1:], strict=False))
    assert sway[1] < 0.25  # s < 0 puts steps near the noise end
    assert flow_grid(2, t_start=0.5) == [0.5, 0.75, 1.0]
    # a zero field from t_start returns the starting point of the path, (1 - t0) z + t0 mu
    z, mu, mask = torch.randn(1, 4, 4), torch.randn(1, 4, 4), torch.ones(1, 1, 4)
    out = get_sampler("euler", "flow").fn(lambda x, t: torch.zeros_like(x), z, mu, mask, 3,
                                          t_start=0.7)
    assert torch.allclose(out, 0.3 * z + 0.7 * mu)
    for bad in ({"grid": "karras"}, {"t_start": 1.0}, {"grid": "sway", "sway": 2.0}):
        with pytest.raises(ValueError):
            get_sampler("heun", "flow").fn(lambda x, t: x, z, mu, mask, 2, **bad)


def test_one_euler_step_from_noise_recovers_a_point_mass():
    """Exact rectified-flow velocity for a single data point x1: (x1 - x) / (1 - t)."""
    x1, z = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    v = lambda x, t: (x1 - x) / (1 - t[:, None, None])  # noqa: E731
    out = get_sampler("euler", "flow").fn(v, z, torch.zeros_like(z), torch.ones(1, 1, 8), 1)
    assert torch.allclose(out, x1, atol=1e-6)


# ---------------------------------------------------------------- objective and guidance
def _tiny_flow(**options) -> FlowDecoder:
    torch.manual_seed(0)
    return FlowDecoder(GradLogPEstimator2d(8, emb_dim=4, n_mels=8), FlowOptions(**options))


def test_flow_loss_falls_when_overfitting_a_tiny_batch():
    dec = _tiny_flow(sigma_min=0.0, time_sampling="lognorm")
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 8, 16, generator=g)
    mu, spk = x0 + 0.3 * torch.randn(2, 8, 16, generator=g), torch.randn(2, 4, generator=g)
    mask = torch.ones(2, 1, 16)

    def probe() -> float:
        with torch.no_grad():
            return float(dec.compute_loss(x0, mu, mask, spk,
                                          generator=torch.Generator().manual_seed(1)))

    start = probe()
    opt = torch.optim.Adam(dec.parameters(), lr=3e-3)
    for step in range(80):
        loss = dec.compute_loss(x0, mu, mask, spk, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert probe() < 0.4 * start


def test_loss_ignores_padding():
    dec = _tiny_flow()
    g = torch.Generator().manual_seed(2)
    x0, mu, spk = torch.randn(1, 8, 16, generator=g), torch.randn(1, 8, 16, generator=g), \
        torch.randn(1, 4, generator=g)
    mask = torch.ones(1, 1, 16)
    mask[..., 12:] = 0
    t = torch.tensor([0.3])
    noise = torch.randn(1, 8, 16, generator=g)
    junk = x0.clone()
    junk[..., 12:] = 50.0
    with torch.no_grad():
        a = dec.compute_loss(x0 * mask, mu * mask, mask, spk, t=t, noise=lambda x: noise)
        b = dec.compute_loss(junk, mu * mask, mask, spk, t=t, noise=lambda x: noise)
    assert float(a) == pytest.approx(float(b), rel=1e-6)


def test_lognorm_times_are_stratified_logit_normal():
    opts = FlowOptions(time_sampling="lognorm", time_mean=0.5, time_std=0.8)
    t = sample_times(4000, opts, torch.Generator().manual_seed(0))
    logit = torch.log(t / (1 - t))
    assert float(logit.mean()) == pytest.approx(0.5, abs=0.03)
    assert float(logit.std()) == pytest.approx(0.8, abs=0.03)
    small = sample_times(4, opts, torch.Generator().manual_seed(1))
    # one draw per quarter of the logit-normal distribution
    quartiles = torch.sigmoid(0.5 + 0.8 * torch.tensor([-0.6745, 0.0, 0.6745]))
    assert small[0] < quartiles[0] < small[1] < quartiles[1] < small[2] < quartiles[2] < small[3]
    u = sample_times(2000, FlowOptions(), torch.Generator().manual_seed(0))
    assert float(u.mean()) == pytest.approx(0.5, abs=0.03)


def test_condition_dropout_rates_and_null_conditions():
    dec = _tiny_flow(drop_spk=0.3, drop_content=0.1)
    mu, spk = torch.ones(4000, 8, 4), torch.ones(4000, 4)
    mu_d, spk_d = dec._drop_conditions(mu, spk, torch.Generator().manual_seed(0))
    dropped_spk = (spk_d.abs().sum(1) == 0).float().mean()
    dropped_mu = (mu_d.abs().sum((1, 2)) == 0).float().mean()
    assert float(dropped_spk) == pytest.approx(0.3, abs=0.03)
    assert float(dropped_mu) == pytest.approx(0.1, abs=0.02)
    plain = _tiny_flow()
    assert plain._drop_conditions(mu, spk, None)[0] is mu  # no dropout without guidance


def test_guidance_zero_is_exactly_unguided_and_both_branch_layouts_agree():
    dec = _tiny_flow(drop_spk=0.2, drop_content=0.2).eval()
    g = torch.Generator().manual_seed(4)
    mu, spk, z = torch.randn(1, 8, 8, generator=g), torch.randn(1, 4, generator=g), \
        torch.randn(1, 8, 8, generator=g)
    mask = torch.ones(1, 1, 8)
    with torch.no_grad():
        plain = dec.sample(mu, mask, spk, steps=3, z=z.clone())
        zero = dec.sample(mu, mask, spk, steps=3, z=z.clone(), cfg_strength=0.0)
        assert torch.equal(plain, zero)
        guided = dec.guided_field(mu, mask, spk, 0.7)
        x, t = torch.randn(1, 8, 8, generator=g), torch.tensor([0.4])
        cond = dec(x, mask, mu, t, spk)
        null = dec(x, mask, torch.zeros_like(mu), t, torch.zeros_like(spk))
        assert torch.allclose(guided(x, t), cond + 0.7 * (cond - null), atol=1e-5)
        doubled = dec.guided_field(mu, mask, spk, 0.7, batched=True)
        assert torch.allclose(doubled(x, t), guided(x, t), atol=1e-5)
        batches = []
        hook = dec.estimator.register_forward_hook(lambda m, a, o: batches.append(a[0].shape[0]))
        dec.sample(mu, mask, spk, steps=2, z=z.clone(), cfg_strength=0.7)
        hook.remove()
    assert batches == [1, 1, 1, 1]  # on a CPU: two single passes per step
    with pytest.raises(ConfigError, match="classifier-free guidance"):
        _tiny_flow().sample(mu, mask, spk, steps=2, cfg_strength=1.0)


def test_temperature_meaning_per_family():
    mu, mask = torch.full((1, 100, 4000), 3.0), torch.ones(1, 1, 4000)
    draw = lambda x: torch.randn(x.shape, generator=torch.Generator().manual_seed(0))  # noqa: E731
    score = GradSVC(n_enc_channels=8, filter_channels=16, dec_dim=8).decoder
    flow = GradSVC(n_enc_channels=8, filter_channels=16, dec_dim=8, decoder="flow").decoder
    zs = score.initial_state(mu, mask, 2.0, draw)
    zf = flow.initial_state(mu, mask, 2.0, draw)
    assert float(zs.mean()) == pytest.approx(3.0, abs=0.01)  # centred on mu
    assert float(zs.std()) == pytest.approx(0.5, rel=0.01)  # divides
    assert float(zf.mean()) == pytest.approx(0.0, abs=0.01)  # not centred on mu
    assert float(zf.std()) == pytest.approx(2.0, rel=0.01)  # multiplies
    assert "divides" in score.temperature_help and "multiplies" in flow.temperature_help


# ---------------------------------------------------------------- config and registry
def test_families_and_samplers_are_registered():
    assert {"score", "flow"} <= set(decoder_names())
    assert sampler_names("flow") == ["euler", "midpoint", "heun", "rk4"]
    assert decoder_family("flow").default_sampler == "euler"
    with pytest.raises(ConfigError, match="euler.* exists for the .*score.* decoders"):
        get_sampler("euler")
    with pytest.raises(ConfigError, match="unknown sampler 'ml' for the 'flow' decoder"):
        get_sampler("ml", "flow")


def test_config_flow_block_rules(tmp_path):
    import yaml

    from gvc.config import config_to_dict

    data = config_to_dict(load_config("tiny-flow"))
    assert data["flow"]["drop_spk"] == 0.1
    for change, needle in [
        ({"flow": {**data["flow"], "sigma_min": 0.5}}, "flow.sigma_min must be in"),
        ({"flow": {**data["flow"], "time_sampling": "beta"}}, "flow.time_sampling"),
        ({"flow": {**data["flow"], "bogus": 1}}, "unknown key 'flow.bogus'"),
        ({"grad": {**data["grad"], "decoder": "score"}, "infer": {**data["infer"],
          "sampler": "ml"}}, "a 'flow:' block, but grad.decoder is 'score'"),
        ({"flow": {**data["flow"], "drop_spk": 0.0, "drop_content": 0.0},
          "infer": {**data["infer"], "cfg_strength": 1.0}}, "condition dropout"),
    ]:
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({**data, **change}))
        with pytest.raises(ConfigError, match=needle):
            load_config(path)


# ---------------------------------------------------------------- training, export, inference
@pytest.fixture(scope="module")
def flow_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("flow")
    make_tree(tmp / "data_gvc", singers=2, utts=3)
    cfg = load_config("tiny-flow", {"train.segment_frames": 32, "train.min_frames": 40,
                                    "train.max_frames": 64, "train.batch_size": 2,
                                    "train.fast_epochs": 0, "train.num_workers": 0})
    res = train(options(tmp, cfg, config_name="tiny-flow", max_steps=3))
    assert res.reason == "max_steps" and res.step == 3
    return res.checkpoint


def test_flow_training_resumes_and_exports_a_flow_model(flow_run, tmp_path):
    ckpt = torch.load(flow_run, weights_only=True)
    assert ckpt["gvc"]["decoder"] == "flow" and ckpt["gvc"]["config"]["flow"]["drop_spk"] == 0.1
    res = export_checkpoint(flow_run, tmp_path / "flow.pth")
    model, cfg, meta = load_exported(res.path)
    assert meta["decoder"] == "flow" and model.decoder.guidance and cfg.infer.sampler == "euler"
    # resume: two more steps continue from step 3 in the same run folder
    tmp = flow_run.parent.parent
    cfg = load_config(flow_run.parent / "config.yaml")
    more = train(options(tmp, cfg, run=flow_run.parent.name, max_steps=5))
    assert more.step == 5 and more.reason == "max_steps"


def test_cfg_strength_is_refused_before_compute_on_models_without_dropout(flow_run, tmp_path):
    from gvc.inference import Converter
    from vocoder import load_vocoder

    flow, flow_cfg, flow_meta = load_exported(export_checkpoint(flow_run, tmp_path / "f.pth").path)
    guided = Converter(flow, flow_cfg, flow_meta, load_vocoder("griffinlim"))
    assert guided.decode_settings(cfg_strength=0.7).cfg_strength == 0.7
    assert guided.decode_settings("heun", options={"grid": "sway"}).options == {"grid": "sway"}
    with pytest.raises(ConfigError, match="not valid for heun"):
        guided.decode_settings("heun", options={"grid": "logsnr"})
    with pytest.raises(ConfigError, match="sigma_min: set by gvc"):
        guided.decode_settings("heun", options={"sigma_min": 0.1})
    for preset in ("tiny", "v3-cfm"):
        cfg = load_config(preset)
        plain = Converter(GradSVC.from_config(cfg), cfg, {}, load_vocoder("griffinlim"))
        with pytest.raises(ConfigError, match="without condition dropout"):
            plain.decode_settings(cfg_strength=0.5)


def test_infer_cli_refuses_cfg_on_a_score_model_with_exit_2(tmp_path):
    from gvc.cli import app
    from gvc.export.meta import build_meta
    from gvc.fileio import save_torch

    cfg = load_config("tiny")
    model_path = tmp_path / "m.pth"
    save_torch(model_path, {"model": GradSVC.from_config(cfg).state_dict(),
                            "gvc": build_meta(cfg, {}, kind="model")})
    wav = tmp_path / "a.wav"

    sf.write(str(wav), 0.3 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 220), 16000)
    spk = tmp_path / "s.spk.npy"
    np.save(spk, np.ones(256, np.float32))
    vec = tmp_path / "a.vec.npy"
    np.save(vec, np.zeros((50, 256), np.float32))
    res = run_gvc("infer", "--model", str(model_path), "--spk", str(spk), "--wave", str(wav),
                  "--vec", str(vec), "--vocoder", "griffinlim", "--cfg-strength", "1.0",
                  cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "without condition dropout" in res.stdout + res.stderr
    assert not (tmp_path / "a.gvc.wav").exists()
    listing = CliRunner().invoke(app, ["infer", "--list-samplers"])
    assert listing.exit_code == 0
    assert "midpoint" in listing.output and "dpm-solver-2" in listing.output
