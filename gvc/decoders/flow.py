"""Flow-matching decoder: Grad-SVC V3 conditional flow matching and rectified flow with CFG.

Time runs from t = 0 (noise z ~ N(0, I)) to t = 1 (the mel x1). The estimator predicts the
velocity of the straight path (Lipman et al. 2023, "Flow Matching for Generative Modeling",
arXiv 2210.02747, with Matcha-TTS's sigma_min):

    x_t = (1 - (1 - sigma_min) t) z + t x1,      target u = x1 - (1 - sigma_min) z.

sigma_min = 1e-4 is Grad-SVC V3 / Matcha-TTS; sigma_min = 0 is rectified flow (Liu et al. 2022,
arXiv 2209.03003). mu conditions the estimator (its first input channel) and is not the mean of
the noise. Sampling integrates dx/dt = v(x, t) from z = N(0, I) * temperature (the temperature
multiplies, as in Grad-SVC V3, unlike the score decoder) with a solver of `flow_samplers.py`.

Training options (`flow:` config block, `FlowOptions`):

* time sampling `uniform` (V3) or `lognorm`: logit(t) ~ N(time_mean, time_std^2), stratified over
  the batch (Esser et al. 2024, arXiv 2403.03206; RIFT-SVC's default);
* condition dropout for classifier-free guidance (Ho & Salimans 2022, arXiv 2207.12598): each
  item's speaker embedding is replaced by zeros with probability `drop_spk`, and its
  content/pitch condition mu by zeros with probability `drop_content`, independently (RIFT-SVC
  keeps the speaker and content guidance apart the same way). Zero vectors are the null
  condition, so no weights are added and every V3 file keeps its exact keys.

Guidance at inference with strength w: v = v_cond + w (v_cond - v_null), where the null branch
drops every condition the model was trained to drop; on accelerators both branches run as one
doubled batch, on a CPU as two passes (cheaper there, see `FlowDecoder.guided_field`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from gvc.decoders.base import DecoderFamily, Field, register_decoder
from gvc.decoders.noise import NoiseFn, noise_from

TIME_SAMPLING = ("uniform", "lognorm")


@dataclass
class FlowOptions:
    """`flow:` config block (defaults: Grad-SVC V3-CFM)."""

    sigma_min: float = 1e-4  # width of the path at the data end; 0 = rectified flow
    time_sampling: str = field(default="uniform", metadata={"choices": TIME_SAMPLING})
    time_mean: float = 0.0  # lognorm: mean of logit(t)
    time_std: float = 1.0  # lognorm: std of logit(t)
    drop_spk: float = 0.0  # training: P(speaker embedding -> null), for guidance
    drop_content: float = 0.0  # training: P(content/pitch condition mu -> null), for guidance

    def __post_init__(self) -> None:
        if not 0.0 <= self.sigma_min < 0.1:
            raise ValueError(f"flow.sigma_min must be in [0, 0.1), got {self.sigma_min}")
        if not self.time_std > 0:
            raise ValueError(f"flow.time_std must be > 0, got {self.time_std}")
        for name in ("drop_spk", "drop_content"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"flow.{name} must be in [0, 1), got {getattr(self, name)}")


def sample_times(n: int, options: FlowOptions, generator: torch.Generator | None) -> torch.Tensor:
    """[n] float64 training times in [0, 1] by the configured rule (on the generator's device)."""
    device = generator.device if generator is not None else "cpu"
    u = torch.rand(n, generator=generator, dtype=torch.float64, device=device)
    if options.time_sampling == "uniform":
        return u
    # stratified: one draw in each of n equal slices of (0, 1), then the normal quantile
    u = ((torch.arange(n, dtype=torch.float64, device=device) + u) / n).clamp(1e-7, 1 - 1e-7)
    z = math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)
    return torch.sigmoid(options.time_mean + options.time_std * z)


@register_decoder
class FlowDecoder(DecoderFamily):
    """Conditional flow matching / rectified flow on the Grad-SVC U-Net (see module doc)."""

    name = "flow"
    default_sampler = "euler"
    default_steps = 10
    temperature_help = ("flow: multiplies the start noise, x_0 = N(0, I) * temperature "
                        "(Grad-SVC V3; 1.015 = std 1.015)")
    options_type = FlowOptions

    def __init__(self, estimator: torch.nn.Module, options: FlowOptions | None = None) -> None:
        super().__init__(estimator, options or FlowOptions())

    @classmethod
    def build(cls, estimator: torch.nn.Module, grad: Any, options: Any) -> FlowDecoder:
        return cls(estimator, options)

    # ------------------------------------------------------------------ objective
    def path(self, x1: torch.Tensor, z: torch.Tensor,
             t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_t, target velocity u) for [B] times t."""
        s = self.options.sigma_min
        tt = t.to(x1.dtype)[:, None, None]
        return (1.0 - (1.0 - s) * tt) * z + tt * x1, x1 - (1.0 - s) * z

    def compute_loss(self, x0: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
                     spk_emb: torch.Tensor, *, generator: torch.Generator | None = None,
                     noise: NoiseFn | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
        """Masked velocity MSE: sum(mask (v(x_t, t) - u)^2) / (sum(mask) F); x0 is the mel x1."""
        b = x0.shape[0]
        if t is None:
            t = sample_times(b, self.options, generator)
        t = t.reshape(b).to(x0.device)
        z = noise_from(generator, noise)(x0)
        x_t, target = self.path(x0, z, t)
        mu, spk_emb = self._drop_conditions(mu, spk_emb, generator)
        v = self(x_t * mask, mask, mu, t.float(), spk_emb).to(x0.dtype)
        return ((v - target) ** 2 * mask).sum() / (mask.sum() * x0.shape[1])

    def _drop_conditions(self, mu: torch.Tensor, spk_emb: torch.Tensor,
                         generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace conditions by the null (zeros) per item with the configured probabilities."""
        o = self.options
        if not self.guidance:
            return mu, spk_emb
        device = generator.device if generator is not None else "cpu"
        u = torch.rand(2, mu.shape[0], generator=generator, device=device).to(mu.device)
        keep_spk = (u[0] >= o.drop_spk).to(spk_emb.dtype)[:, None]
        keep_mu = (u[1] >= o.drop_content).to(mu.dtype)[:, None, None]
        return mu * keep_mu, spk_emb * keep_spk

    # ------------------------------------------------------------------ sampling
    def initial_state(self, mu: torch.Tensor, mask: torch.Tensor, temperature: float,
                      noise: NoiseFn) -> torch.Tensor:
        """z = N(0, I) * temperature on valid frames (padding starts at 0)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        return noise(mu) * temperature * mask

    def sampler_context(self) -> dict[str, object]:
        return {"sigma_min": self.options.sigma_min}

    # ------------------------------------------------------------------ distillation view
    def distill_grid(self, points: int) -> torch.Tensor:
        """Uniform in t from 1 (data, t_min) down to 0 (noise, where sampling starts)."""
        return torch.linspace(1.0, 0.0, points, dtype=torch.float64)

    def perturb(self, x0: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, t: torch.Tensor,
                noise: torch.Tensor) -> torch.Tensor:
        return self.path(x0, noise, t)[0] * mask

    def denoised(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
                 mu: torch.Tensor) -> torch.Tensor:
        """x1 = (1 - sigma_min) x_t + (1 - (1 - sigma_min) t) v (solve `path` for x1 given v)."""
        k = 1.0 - self.options.sigma_min
        tt = t.to(x.dtype)[:, None, None]
        return k * x + (1.0 - k * tt) * out

    def drift(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
              mu: torch.Tensor) -> torch.Tensor:
        return out

    @classmethod
    def trained_for_guidance(cls, options: FlowOptions | None) -> bool:
        return options is not None and (options.drop_spk > 0 or options.drop_content > 0)

    def guided_field(self, mu: torch.Tensor, mask: torch.Tensor, spk_emb: torch.Tensor,
                     strength: float, *, batched: bool | None = None) -> Field:
        """See `DecoderFamily.guided_field`; `batched`: both branches as one doubled batch
        (None = on accelerators only: a CPU is busy with one pass already, and its 3x3
        convolutions cost more per frame once the activations outgrow the caches, so there
        a doubled batch measured 2.0-2.4x one pass and two passes 2.0x; BENCHMARKS.md)."""
        if strength == 0:
            return self.field(mu, mask, spk_emb)
        if not self.guidance:
            return super().guided_field(mu, mask, spk_emb, strength)
        if batched is None:
            batched = mu.device.type != "cpu"
        mu_null = torch.zeros_like(mu) if self.options.drop_content > 0 else mu
        spk_null = torch.zeros_like(spk_emb) if self.options.drop_spk > 0 else spk_emb
        if batched:  # the doubled conditions are built once, not at every step
            mu2, mask2 = torch.cat([mu, mu_null]), torch.cat([mask, mask])
            spk2 = torch.cat([spk_emb, spk_null])

        def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if batched:
                v_cond, v_null = self(torch.cat([x, x]), mask2, mu2, torch.cat([t, t]),
                                      spk2).chunk(2)
            else:
                v_cond = self(x, mask, mu, t, spk_emb)
                v_null = self(x, mask, mu_null, t, spk_null)
            return v_cond + strength * (v_cond - v_null)

        return guided


from gvc.decoders import flow_samplers as _samplers  # noqa: E402,F401  (registers the solvers)
