"""Sampler registry: every sampler name a config or the CLI may use maps to a function here.

Sampler modules register themselves with `@register_sampler(name, decoder=...)`; the modules in
`SAMPLER_MODULES` are imported on first lookup, so a new decoder family adds its module there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from gvc.errors import ConfigError

SAMPLER_MODULES: tuple[str, ...] = ("gvc.decoders.samplers",)
"""Modules whose import registers samplers (one per decoder family)."""


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler.

    Attributes:
        name: the configured name (`infer.sampler`, `--sampler`).
        decoder: the decoder family it belongs to (`grad.decoder`): score, flow, edm, consistency.
        fn: the sampler function (signature in `gvc.decoders.samplers`).
        stochastic: whether it draws noise after the initial state.
        description: one line for `--help` and docs.
    """

    name: str
    decoder: str
    fn: Callable
    stochastic: bool
    description: str


_REGISTRY: dict[str, SamplerSpec] = {}
_loaded = False


def register_sampler(name: str, *, decoder: str = "score", stochastic: bool,
                     description: str) -> Callable[[Callable], Callable]:
    """Decorator registering `fn` under `name`; a name may be registered once."""

    def wrap(fn: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"sampler {name!r} is already registered")
        _REGISTRY[name] = SamplerSpec(name, decoder, fn, stochastic, description)
        return fn

    return wrap


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        for module in SAMPLER_MODULES:
            importlib.import_module(module)
        _loaded = True


def sampler_names(decoder: str | None = None) -> list[str]:
    """Registered sampler names, optionally only those of one decoder family, in order."""
    _ensure_loaded()
    return [n for n, spec in _REGISTRY.items() if decoder is None or spec.decoder == decoder]


def get_sampler(name: str, decoder: str | None = None) -> SamplerSpec:
    """Look a sampler up by name.

    Raises:
        ConfigError: unknown name, or it belongs to another decoder family than `decoder`.
    """
    _ensure_loaded()
    spec = _REGISTRY.get(name)
    if spec is None or (decoder is not None and spec.decoder != decoder):
        known = ", ".join(sampler_names(decoder))
        if not known:
            families = ", ".join(sorted({s.decoder for s in _REGISTRY.values()}))
            raise ConfigError(f"the {decoder!r} decoder has no samplers in this build "
                              f"(decoders with samplers: {families})")
        family = f" for the {decoder!r} decoder" if decoder else ""
        raise ConfigError(f"unknown sampler {name!r}{family}; choose one of: {known}")
    return spec


def parse_sampler_options(items: list[str] | tuple[str, ...]) -> dict[str, object]:
    """`["key=value", ...]` (or comma-joined items) -> keyword options of a sampler.

    Values read as int, float or bool (`true`/`false`) when they can, else stay strings.

    Raises:
        ConfigError: an item without `=`.
    """
    options: dict[str, object] = {}
    for item in (part for text in items for part in text.split(",") if part):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"sampler option {item!r}: write key=value, e.g. grid=time-uniform")
        options[key.strip()] = _option_value(value.strip())
    return options


def _option_value(value: str) -> object:
    if value in ("true", "false"):
        return value == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def run_sampler(name: str, score: Callable, z, mu, mask, steps: int, *,
                decoder: str | None = None, **kwargs):
    """Run the sampler `name`: `fn(score, z, mu, mask, steps, **kwargs)` (see `samplers.py`)."""
    return get_sampler(name, decoder).fn(score, z, mu, mask, steps, **kwargs)
