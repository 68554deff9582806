"""The vocoder registry: every vocoder by name, with what it supports.

A vocoder is one module (its `Vocoder` subclass and a loader) plus one `VocoderSpec`
registered here. Built-in modules are imported on first use; `register` adds any other at run
time, after which `load_vocoder(name)`, `gvc infer --vocoder` and `gvc vocode --vocoder` use it
like a built-in. Callers read `spec.capabilities` (precisions, weights, NSF excitation,
chunking) instead of checking names or classes.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gvc.device import Precision, Runtime
from gvc.errors import CheckpointError, ConfigError
from vocoder.base import Capabilities, Vocoder

logger = logging.getLogger(__name__)

Loader = Callable[[Path | None, Path | None, Runtime | None], Vocoder]
"""(checkpoint or None, config file or None, runtime or None) -> a ready vocoder."""


@dataclass(frozen=True)
class VocoderSpec:
    """One registered vocoder.

    Attributes:
        name: the `--vocoder` value.
        cls: its `Vocoder` subclass (declares `capabilities`).
        load: builds it from a checkpoint, an optional config and a runtime.
        summary: one line for help texts.
        default_ckpt: where the checkpoint is looked for when none is given (None: required
            when `capabilities.weights`).
    """

    name: str
    cls: type[Vocoder]
    load: Loader
    summary: str
    default_ckpt: Path | None = None

    @property
    def capabilities(self) -> Capabilities:
        """What the vocoder supports."""
        return self.cls.capabilities


# name -> the module whose `SPEC` registers it; imported when the name is first looked up
_BUILTIN = {
    "nsf-bigvgan": "vocoder.nsf_bigvgan",
    "diffwave": "vocoder.diffwave.vocoder",
    "griffinlim": "vocoder.griffinlim",
}
_SPECS: dict[str, VocoderSpec] = {}


def register(spec: VocoderSpec, replace: bool = False) -> VocoderSpec:
    """Make `spec` available by name.

    Raises:
        ConfigError: the name is taken (unless `replace`).
    """
    if not replace and (spec.name in _SPECS or spec.name in _BUILTIN):
        raise ConfigError(f"a vocoder named {spec.name!r} is already registered")
    _SPECS[spec.name] = spec
    return spec


def names() -> tuple[str, ...]:
    """Every registered vocoder name (built-ins first)."""
    return tuple(_BUILTIN) + tuple(n for n in _SPECS if n not in _BUILTIN)


def get_spec(name: str) -> VocoderSpec:
    """The spec registered under `name` (case-insensitive).

    Raises:
        ConfigError: no such vocoder.
    """
    key = name.strip().lower()
    if key in _SPECS:
        return _SPECS[key]
    if key in _BUILTIN:
        spec = importlib.import_module(_BUILTIN[key]).SPEC
        _SPECS[key] = spec
        return spec
    raise ConfigError(f"unknown vocoder {name!r}; choose one of {', '.join(names())}")


def runtime_for(spec: VocoderSpec, runtime: Runtime | None) -> Runtime | None:
    """`runtime` with its precision replaced by fp32 when the vocoder does not support it (on
    that device)."""
    caps = spec.capabilities
    on_cpu = runtime is not None and runtime.device.type == "cpu"
    allowed = caps.cpu_precisions if on_cpu and caps.cpu_precisions is not None \
        else caps.precisions
    if runtime is None or runtime.precision.value in allowed:
        return runtime
    logger.info("vocoder %s runs in fp32 (%s is not supported%s)", spec.name,
                runtime.precision.value, " on a CPU" if on_cpu else "")
    return Runtime(runtime.device, Precision.FP32)


def checkpoint_for(spec: VocoderSpec, ckpt: str | Path | None) -> Path | None:
    """The checkpoint the vocoder will read: `ckpt`, else its default, else None.

    Raises:
        CheckpointError: the vocoder needs weights and neither `ckpt` nor a default is given.
    """
    if ckpt is not None:
        return Path(ckpt)
    if spec.capabilities.weights and spec.default_ckpt is None:
        raise CheckpointError(f"the {spec.name} vocoder needs weights: pass --vocoder-ckpt FILE "
                              f"(gvc export --checkpoint <vocoder run> writes one)")
    return spec.default_ckpt


def load_vocoder(
    kind: str = "nsf-bigvgan",
    ckpt: str | Path | None = None,
    config: str | Path | None = None,
    runtime: Runtime | None = None,
) -> Vocoder:
    """Build a registered vocoder.

    Args:
        kind: a registered name (`names()`).
        ckpt: its checkpoint (NSF-BigVGAN defaults to Grad-SVC's
            `bigvgan_pretrain/nsf_bigvgan_pretrain_32K.pth`); ignored by weight-free vocoders.
        config: an architecture file where the vocoder has one (NSF-BigVGAN's yaml).
        runtime: device and precision (CPU fp32 if None); an unsupported precision becomes fp32.

    Raises:
        ConfigError: unknown `kind`.
        CheckpointError: missing or mismatching checkpoint.
    """
    spec = get_spec(kind)
    return spec.load(checkpoint_for(spec, ckpt), Path(config) if config is not None else None,
                     runtime_for(spec, runtime))
