"""Sampler registry: every sampler name a config or the CLI may use maps to a function here.

Sampler modules register themselves with `@register_sampler(name, decoder=...)`; the first
lookup imports every decoder family (`gvc.decoders.base.FAMILY_MODULES`), and each family module
imports its samplers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from gvc.errors import ConfigError


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler.

    Attributes:
        name: the configured name (`infer.sampler`, `--sampler`); unique within a family.
        decoder: the decoder family it belongs to (`grad.decoder`).
        fn: the sampler function `fn(field, z, mu, mask, steps, **kwargs)` (see the family's
            sampler module for its keywords).
        stochastic: whether it draws noise after the initial state.
        description: one line for `--help` and docs.
        nfe_per_step: network evaluations per step (without guidance).
        nfe: exact evaluations for a step count when it is not steps x nfe_per_step (e.g. EDM
            Heun, whose last step to sigma = 0 is an Euler step: 2 steps - 1); see `nfe_for`.
    """

    name: str
    decoder: str
    fn: Callable
    stochastic: bool
    description: str
    nfe_per_step: int = 1
    nfe: Callable[[int], int] | None = None

    def nfe_for(self, steps: int) -> int:
        """Network evaluations of `steps` steps (without guidance)."""
        return self.nfe(steps) if self.nfe is not None else steps * self.nfe_per_step


_REGISTRY: dict[tuple[str, str], SamplerSpec] = {}
_loaded = False


def register_sampler(name: str, *, decoder: str, stochastic: bool, description: str,
                     nfe_per_step: int = 1,
                     nfe: Callable[[int], int] | None = None) -> Callable[[Callable], Callable]:
    """Decorator registering `fn` as sampler `name` of family `decoder` (once per family)."""

    def wrap(fn: Callable) -> Callable:
        key = (decoder, name)
        if key in _REGISTRY and _REGISTRY[key].fn is not fn:
            raise ValueError(f"sampler {name!r} of the {decoder!r} decoder is already registered")
        _REGISTRY[key] = SamplerSpec(name, decoder, fn, stochastic, description, nfe_per_step,
                                     nfe)
        return fn

    return wrap


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module("gvc.decoders.base").load_families()


def sampler_names(decoder: str | None = None) -> list[str]:
    """Registered sampler names of one decoder family (all families: each name once), in order."""
    _ensure_loaded()
    names = [n for (d, n) in _REGISTRY if decoder is None or d == decoder]
    return list(dict.fromkeys(names))


def get_sampler(name: str, decoder: str | None = None) -> SamplerSpec:
    """Look a sampler up by name within a family (`decoder=None`: a name only one family has).

    Raises:
        ConfigError: unknown name, a name of another family, or an ambiguous name.
    """
    _ensure_loaded()
    if decoder is None:
        found = [spec for (_, n), spec in _REGISTRY.items() if n == name]
        if len(found) > 1:
            raise ConfigError(f"sampler {name!r} exists for the "
                              f"{', '.join(s.decoder for s in found)} decoders; name the decoder")
        spec = found[0] if found else None
    else:
        spec = _REGISTRY.get((decoder, name))
    if spec is None:
        known = ", ".join(sampler_names(decoder))
        if not known:
            families = ", ".join(dict.fromkeys(d for d, _ in _REGISTRY))
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
