"""`gvc export`: self-describing files, Grad-SVC compatibility, imports, fp16, strict loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from gvc.errors import CheckpointError, ConfigError, FeatureMismatch
from gvc.export import FORMAT_VERSION, export_checkpoint, import_gradsvc, load_exported
from gvc.models import GradSVC
from gvc.training import train
from gvc.training.checkpoint import load_checkpoint
from tests.test_training import make_tree, one_thread, options, tiny_config, write_meta

__all__ = ["one_thread"]  # the autouse one-thread fixture applies here too


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 2-step tiny run; returns its checkpoint."""
    tmp = tmp_path_factory.mktemp("run")
    make_tree(tmp / "data_gvc", singers=2, utts=3)
    return train(options(tmp, max_steps=2)).checkpoint


def _inputs(t: int = 37):
    g = torch.Generator().manual_seed(3)
    vec = torch.randn(1, t, 256, generator=g)
    pit = 120 + 200 * torch.rand(1, t, generator=g)
    pit[:, :5] = 0
    spk = torch.randn(1, 256, generator=g)
    return vec, pit, spk


def _infer(model, steps: int = 4):
    vec, pit, spk = _inputs()
    return model.infer(vec, pit, spk, sampler="ml", steps=steps, temperature=1.0,
                       generator=torch.Generator().manual_seed(11))


def test_export_loads_without_config_and_gives_identical_outputs(trained, tmp_path):
    res = export_checkpoint(trained, tmp_path / "gvc.pth")
    model, cfg, meta = load_exported(res.path)
    assert meta["format_version"] == FORMAT_VERSION and meta["kind"] == "model"
    assert (meta["architecture"], meta["decoder"], meta["dtype"]) == ("grad-svc-v2", "score", "float32")
    feats = meta["features"]
    assert feats["pitch"]["extractor"] == "praat" and feats["content"]["extractor"] == "hubert-soft"
    assert feats["speaker"]["extractor"] == "lstm" and feats["mel"]["hop_length"] == 320
    assert feats["content"]["rate"] == 50.0 and feats["frame_rate"] == 100.0
    assert meta["source"]["step"] == 2 and cfg.grad.dec_dim == 16
    ckpt = load_checkpoint(trained)
    ref = GradSVC.from_config(cfg)
    ref.load_state_dict(ckpt["model"])
    ref.eval()
    a, b = _infer(model), _infer(ref)
    assert torch.equal(a.mel, b.mel) and torch.equal(a.mu, b.mu)
    # Grad-SVC's loader reads only ['model'] and copies every key of its GradTTS: all present
    raw = torch.load(res.path, map_location="cpu", weights_only=False)
    assert set(raw["model"]) == set(ref.state_dict())
    assert any(k.startswith("encoder.speaker.") for k in raw["model"])  # GRL classifier kept
    assert "optim" not in raw and set(raw) == {"model", "gvc"}


def test_half_export(trained, tmp_path):
    full = export_checkpoint(trained, tmp_path / "full.pth").path
    half = export_checkpoint(trained, tmp_path / "half.pth", half=True).path
    raw = torch.load(half, weights_only=True)
    assert {v.dtype for v in raw["model"].values() if v.is_floating_point()} == {torch.float16}
    assert half.stat().st_size < 0.6 * full.stat().st_size
    m16, _, meta = load_exported(half)
    m32, _, _ = load_exported(full)
    assert meta["dtype"] == "float16"
    assert next(m16.parameters()).dtype == torch.float32
    a, b = _infer(m16).mu, _infer(m32).mu
    assert float((a - b).abs().max()) <= 2e-2 * float(b.abs().max())


def test_import_gradsvc_fixture_loads_strictly(fixtures_dir, tmp_path):
    src = fixtures_dir / "gradsvc_v2_small"
    res = import_gradsvc(src / "gvc.pth", str(src / "config.yaml"), tmp_path / "gvc.pth")
    model, cfg, meta = load_exported(res.path)
    assert meta["source"]["kind"] == "grad-svc" and meta["source"]["preset"].endswith("config.yaml")
    assert meta["architecture"] == "grad-svc-v2" and meta["features"]["pitch"]["extractor"] == "praat"
    original = torch.load(src / "gvc.pth", weights_only=True)["model"]
    state = model.state_dict()
    assert set(state) == set(original)
    assert all(torch.equal(state[k], original[k]) for k in original)
    case = torch.load(src / "case.pt", weights_only=True)
    lengths = torch.tensor([case["T"]])
    with torch.no_grad():
        mu, _ = model.encode(case["vec"], case["pit"], case["spk"], lengths)
    assert float((mu - case["mu"]).abs().max()) <= 1e-4 * float(case["mu"].abs().max())


def test_original_file_without_metadata_is_refused_with_the_import_command(fixtures_dir):
    path = fixtures_dir / "gradsvc_v2_small" / "gvc.pth"
    with pytest.raises(CheckpointError, match=r"no gvc metadata.*gvc export --from-grad-svc .*--preset"):
        load_exported(path)


def test_strict_load_errors(trained, fixtures_dir, tmp_path):
    res = export_checkpoint(trained, tmp_path / "gvc.pth")
    raw = torch.load(res.path, weights_only=True)
    del raw["model"]["encoder.proj_m.bias"]
    raw["model"]["extra.weight"] = torch.zeros(1)
    torch.save(raw, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=r"broken\.pth .*missing: encoder\.proj_m\.bias.*unexpected: extra\.weight"):
        load_exported(tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=r"shape mismatches.*\[--preset tiny\]"):
        import_gradsvc(fixtures_dir / "gradsvc_v2_small" / "gvc.pth", "tiny", tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="already has gvc metadata"):
        import_gradsvc(res.path, "tiny", tmp_path / "y.pth")
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        export_checkpoint(trained, res.path)
    with pytest.raises(CheckpointError, match="not a gvc training checkpoint"):
        export_checkpoint(fixtures_dir / "gradsvc_v2_small" / "gvc.pth", tmp_path / "z.pth")


def test_init_from_refuses_other_features(trained, tmp_path):
    exported = export_checkpoint(trained, tmp_path / "gvc.pth").path
    make_tree(tmp_path / "data_gvc", singers=2, utts=3, seed=5)
    write_meta(tmp_path / "data_gvc", pitch="crepe")
    with pytest.raises(FeatureMismatch, match="pitch: praat vs crepe"):
        train(options(tmp_path, tiny_config(), max_steps=1, init_from=exported))


def test_cli_export_and_import(trained, fixtures_dir, tmp_path):
    from gvc.cli.export import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    out = runner.invoke(app, ["export", "--checkpoint", str(trained.parent), "--out",
                              str(tmp_path / "a.pth"), "--half"])
    assert out.exit_code == 0, out.output
    assert "grad-svc-v2" in out.output and "float16" in out.output
    src = fixtures_dir / "gradsvc_v2_small" / "gvc.pth"
    out = runner.invoke(app, ["export", "--from-grad-svc", str(src), "--out", str(tmp_path / "b.pth")])
    assert isinstance(out.exception, ConfigError) and "--preset" in str(out.exception)
    out = runner.invoke(app, ["export", "--from-grad-svc", str(src), "--preset",
                              str(fixtures_dir / "gradsvc_v2_small" / "config.yaml"),
                              "--out", str(tmp_path / "b.pth")])
    assert out.exit_code == 0, out.output
    assert "architecture from --preset" in out.output
    assert load_exported(tmp_path / "b.pth")[2]["source"]["file"] == "gvc.pth"
