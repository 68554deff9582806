"""Typed, strict configuration of a DiffWave vocoder and its training.

A vocoder config has three blocks: `model:` (the network and its DDPM schedule), `train:` and
`mel:` (the log-mel it is conditioned on: `vocoder.mel.MelConfig`, gvc's definition by default).
Presets `diffwave`
(Amphion's size) and `tiny-diffwave` (CPU experiments) are defined here; `-c` also takes a
YAML file with the same blocks. Unknown keys, wrong types and bad values are `ConfigError`s
naming the key, as in `gvc.config`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gvc.config import _build_block
from gvc.errors import ConfigError
from vocoder.mel import MelConfig


@dataclass(frozen=True)
class DiffWaveConfig:
    """`model:` block: network size and the training noise schedule (Kong et al. 2020, §3)."""

    residual_layers: int = 30
    residual_channels: int = 64
    dilation_cycle: int = 10  # dilation of layer i is 2 ** (i % dilation_cycle)
    upsample_factors: tuple[int, int] = (16, 20)  # two transposed convs, product = mel hop
    embedding_dim: int = 128  # sinusoidal diffusion-step embedding (then 512 wide)
    train_steps: int = 50  # T of the DDPM
    beta_start: float = 1e-4  # linear betas from beta_start to beta_end over train_steps
    beta_end: float = 0.05


@dataclass(frozen=True)
class VocoderTrainConfig:
    """`train:` block. Steps are optimizer steps."""

    seed: int = 37
    batch_size: int = 16
    segment_frames: int = 50  # random audio segment per item, in mel frames (0.5 s)
    learning_rate: float = 2e-4
    adam_betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0  # max gradient norm; 0 = off
    max_steps: int = 1_000_000
    checkpoint_every: int = 1000
    keep_last: int = 3  # newest checkpoints kept; 0 = all
    keep_every: int = 0  # permanent checkpoint every N steps; 0 = none
    valid_every: int = 1000
    valid_items: int = 4  # validation items synthesised (audio in TensorBoard)
    valid_steps: int = 6  # reverse steps used for validation audio (6 = the fast schedule)
    precision: str = field(default="fp32", metadata={"choices": ("fp32", "bf16")})
    num_workers: int = 2
    train_files: str = "files/train.txt"
    valid_files: str = "files/valid.txt"


@dataclass(frozen=True)
class VocoderConfig:
    """A whole DiffWave vocoder configuration."""

    model: DiffWaveConfig = field(default_factory=DiffWaveConfig)
    train: VocoderTrainConfig = field(default_factory=VocoderTrainConfig)
    mel: MelConfig = field(default_factory=MelConfig)  # `mel:` block: gvc's log-mel


_BLOCKS = {"model": DiffWaveConfig, "train": VocoderTrainConfig, "mel": MelConfig}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Amphion's DiffWave recipe: 30 layers, 64 channels, dilation cycle 10, 50 linear betas
    "diffwave": {},
    # CPU experiments: ~0.2 M weights, 8 layers (receptive field 255 samples per pass)
    "tiny-diffwave": {
        "model": {"residual_layers": 8, "residual_channels": 24, "dilation_cycle": 8},
        "train": {"batch_size": 4, "segment_frames": 25, "learning_rate": 5e-4,
                  "checkpoint_every": 100, "valid_every": 100, "valid_items": 3,
                  "num_workers": 0},
    },
}


def _check(ok: bool, source: str, key: str, why: str) -> None:
    if not ok:
        raise ConfigError(f"{source}: {key} {why}")


def validate(cfg: VocoderConfig, source: str) -> None:
    """Range and consistency checks; raise `ConfigError` naming the key."""
    m, t, mel = cfg.model, cfg.train, cfg.mel
    for name in ("residual_layers", "residual_channels", "dilation_cycle", "embedding_dim",
                 "train_steps"):
        _check(getattr(m, name) >= 1, source, f"model.{name}", "must be >= 1")
    _check(m.embedding_dim % 2 == 0, source, "model.embedding_dim", "must be even (sin + cos)")
    _check(all(f >= 2 and f % 2 == 0 for f in m.upsample_factors), source,
           "model.upsample_factors", "must be even numbers >= 2")
    _check(m.upsample_factors[0] * m.upsample_factors[1] == mel.hop_length, source,
           "model.upsample_factors", f"must multiply to mel.hop_length ({mel.hop_length})")
    _check(0 < m.beta_start < m.beta_end < 1, source, "model.beta_start/beta_end",
           "need 0 < beta_start < beta_end < 1")
    for name in ("batch_size", "segment_frames", "max_steps", "valid_steps"):
        _check(getattr(t, name) >= 1, source, f"train.{name}", "must be >= 1")
    for name in ("checkpoint_every", "keep_last", "keep_every", "valid_every", "valid_items",
                 "num_workers", "grad_clip"):
        _check(getattr(t, name) >= 0, source, f"train.{name}", "must be >= 0")
    _check(t.learning_rate > 0, source, "train.learning_rate", "must be > 0")
    for name in ("sampling_rate", "n_fft", "hop_length", "win_length", "n_mels"):
        _check(getattr(mel, name) >= 1, source, f"mel.{name}", "must be >= 1")
    _check(mel.clamp > 0, source, "mel.clamp", "must be > 0")
    _check(0 <= mel.fmin < mel.fmax <= mel.sampling_rate / 2, source, "mel.fmin/fmax",
           "need 0 <= fmin < fmax <= sampling_rate / 2")


def vocoder_config_from_dict(data: Any, source: str = "<dict>") -> VocoderConfig:
    """Build and validate a `VocoderConfig` from a nested mapping (blocks model, train, mel).

    Raises:
        ConfigError: unknown block or key, wrong type, bad value.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with blocks {', '.join(_BLOCKS)}")
    unknown = sorted(set(data) - set(_BLOCKS))
    if unknown:
        raise ConfigError(f"{source}: unknown key '{unknown[0]}' (known blocks: "
                          f"{', '.join(_BLOCKS)})")
    blocks = {name: _build_block(cls, data[name], name, source)
              for name, cls in _BLOCKS.items() if name in data}
    cfg = VocoderConfig(**blocks)
    validate(cfg, source)
    return cfg


def load_vocoder_config(name_or_path: str | Path) -> VocoderConfig:
    """A preset (`diffwave`, `tiny-diffwave`) or a YAML file with `model/train/mel` blocks.

    Raises:
        ConfigError: neither a preset nor a readable, valid file.
    """
    path = Path(name_or_path)
    if str(name_or_path) in PRESETS and not path.is_file():
        return vocoder_config_from_dict(PRESETS[str(name_or_path)], f"preset {name_or_path}")
    if not path.is_file():
        raise ConfigError(f"{name_or_path!r} is neither a vocoder config file nor a preset; "
                          f"presets: {', '.join(PRESETS)}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read vocoder config {path}: {exc}") from exc
    return vocoder_config_from_dict(data, str(path))


def vocoder_config_to_dict(cfg: VocoderConfig) -> dict[str, dict[str, Any]]:
    """Plain nested dict (YAML/JSON-safe: tuples become lists)."""
    return {name: {k: list(v) if isinstance(v, tuple) else v
                   for k, v in dataclasses.asdict(getattr(cfg, name)).items()}
            for name in _BLOCKS}
