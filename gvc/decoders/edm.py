"""EDM decoder: Karras et al. 2022 ("Elucidating the Design Space of Diffusion-Based Generative
Models", arXiv 2206.00364) preconditioning, loss and samplers on the Grad-SVC U-Net.

Noise level sigma is the time variable (VE form): x_sigma = x0 + sigma (n + m) with n ~ N(0, I)
and m = 0 (`noise_mean: zero`, plain EDM) or m = mu (`noise_mean: mu`: the noise has the encoder
output as its mean, as in Grad-TTS and CoMoSpeech, arXiv 2305.06908). The network F is wrapped as
the denoiser

    D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)        (EDM Table 1)
    c_skip = sd^2 / (sigma^2 + sd^2)    c_out = sigma sd / sqrt(sigma^2 + sd^2)
    c_in = 1 / sqrt(sigma^2 + sd^2)     c_noise = ln(sigma) / 4

with sd = sigma_data; c_noise goes to the U-Net's time input (scaled by its pe_scale 1000, as
openai/consistency_models feeds 1000 c_noise). Training draws ln sigma ~ N(P_mean, P_std^2) and
minimises lambda(sigma) |D - x0|^2 with lambda = (sigma^2 + sd^2) / (sigma sd)^2.

State space: sigma_data = 0.5 presumes data of roughly unit scale, which a natural-log mel
(about -11.5 for silence to +2) is not. The family works on the normalised mel

    x = 2 (mel - mel_min) / (mel_max - mel_min) - 1,   default [-12, 2] -> [-1, 1],

(`normalise`); mu is normalised the same way before it conditions the U-Net. `mel_min` and
`mel_max` are in the `edm:` config block, which every checkpoint and model file embeds.

Sampling (`heun`, `euler`): the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma on the
Karras grid sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,
i = 0..N-1, then sigma_N = 0 (EDM Algorithm 2 without churn). Heun corrects every step except the
last (sigma_N = 0), so N steps cost 2N - 1 evaluations; Euler costs N. Sampling starts at
x = sigma_max (temperature n + m): temperature multiplies the noise, as for flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gvc.decoders.base import DecoderFamily, Field, register_decoder
from gvc.decoders.noise import NoiseFn, noise_from
from gvc.decoders.registry import register_sampler

NOISE_MEANS = ("zero", "mu")


@dataclass
class EDMOptions:
    """`edm:` config block (defaults: Karras et al. 2022 and the speech CM papers)."""

    sigma_data: float = 0.5
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    p_mean: float = -1.2  # training: ln sigma ~ N(p_mean, p_std^2)
    p_std: float = 1.2
    noise_mean: str = field(default="zero", metadata={"choices": NOISE_MEANS})
    mel_min: float = -12.0  # the log-mel range mapped to [-1, 1] (the scale sigma_data assumes)
    mel_max: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"edm: need 0 < sigma_min < sigma_max, got {self.sigma_min}, "
                             f"{self.sigma_max}")
        for name in ("sigma_data", "rho", "p_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"edm.{name} must be > 0, got {getattr(self, name)}")
        if not self.mel_min < self.mel_max:
            raise ValueError(f"edm: need mel_min < mel_max, got {self.mel_min}, {self.mel_max}")


def karras_grid(steps: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """[steps] float64 noise levels from sigma_max down to sigma_min (EDM eq. 5, no final 0)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if steps == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    i = torch.arange(steps, dtype=torch.float64) / (steps - 1)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (hi + i * (lo - hi)) ** rho


@dataclass(frozen=True)
class Precond:
    """EDM preconditioning coefficients, each [B, 1, 1] (float64 maths, cast to x's dtype)."""

    skip: torch.Tensor
    out: torch.Tensor
    inp: torch.Tensor
    noise: torch.Tensor  # [B] float32: the U-Net's time input


def precondition(sigma: torch.Tensor, sigma_data: float, like: torch.Tensor) -> Precond:
    """c_skip, c_out, c_in, c_noise (see the module docstring) for [B] noise levels."""
    s = sigma.detach().to(device="cpu", dtype=torch.float64)
    sd2 = sigma_data**2
    norm = torch.sqrt(s * s + sd2)

    def col(v: torch.Tensor) -> torch.Tensor:
        return v.to(device=like.device, dtype=like.dtype)[:, None, None]

    return Precond(skip=col(sd2 / (s * s + sd2)), out=col(s * sigma_data / norm),
                   inp=col(1.0 / norm), noise=(0.25 * torch.log(s)).float().to(like.device))


def _sigmas(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return torch.full((x.shape[0],), sigma, dtype=torch.float64, device=x.device)


@register_decoder
class EDMDecoder(DecoderFamily):
    """Karras-preconditioned denoiser on the Grad-SVC U-Net (see module doc).

    Its field is the denoiser D(x, sigma) in the normalised state space.
    """

    name = "edm"
    default_sampler = "heun"
    default_steps = 18
    temperature_help = ("edm: multiplies the start noise, x = sigma_max (N(0, I) * temperature "
                        "+ m), m = mu or 0 (edm.noise_mean)")
    options_type = EDMOptions

    def __init__(self, estimator: nn.Module, options: EDMOptions | None = None) -> None:
        super().__init__(estimator, options or EDMOptions())

    @classmethod
    def build(cls, estimator: nn.Module, grad: Any, options: Any) -> EDMDecoder:
        return cls(estimator, options)

    # ------------------------------------------------------------------ state space
    def normalise(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        o = self.options
        return (2.0 * (mel - o.mel_min) / (o.mel_max - o.mel_min) - 1.0) * mask

    def denormalise(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        o = self.options
        return ((x + 1.0) * 0.5 * (o.mel_max - o.mel_min) + o.mel_min) * mask

    def _mean(self, mu: torch.Tensor) -> torch.Tensor:
        """m of x_sigma = x0 + sigma (n + m): mu or zeros (`noise_mean`)."""
        return mu if self.options.noise_mean == "mu" else torch.zeros_like(mu)

    # ------------------------------------------------------------------ network
    def field(self, mu: torch.Tensor, mask: torch.Tensor, spk_emb: torch.Tensor,
              estimator: nn.Module | None = None) -> Field:
        """The denoiser D(x, sigma [B]) -> [B, F, T] (masked, state space)."""
        net = self.estimator if estimator is None else estimator
        sd = self.options.sigma_data

        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            c = precondition(sigma, sd, x)
            f = net(x * c.inp, mask, mu, c.noise, spk_emb).to(x.dtype)
            return (c.skip * x + c.out * f) * mask

        return denoise

    # ------------------------------------------------------------------ objective
    def sample_sigmas(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """[n] float64 training noise levels, ln sigma ~ N(P_mean, P_std^2)."""
        device = generator.device if generator is not None else "cpu"
        z = torch.randn(n, generator=generator, dtype=torch.float64, device=device)
        return torch.exp(self.options.p_mean + self.options.p_std * z)

    def compute_loss(self, x0: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
                     spk_emb: torch.Tensor, *, generator: torch.Generator | None = None,
                     noise: NoiseFn | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
        """Masked EDM loss sum(mask lambda(sigma) (D - x0)^2) / (sum(mask) F) in state space.

        x0 and mu come as natural-log mels and are normalised here; `t` are sigmas.
        """
        b = x0.shape[0]
        sigma = self.sample_sigmas(b, generator) if t is None else t.reshape(b)
        x0n, mun = self.normalise(x0, mask), self.normalise(mu, mask)
        x_t = self.perturb(x0n, mun, mask, sigma, noise_from(generator, noise)(x0))
        d = self.field(mun, mask, spk_emb)(x_t, sigma)
        s = sigma.detach().to(device="cpu", dtype=torch.float64)
        sd2 = self.options.sigma_data**2
        weight = ((s * s + sd2) / (s * s * sd2)).to(device=x0.device, dtype=x0.dtype)
        err = (d.to(x0.dtype) - x0n) ** 2 * mask
        return (weight[:, None, None] * err).sum() / (mask.sum() * x0.shape[1])

    # ------------------------------------------------------------------ sampling
    def initial_state(self, mu: torch.Tensor, mask: torch.Tensor, temperature: float,
                      noise: NoiseFn) -> torch.Tensor:
        """x = sigma_max (N(0, I) * temperature + m) on valid frames (mu in state space)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        return self.options.sigma_max * (noise(mu) * temperature + self._mean(mu)) * mask

    def sampler_context(self) -> dict[str, object]:
        o = self.options
        return {"sigma_min": o.sigma_min, "sigma_max": o.sigma_max, "rho": o.rho}

    # ------------------------------------------------------------------ distillation view
    def distill_grid(self, points: int) -> torch.Tensor:
        """The Karras grid ascending: sigma_min ... sigma_max."""
        o = self.options
        return karras_grid(points, o.sigma_min, o.sigma_max, o.rho).flip(0)

    def perturb(self, x0: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, t: torch.Tensor,
                noise: torch.Tensor) -> torch.Tensor:
        s = t.detach().to(device=x0.device, dtype=x0.dtype)[:, None, None]
        return (x0 + s * (noise + self._mean(mu))) * mask

    def denoised(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
                 mu: torch.Tensor) -> torch.Tensor:
        return out

    def drift(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
              mu: torch.Tensor) -> torch.Tensor:
        """dx/dsigma = (x - D) / sigma (EDM eq. 3 with sigma(t) = t)."""
        return (x - out) / t.detach().to(device=x.device, dtype=x.dtype)[:, None, None]


# ---------------------------------------------------------------------- samplers
def _solve(denoiser: Field, z: torch.Tensor, mask: torch.Tensor, steps: int, heun: bool, *,
           sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """EDM Algorithm 2 (no churn) from x = z at sigma_max to sigma = 0; returns x0."""
    sigmas = karras_grid(steps, sigma_min, sigma_max, rho).tolist() + [0.0]
    x = z * mask
    for s, s_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        d = (x - denoiser(x, _sigmas(x, s))) / s
        x_next = x + (s_next - s) * d
        if heun and s_next > 0:
            d_next = (x_next - denoiser(x_next, _sigmas(x, s_next))) / s_next
            x_next = x + (s_next - s) * 0.5 * (d + d_next)
        x = x_next * mask
    return x


def _register(name: str, heun: bool, description: str) -> None:
    def fn(denoiser: Field, z: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, steps: int,
           *, sigma_min: float, sigma_max: float, rho: float,
           generator: torch.Generator | None = None,
           noise: NoiseFn | None = None) -> torch.Tensor:
        return _solve(denoiser, z, mask, steps, heun, sigma_min=sigma_min,
                      sigma_max=sigma_max, rho=rho)

    fn.__name__ = f"sample_edm_{name}"
    fn.__doc__ = f"{description} (`_solve` from z at sigma_max to sigma = 0)."
    register_sampler(name, decoder="edm", stochastic=False, nfe_per_step=2 if heun else 1,
                     nfe=(lambda steps: 2 * steps - 1) if heun else None,
                     description=description)(fn)


_register("heun", True, "EDM Algorithm 2: Heun on the Karras grid, 2 NFE/step, last step 1")
_register("euler", False, "Euler on the Karras grid, 1 NFE/step (CoMoSpeech/CoMoSVC teacher)")
