"""The decoder-family role: one object owns a decoder's objective, initial state and samplers.

A decoder family turns the encoder output mu into a mel with the shared U-Net estimator
(`gvc.models.unet.GradLogPEstimator2d`, held as `estimator`, so `GradSVC`'s state-dict keys stay
`decoder.estimator.*` for every family). The acoustic model calls only `compute_loss` (training)
and `sample` (inference); what t means, how noise enters, what `temperature` does and which
samplers exist are the family's business.

Shapes (100 mel frames/s, T a multiple of 4):
    x, x0, mu, z   [B, n_mels, T]   natural-log mel space
    mask           [B, 1, T]        1 = valid frame
    spk_emb        [B, n_embs]      the model's speaker embedding (`GradSVC.spk_emb` output)
    t              [B]              the family's time variable (float32 for the network)

Distillation view (`gvc distill`, `gvc.decoders.consistency`): a family that can be a teacher
also implements `distill_grid`, `perturb`, `denoised` and `drift`, which describe its
probability-flow ODE in its own time variable, so the consistency student and the distillation
objective never branch on family names. `normalise` / `denormalise` map the natural-log mel to
the family's sampler state space and back (identity except for EDM, whose sigma_data assumes a
scaled mel).

A new family is one module: subclass `DecoderFamily`, decorate it with `@register_decoder`,
register its samplers with `gvc.decoders.registry.register_sampler(..., decoder=NAME)`, and add
the module to `FAMILY_MODULES`. Its typed options (if any) are a dataclass named in
`options_type`; configs carry them in a top-level block named after the family.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from gvc.decoders.noise import NoiseFn, noise_from
from gvc.decoders.registry import SamplerSpec, get_sampler
from gvc.errors import ConfigError

FAMILY_MODULES: tuple[str, ...] = ("gvc.decoders.score", "gvc.decoders.flow", "gvc.decoders.edm",
                                   "gvc.decoders.consistency")
"""Modules whose import registers a decoder family."""

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""field(x [B, F, T], t [B]) -> [B, F, T]: the estimator with its conditioning bound
(a score for the score family, a velocity for flow)."""

RESERVED_SAMPLER_ARGS = frozenset({"field", "z", "mu", "mask", "steps", "generator", "noise"})
"""Sampler arguments every family fills in itself (never user options)."""


class DecoderFamily(nn.Module, ABC):
    """Base of the decoder families (score, flow, ...). Holds the estimator; see module doc.

    Class attributes a family sets:
        name: its `grad.decoder` value.
        default_sampler, default_steps: what `sample(sampler=None, steps=None)` uses.
        temperature_help: one line saying what `temperature` does for this family.
        options_type: dataclass of the family's config block (None: no block).
    """

    name: ClassVar[str]
    default_sampler: ClassVar[str]
    default_steps: ClassVar[int]
    temperature_help: ClassVar[str]
    options_type: ClassVar[type | None] = None

    def __init__(self, estimator: nn.Module, options: Any = None) -> None:
        super().__init__()
        self.estimator = estimator
        self.options = options

    @classmethod
    @abstractmethod
    def build(cls, estimator: nn.Module, grad: Any, options: Any) -> DecoderFamily:
        """The family from the `grad:` config block and its own options block (or None)."""

    # ------------------------------------------------------------------ the network
    def forward(self, x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, t: torch.Tensor,
                spk_emb: torch.Tensor) -> torch.Tensor:
        """The raw estimator output [B, F, T] (masked)."""
        return self.estimator(x, mask, mu, t, spk_emb)

    def field(self, mu: torch.Tensor, mask: torch.Tensor, spk_emb: torch.Tensor,
              estimator: nn.Module | None = None) -> Field:
        """The estimator with its conditioning bound: `field(x, t) -> [B, F, T]`.

        `estimator` replaces the family's own network (same architecture), e.g. the EMA target
        of a distillation run; mu is in the sampler state space (`normalise`).
        """
        net = self.estimator if estimator is None else estimator
        return lambda x, t: net(x, mask, mu, t, spk_emb)

    # ------------------------------------------------------------------ state space
    def normalise(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Natural-log mel [B, F, T] -> the sampler state space (identity by default; a family
        that rescales keeps padding ([B, 1, T] mask = 0) at 0)."""
        return mel

    def denormalise(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inverse of `normalise` on valid frames ([B, 1, T] mask; padding stays 0)."""
        return x

    # ------------------------------------------------------------------ distillation view
    def distill_grid(self, points: int) -> torch.Tensor:
        """[points] float64 times of the family's probability-flow ODE: index 0 is the data end
        t_min (where a consistency function is the identity), index -1 the noise end t_max,
        where sampling starts (`initial_state`)."""
        raise ConfigError(f"the {self.name} decoder cannot be a distillation teacher")

    def perturb(self, x0: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, t: torch.Tensor,
                noise: torch.Tensor) -> torch.Tensor:
        """A draw of x_t given clean x0 (the forward marginal), state space, masked.

        Args:
            x0, mu: [B, F, T]; mask: [B, 1, T]; t: [B] times; noise: [B, F, T] N(0, I).
        """
        raise ConfigError(f"the {self.name} decoder cannot be a distillation teacher")

    def denoised(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
                 mu: torch.Tensor) -> torch.Tensor:
        """The data estimate E[x0 | x_t] [B, F, T] from the field output `out` at (x, t [B])."""
        raise ConfigError(f"the {self.name} decoder cannot be a distillation teacher")

    def drift(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
              mu: torch.Tensor) -> torch.Tensor:
        """dx/dt of the probability-flow ODE [B, F, T] from the field output `out` at (x, t)."""
        raise ConfigError(f"the {self.name} decoder cannot be a distillation teacher")

    def ode_step(self, field: Field, x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor,
                 mu: torch.Tensor, *, heun: bool = True) -> torch.Tensor:
        """One step of the probability-flow ODE from per-item times t to t_next ([B] each).

        Euler x' = x + (t_next - t) d(x, t), with Heun's correction (the trapezoid of d at both
        ends, Karras et al. 2022 Algorithm 1) when `heun`; d is `drift` of the field output.
        Costs 1 or 2 field evaluations; `field` takes the times as given (float32).
        """
        dt = (t_next.double() - t.double()).to(device=x.device, dtype=x.dtype)[:, None, None]
        d = self.drift(field(x, t), x, t, mu)
        x_euler = x + dt * d
        if not heun:
            return x_euler
        d_next = self.drift(field(x_euler, t_next), x_euler, t_next, mu)
        return x + dt * 0.5 * (d + d_next)

    # ------------------------------------------------------------------ objective
    @abstractmethod
    def compute_loss(self, x0: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
                     spk_emb: torch.Tensor, *, generator: torch.Generator | None = None,
                     noise: NoiseFn | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
        """The family's training loss (scalar) for a batch of mel segments.

        Args:
            x0: [B, F, T] target mel; mu: [B, F, T] condition (the encoder output, perturbed by
                the caller if wanted); mask: [B, 1, T]; spk_emb: [B, n_embs].
            generator: RNG of times, noise and condition dropout; noise: overrides it for the
                noise; t: optional [B] times (default: drawn by the family's rule).
        """

    # ------------------------------------------------------------------ sampling
    @abstractmethod
    def initial_state(self, mu: torch.Tensor, mask: torch.Tensor, temperature: float,
                      noise: NoiseFn) -> torch.Tensor:
        """The sampler's starting point z [B, F, T] (its meaning of `temperature`)."""

    def sampler_context(self) -> dict[str, Any]:
        """Family-wide keyword arguments every sampler of this family receives."""
        return {}

    @classmethod
    def trained_for_guidance(cls, options: Any) -> bool:
        """Whether a model with these options learnt a null condition (classifier-free
        guidance works)."""
        return False

    @property
    def guidance(self) -> bool:
        """`trained_for_guidance` of this model's options."""
        return self.trained_for_guidance(self.options)

    def guided_field(self, mu: torch.Tensor, mask: torch.Tensor, spk_emb: torch.Tensor,
                     strength: float) -> Field:
        """The field to integrate with guidance `strength` (0 = plain conditional field)."""
        if strength != 0:
            raise ConfigError(f"the {self.name} decoder was not trained for classifier-free "
                              "guidance (no condition dropout); use cfg strength 0")
        return self.field(mu, mask, spk_emb)

    def sampler(self, name: str | None) -> SamplerSpec:
        """A sampler of this family by name (None = the family default).

        Raises:
            ConfigError: unknown name or another family's sampler.
        """
        return get_sampler(name or self.default_sampler, self.name)

    def sample(self, mu: torch.Tensor, mask: torch.Tensor, spk_emb: torch.Tensor, *,
               sampler: str | None = None, steps: int | None = None, temperature: float = 1.0,
               generator: torch.Generator | None = None, noise: NoiseFn | None = None,
               z: torch.Tensor | None = None, cfg_strength: float = 0.0,
               **options) -> torch.Tensor:
        """Decode mu into a mel [B, F, T] (float32 sampler state).

        Args:
            sampler, steps: a sampler of this family and its step count (None = defaults).
            temperature: see `temperature_help` (unused when `z` is given).
            generator / noise: the source of every random number (noise overrides generator).
            z: explicit initial state (the family's meaning and state space; e.g. noise at
                t = 0 for flow).
            cfg_strength: classifier-free guidance strength (families that support it).
            options: extra keywords of the sampler (`--sampler-opt`).
        """
        spec = self.sampler(sampler)
        draw = noise_from(generator, noise)
        if mu.dtype in (torch.float16, torch.bfloat16):  # keep the sampler state in float32
            mu, mask = mu.float(), mask.float()
        mu = self.normalise(mu, mask)
        if z is None:
            z = self.initial_state(mu, mask, temperature, draw)
        field = self.guided_field(mu, mask, spk_emb, cfg_strength)
        steps = self.default_steps if steps is None else steps
        x = spec.fn(field, z, mu, mask, steps, noise=draw, **self.sampler_context(), **options)
        return self.denormalise(x, mask)

    def check_sampler_options(self, name: str | None, options: dict[str, object],
                              steps: int = 2) -> None:
        """Try `options` on a 4-frame dummy with a zero field (no network), `steps` steps (the
        run's, for options whose validity depends on them; 2 when < 1).

        Raises:
            ConfigError: an option gvc fills itself, or one the sampler rejects.
        """
        spec = self.sampler(name)
        taken = sorted(set(options) & (RESERVED_SAMPLER_ARGS | set(self.sampler_context())))
        if taken:
            raise ConfigError(f"--sampler-opt {', '.join(taken)}: set by gvc itself; use "
                              "--steps/--seed/--temperature for those")
        z = torch.zeros(1, 4, 4)  # the field is zero, so the mel size does not matter
        try:
            spec.fn(lambda x, t: torch.zeros_like(x), z, z, torch.ones(1, 1, 4),
                    steps if steps >= 1 else 2,
                    noise=noise_from(torch.Generator()), **self.sampler_context(), **options)
        except (TypeError, ValueError) as err:
            given = ", ".join(f"{k}={v}" for k, v in options.items())
            raise ConfigError(f"--sampler-opt {given}: not valid for {spec.name} ({err})") from err


_FAMILIES: dict[str, type[DecoderFamily]] = {}
_loaded = False


def register_decoder(cls: type[DecoderFamily]) -> type[DecoderFamily]:
    """Class decorator: make `cls` buildable as `grad.decoder: <cls.name>`."""
    if cls.name in _FAMILIES and _FAMILIES[cls.name] is not cls:
        raise ValueError(f"decoder family {cls.name!r} is already registered")
    _FAMILIES[cls.name] = cls
    return cls


def load_families() -> None:
    """Import every module of `FAMILY_MODULES` (registering families and their samplers)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in FAMILY_MODULES:
            importlib.import_module(module)


def decoder_names() -> list[str]:
    """Registered family names, in registration order."""
    load_families()
    return list(_FAMILIES)


def decoder_family(name: str) -> type[DecoderFamily]:
    """The family class registered as `name`.

    Raises:
        ConfigError: no such family in this build.
    """
    load_families()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ConfigError(f"decoder {name!r} is not available in this build (decoders: "
                          f"{', '.join(_FAMILIES)})") from None
