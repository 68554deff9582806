"""Typed config: presets validate, Grad-SVC's own YAML loads unchanged, errors name the key."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from gvc.config import (
    Config,
    GradConfig,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
)
from gvc.errors import ConfigError
from gvc.presets import list_presets, preset_path, presets_dir

PRESET_FILES = sorted(presets_dir().glob("*.yaml"))


def test_presets_exist():
    assert {"base", "v2-64", "tiny"} <= set(list_presets())


@pytest.mark.parametrize("path", PRESET_FILES, ids=lambda p: p.name)
def test_every_preset_validates(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.data.mel_channels == cfg.grad.n_mels


def test_preset_values():
    base, v64, tiny = load_config("base"), load_config("v2-64.yaml"), load_config("tiny")
    g = base.grad
    assert (g.n_enc_channels, g.filter_channels, g.dec_dim) == (192, 512, 96)
    assert (base.grad.beta_min, base.grad.beta_max, base.grad.pe_scale) == (0.05, 20.0, 1000.0)
    assert base.train.learning_rate == pytest.approx(2e-4)
    assert (base.infer.sampler, base.infer.steps, base.infer.temperature) == ("ml", 20, 1.015)
    assert v64.grad.dec_dim == 64
    assert config_to_dict(v64)["grad"] | {"dec_dim": 96} == config_to_dict(base)["grad"]
    assert tiny.grad.dec_dim <= 16 and tiny.grad.n_enc_channels <= 32


def test_fixture_config_loads(fixtures_dir):
    cfg = load_config(fixtures_dir / "gradsvc_v2_small" / "config.yaml")
    assert cfg.grad.n_enc_channels == 64 and cfg.grad.dec_dim == 32
    assert isinstance(cfg.train.learning_rate, float)  # YAML 1.1 reads `2e-4` as a string
    assert cfg.train.learning_rate == pytest.approx(2e-4)
    assert cfg.grad.version == "v2" and cfg.grad.decoder == "score"  # defaults for the additions


def test_original_base_yaml_equals_base_preset(fixtures_dir, tmp_path):
    """Grad-SVC's configs/base.yaml (= the fixture's with full widths) loads to the base preset."""
    text = (fixtures_dir / "gradsvc_v2_small" / "config.yaml").read_text()
    text = (text.replace("n_enc_channels: 64", "n_enc_channels: 192")
            .replace("filter_channels: 128", "filter_channels: 512")
            .replace("dec_dim: 32", "dec_dim: 96"))
    original = tmp_path / "base.yaml"
    original.write_text(text)
    assert load_config(original) == load_config("base")


def test_round_trip(tmp_path):
    cfg = load_config("tiny", overrides={"train.batch_size": 3, "infer.sampler": "dpm-solver-2"})
    assert cfg.train.batch_size == 3
    out = dump_config(cfg, tmp_path / "sub" / "resolved.yaml")
    again = load_config(out)
    assert again == cfg
    assert config_to_dict(again) == config_to_dict(cfg)
    assert isinstance(config_to_dict(cfg)["train"]["adam_betas"], list)


def _base_dict() -> dict:
    return yaml.safe_load(preset_path("base").read_text())


@pytest.mark.parametrize(
    ("block", "key", "value", "needle"),
    [
        ("grad", "n_layerz", 6, "unknown key 'grad.n_layerz'"),
        ("train", "lr", 1e-3, "unknown key 'train.lr'"),
        ("grad", "dec_dim", "wide", "grad.dec_dim must be int"),
        ("grad", "dec_dim", 100, "grad.dec_dim must be a multiple of 8"),
        ("grad", "n_mels", 102, "grad.n_mels must be a multiple of 4"),
        ("grad", "version", "v9", "grad.version = 'v9' is not one of"),
        ("grad", "decoder", "wavenet", "grad.decoder = 'wavenet' is not available"),
        ("infer", "sampler", "heun", "infer.sampler = 'heun' is not a sampler"),
        ("infer", "temperature", 0, "infer.temperature must be > 0"),
        ("train", "batch_size", True, "train.batch_size must be int"),
        ("train", "segment_frames", 202, "train.segment_frames"),
        ("train", "min_frames", 100, "train.min_frames"),
        ("train", "optimizer", "sgd", "train.optimizer = 'sgd'"),
        ("data", "mel_channels", 80, "data.mel_channels must equal grad.n_mels"),
    ],
)
def test_bad_values_name_key_and_file(tmp_path, block, key, value, needle):
    data = _base_dict()
    data.setdefault(block, {})[key] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_block_and_missing_required(tmp_path):
    data = _base_dict()
    data["model"] = {}
    with pytest.raises(ConfigError, match="unknown key 'model'"):
        config_from_dict(data, "x.yaml")
    data = _base_dict()
    del data["grad"]["beta_max"]
    with pytest.raises(ConfigError, match=r"x.yaml: required key 'grad.beta_max' is missing"):
        config_from_dict(data, "x.yaml")
    with pytest.raises(ConfigError, match="required block 'grad:'"):
        config_from_dict({"train": {}}, "x.yaml")


def test_optional_blocks_default():
    cfg = config_from_dict({"grad": _base_dict()["grad"]})
    assert cfg.train.batch_size == 8 and cfg.infer.sampler == "ml"
    required = [f.name for f in dataclasses.fields(GradConfig)
                if f.default is dataclasses.MISSING]
    assert "dec_dim" in required and "version" not in required


def test_unknown_preset_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="presets: .*base"):
        load_config("no-such-preset")
    bad = tmp_path / "broken.yaml"
    bad.write_text("grad: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="block.key"):
        load_config("base", overrides={"batch_size": 2})
