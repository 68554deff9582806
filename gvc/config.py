"""Typed configuration: Grad-SVC's YAML blocks (`train:`, `data:`, `grad:`) plus gvc's additions.

Grad-SVC's own `configs/base.yaml` loads unchanged: every original key keeps its name and
meaning. Keys that gvc adds are listed after the original ones in each block (and a new
`infer:` block), all with defaults, so an original file gets Grad-SVC's behaviour except
where gvc fixes a documented bug.

Loading is strict: an unknown key, a value of the wrong type or out of range, or a missing
required key raises `ConfigError` naming the key and the file.

Example:
    >>> cfg = load_config("base")          # preset name, or a path to a YAML file
    >>> cfg.grad.dec_dim, cfg.infer.sampler
    (96, 'ml')
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gvc.errors import ConfigError
from gvc.presets import preset_path
from vocoder.mel import MEL

VERSIONS = ("v1", "v2", "v3-rope")
PRENET_STATS = ("padded", "masked")
OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("none", "cosine", "exponential")
PRECISIONS = ("fp32", "bf16", "fp16")  # fp16: CUDA inference only; training: fp32/bf16


def _choice(default: str, choices: tuple[str, ...]) -> Any:
    return field(default=default, metadata={"choices": choices})


@dataclass
class TrainConfig:
    """`train:` block. Epoch counts are epochs; `*_every`/`*_steps` are optimizer steps."""

    # --- Grad-SVC keys ---
    seed: int = 37
    train_files: str = "files/train.txt"
    valid_files: str = "files/valid.txt"
    log_dir: str = "logs/grad_svc"
    full_epochs: int = 500
    fast_epochs: int = 100  # encoder-only epochs (no diffusion loss) before the joint phase
    learning_rate: float = 2e-4
    batch_size: int = 8
    test_size: int = 4  # validation items synthesised every `test_step` epochs
    test_step: int = 5
    save_step: int = 10  # checkpoint every N epochs
    pretrain: str | None = None  # read for compatibility only: gvc loads weights via --init-from
    # --- gvc additions ---
    optimizer: str = _choice("adam", OPTIMIZERS)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max grad norm, applied to encoder and decoder separately; 0 = off
    segment_frames: int = 200  # decoder training segment (must be a multiple of 4)
    min_frames: int = 250  # utterances shorter than this are dropped (2.5 s)
    max_frames: int = 500  # longer utterances are randomly cropped to this (5 s)
    checkpoint_every: int = 0  # extra checkpoint every N steps; 0 = only every `save_step` epochs
    keep_last: int = 0  # keep only the newest N checkpoints; 0 = keep all (Grad-SVC)
    keep_every: int = 0  # permanent checkpoint every N steps, never rotated away; 0 = none
    lr_schedule: str = _choice("none", LR_SCHEDULES)
    lr_warmup_steps: int = 0
    lr_min: float = 1e-6  # floor of the cosine schedule
    lr_gamma: float = 0.999  # per-epoch factor of the exponential schedule
    precision: str = _choice("fp32", PRECISIONS)
    num_workers: int = 4
    vec_noise_std: float = 1.0  # V2 "perturbation": vec + N(0, std^2) in the data loader; 0 = off
    mu_noise_std: float = 1.0  # V2: decoder sees mu + N(0, std^2) while training; 0 = off (V1)


@dataclass
class DataConfig:
    """`data:` block: the mel under Grad-SVC's key names; the defaults are `vocoder.mel.MEL`,
    the one definition of the mel (32 kHz, hop 320, 100 bands, 40 Hz-16 kHz)."""

    segment_size: int = 16000  # unused by Grad-SVC; kept for compatibility
    max_wav_value: float = 32768.0  # unused by Grad-SVC; kept for compatibility
    sampling_rate: int = MEL.sampling_rate
    filter_length: int = MEL.n_fft
    hop_length: int = MEL.hop_length
    win_length: int = MEL.win_length
    mel_channels: int = MEL.n_mels
    mel_fmin: float = MEL.fmin
    mel_fmax: float = MEL.fmax


@dataclass
class GradConfig:
    """`grad:` block: acoustic-model sizes (all required) and the decoder schedule."""

    # --- Grad-SVC keys (required: they fix the checkpoint's shapes) ---
    n_mels: int
    n_vecs: int  # content-unit dimension (HuBERT-Soft: 256)
    n_pits: int  # pitch bins (f0_to_coarse gives 1..255, so >= 256)
    n_spks: int  # d-vector dimension (not a speaker count)
    n_embs: int  # pitch / speaker embedding width
    n_enc_channels: int  # prenet width; the transformer is n_enc_channels + 2 * n_embs wide
    filter_channels: int  # transformer FFN width
    dec_dim: int  # U-Net base width (multiple of 8)
    beta_min: float
    beta_max: float
    pe_scale: float  # time-embedding scale (1000 for every Grad-SVC checkpoint)
    # --- gvc additions ---
    version: str = _choice("v2", VERSIONS)  # encoder variant: V1 prenet, V2 prenet, V3-RoPE attn
    decoder: str = "score"  # decoder family of the U-Net (gvc.decoders.decoder_names())
    prenet_stats: str = _choice("padded", PRENET_STATS)  # V2 instance-norm statistics
    grl_channels: int = 1024  # hidden width of the GRL speaker classifier (Grad-SVC: 1024)


@dataclass
class InferConfig:
    """`infer:` block (gvc addition): sampler defaults and chunking.

    `sampler` and `steps` default to the decoder family's own defaults (score: ml x 20, flow:
    euler x 10, as Grad-SVC V2 and V3 infer).
    """

    sampler: str | None = None
    steps: int | None = None
    temperature: float = 1.015  # score: x_T = mu + N(0, I) / T; flow: x_0 = N(0, I) * T
    cfg_strength: float = 0.0  # classifier-free guidance (models trained with condition dropout)
    chunk_frames: int = 2400  # frames converted per chunk (24 s)
    context_frames: int = (
        50  # context frames (0.5 s) converted on each side of a chunk, then dropped
    )
    seed: int | None = None


@dataclass
class Config:
    """A whole resolved configuration."""

    grad: GradConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    decoder: Any = None  # options of the decoder family (its `options_type`), block named after it


_BLOCKS = {"train": TrainConfig, "data": DataConfig, "grad": GradConfig, "infer": InferConfig}


def _coerce(value: Any, hint: Any, key: str, src: str) -> Any:
    """Check/convert one YAML value to the annotated type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key, src)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{src}: {key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, key, src) for v, a in zip(value, args, strict=True))
    if hint is dict or origin is dict:  # a nested options block, checked by its owner
        if isinstance(value, dict):
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `2e-4` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{src}: {key} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def _build_block(cls: type, data: Any, block: str, src: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: '{block}:' must be a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{src}: unknown key '{block}.{unknown[0]}' "
            f"(known keys in {block}: {', '.join(fields)})"
        )
    kwargs = {}
    for name, f in fields.items():
        key = f"{block}.{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{src}: required key '{key}' is missing")
            continue
        value = _coerce(data[name], hints[name], key, src)
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{src}: {key} = {value!r} is not one of {', '.join(choices)}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ValueError as exc:  # range checks of option dataclasses (__post_init__)
        raise ConfigError(f"{src}: {exc}") from exc


build_block = _build_block
"""Public name of `_build_block(cls, data, block, source)`: a typed block from a mapping (used
for options nested in a decoder block, e.g. a consistency student's teacher options)."""


def _decoder_block(data: dict, decoder: str, source: str) -> Any:
    """The decoder family's options from its block (defaults when absent); None if it has none.

    Raises:
        ConfigError: unknown family, or a block of another family than `grad.decoder`.
    """
    from gvc.decoders.base import decoder_family, decoder_names  # local: keeps import light

    if decoder not in decoder_names():
        raise ConfigError(f"{source}: grad.decoder = {decoder!r} is not available in this build "
                          f"(decoders: {', '.join(decoder_names())})")
    family = decoder_family(decoder)
    for name in decoder_names():
        if name != decoder and name in data:
            raise ConfigError(f"{source}: a '{name}:' block, but grad.decoder is {decoder!r}; "
                              f"remove the block or set grad.decoder: {name}")
    if family.options_type is None:
        if decoder in data:
            raise ConfigError(f"{source}: the {decoder!r} decoder takes no '{decoder}:' block")
        return None
    return _build_block(family.options_type, data.get(decoder) or {}, decoder, source)


def config_from_dict(data: Any, source: str = "<dict>") -> Config:
    """Build and validate a `Config` from a nested mapping (as read from YAML).

    Args:
        data: mapping with a required `grad` block and optional `train`, `data`, `infer` blocks.
        source: file name used in error messages.

    Raises:
        ConfigError: unknown block or key, wrong type, missing required key, bad value.
    """
    from gvc.decoders.base import decoder_names

    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a YAML mapping with a 'grad:' block")
    unknown = sorted(set(data) - set(_BLOCKS) - set(decoder_names()))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{unknown[0]}' (known blocks: {', '.join(_BLOCKS)}, and one "
            f"named after grad.decoder: {', '.join(decoder_names())})"
        )
    if "grad" not in data:
        raise ConfigError(f"{source}: required block 'grad:' is missing")
    blocks = {name: _build_block(cls, data[name], name, source)
              for name, cls in _BLOCKS.items() if name in data}
    cfg = Config(**blocks)
    cfg.decoder = _decoder_block(data, cfg.grad.decoder, source)
    _fill_infer_defaults(cfg)
    validate_config(cfg, source)
    return cfg


def _fill_infer_defaults(cfg: Config) -> None:
    """`infer.sampler` / `infer.steps` left unset take the decoder family's defaults."""
    from gvc.decoders.base import decoder_family

    family = decoder_family(cfg.grad.decoder)
    if cfg.infer.sampler is None:
        cfg.infer.sampler = family.default_sampler
    if cfg.infer.steps is None:
        cfg.infer.steps = family.default_steps


def _check(ok: bool, source: str, key: str, why: str) -> None:
    if not ok:
        raise ConfigError(f"{source}: {key} {why}")


def validate_config(cfg: Config, source: str = "<config>") -> None:
    """Check ranges and cross-block consistency; raise `ConfigError` naming the key."""
    g, t, d, i = cfg.grad, cfg.train, cfg.data, cfg.infer
    for name in ("n_mels", "n_vecs", "n_pits", "n_spks", "n_embs", "n_enc_channels",
                 "filter_channels", "dec_dim", "grl_channels"):
        _check(getattr(g, name) > 0, source, f"grad.{name}", "must be > 0")
    _check(g.n_mels % 4 == 0, source, "grad.n_mels",
           "must be a multiple of 4 (the U-Net halves it twice)")
    _check(g.dec_dim % 8 == 0, source, "grad.dec_dim", "must be a multiple of 8 (GroupNorm groups)")
    _check(g.n_pits >= 256, source, "grad.n_pits",
           "must be >= 256 (f0_to_coarse gives bins 1..255)")
    _check(0 < g.beta_min < g.beta_max, source, "grad.beta_min/beta_max",
           "need 0 < beta_min < beta_max")
    _check(g.pe_scale > 0, source, "grad.pe_scale", "must be > 0")
    _check((g.n_enc_channels + 2 * g.n_embs) % 2 == 0, source, "grad.n_enc_channels",
           "plus 2 * n_embs must be even (2 attention heads)")
    _check(d.mel_channels == g.n_mels, source, "data.mel_channels",
           f"must equal grad.n_mels ({g.n_mels})")
    for name in ("sampling_rate", "filter_length", "hop_length", "win_length"):
        _check(getattr(d, name) > 0, source, f"data.{name}", "must be > 0")
    _check(0 <= d.mel_fmin < d.mel_fmax <= d.sampling_rate / 2, source, "data.mel_fmin/mel_fmax",
           "need 0 <= mel_fmin < mel_fmax <= sampling_rate / 2")
    _check(t.learning_rate > 0, source, "train.learning_rate", "must be > 0")
    for name in ("batch_size", "full_epochs", "save_step", "test_step"):
        _check(getattr(t, name) >= 1, source, f"train.{name}", "must be >= 1")
    for name in ("fast_epochs", "test_size", "checkpoint_every", "keep_last", "keep_every",
                 "lr_warmup_steps", "num_workers"):
        _check(getattr(t, name) >= 0, source, f"train.{name}", "must be >= 0")
    for name in ("grad_clip", "weight_decay", "vec_noise_std", "mu_noise_std", "lr_min"):
        _check(getattr(t, name) >= 0, source, f"train.{name}", "must be >= 0")
    _check(0 < t.lr_gamma <= 1, source, "train.lr_gamma", "must be in (0, 1]")
    _check(t.segment_frames > 0 and t.segment_frames % 4 == 0, source, "train.segment_frames",
           "must be a positive multiple of 4")
    _check(t.segment_frames <= t.min_frames <= t.max_frames, source, "train.min_frames",
           "need segment_frames <= min_frames <= max_frames")
    _check(i.steps >= 1, source, "infer.steps", "must be >= 1")
    _check(i.temperature > 0, source, "infer.temperature", "must be > 0")
    _check(i.chunk_frames >= 4 and i.context_frames >= 0, source, "infer.chunk_frames",
           "must be >= 4 (context_frames >= 0)")
    _check(i.cfg_strength >= 0, source, "infer.cfg_strength", "must be >= 0")
    from gvc.decoders.base import decoder_family  # local: keeps config import light
    from gvc.decoders.registry import sampler_names

    family = decoder_family(g.decoder)
    names = sampler_names(g.decoder)
    _check(bool(names), source, "grad.decoder", f"= {g.decoder!r} has no samplers in this build")
    if i.cfg_strength > 0:
        _check(family.trained_for_guidance(cfg.decoder), source, "infer.cfg_strength",
               f"> 0 needs a {g.decoder} decoder trained with condition dropout")
    _check(i.sampler in names, source, "infer.sampler",
           f"= {i.sampler!r} is not a sampler of the {g.decoder!r} decoder ({', '.join(names)})")


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc


def _apply_overrides(data: dict, overrides: dict[str, Any], source: str) -> None:
    for dotted, value in overrides.items():
        block, _, key = dotted.partition(".")
        if not key:
            raise ConfigError(f"override {dotted!r} must look like 'block.key'")
        target = data.setdefault(block, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{source}: '{block}:' must be a mapping")
        target[key] = value


def load_config(path_or_preset: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load a config file, or a preset by name (`base`, `v2-64`, `tiny`).

    Args:
        path_or_preset: a YAML file path; if no such file exists, a preset name.
        overrides: optional dotted keys applied before validation, e.g. `{"train.batch_size": 4}`.

    Raises:
        ConfigError: the file/preset does not exist or its content is invalid.
    """
    path = Path(path_or_preset)
    if not path.is_file():
        path = preset_path(str(path_or_preset))
    data = _read_yaml(path)
    if overrides:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a YAML mapping")
        _apply_overrides(data, overrides, str(path))
    return config_from_dict(data, str(path))


def config_to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    """Plain nested dict (YAML/JSON-safe; tuples become lists), blocks train/data/grad/infer."""
    out = {}
    blocks = [(name, getattr(cfg, name)) for name in _BLOCKS]
    if cfg.decoder is not None:
        blocks.append((cfg.grad.decoder, cfg.decoder))
    for name, value in blocks:
        block = dataclasses.asdict(value)
        out[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in block.items()}
    return out


def dump_config(cfg: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (loadable by `load_config`); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
    return path
