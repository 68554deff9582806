"""Grad-TTS / Grad-SVC score decoder: forward process, training loss, terminal sample.

The network s_theta(x_t, t) estimates the score grad log p_t(x_t) of the mu-shifted VP-SDE
(`schedule.py`). Conventions: x, mu, mel are [B, n_mels, T]; mask is [B, 1, T]; t is [B].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gvc.decoders import schedule as sch
from gvc.decoders.base import DecoderFamily, register_decoder
from gvc.decoders.noise import NoiseFn, noise_from

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""score(x [B, F, T], t [B] float32) -> [B, F, T] estimate of grad log p_t(x), masked."""

T_OFFSET = 1e-5  # training times are clamped to [1e-5, 1 - 1e-5] (sigma_t > 0)
T_DISTILL = 1e-3  # data end of the distillation grid (sigma_t = 0.0077; lambda finite)


def _per_item(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B] float64 coefficient -> [B, 1, 1] in like's dtype/device."""
    return v.to(device=like.device, dtype=like.dtype)[:, None, None]


def diffuse(x0: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, t: torch.Tensor,
            schedule: sch.VPSchedule, eps: torch.Tensor) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x_0) = N(mu + alpha_t (x0 - mu), sigma_t^2 I) with given noise.

    Args:
        x0: [B, F, T] clean mel; mu: [B, F, T] prior mean; mask: [B, 1, T];
        t: [B] times in (0, 1]; eps: [B, F, T] standard-normal noise.

    Returns:
        x_t [B, F, T], masked.
    """
    a = _per_item(sch.alpha(schedule, t.detach().cpu()), x0)
    sd = _per_item(sch.sigma(schedule, t.detach().cpu()), x0)
    return (x0 * a + mu * (1.0 - a) + eps * sd) * mask


@dataclass
class ScoreLoss:
    """Result of `score_loss`: the scalar loss and the tensors it came from."""

    loss: torch.Tensor  # scalar
    x_t: torch.Tensor  # [B, F, T]
    t: torch.Tensor  # [B]


def score_loss(score: ScoreFn, x0: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
               schedule: sch.VPSchedule, generator: torch.Generator | None = None,
               t: torch.Tensor | None = None, noise: NoiseFn | None = None) -> ScoreLoss:
    """Grad-TTS denoising score-matching loss (weighting lambda_t = sigma_t^2).

    L = sum(mask * (sigma_t * s_theta(x_t, t) + eps)^2) / (sum(mask) * F), i.e. eps-prediction
    MSE with eps_hat = -sigma_t * s_theta, over valid frames only.

    Args:
        score: the estimator with its conditioning bound (see `ScoreFn`).
        x0, mu, mask: target mel, prior mean and mask of the segment.
        schedule: the VP schedule (config beta_min/beta_max).
        generator: RNG for t and eps.
        t: optional [B] times; default U(0, 1) per item clamped to [1e-5, 1 - 1e-5].
        noise: optional noise source overriding `generator` for eps.
    """
    draw = noise_from(generator, noise)
    if t is None:
        u = torch.rand(x0.shape[0], generator=generator, dtype=torch.float64,
                       device=generator.device if generator is not None else "cpu")
        t = u.clamp(T_OFFSET, 1.0 - T_OFFSET).to(x0.device)
    eps = draw(x0) * mask
    x_t = diffuse(x0, mu, mask, t, schedule, eps)
    sd = _per_item(sch.sigma(schedule, t.detach().cpu().double()), x0)
    s = score(x_t, t.to(torch.float32)).to(x0.dtype)  # network may run under autocast
    loss = ((s * sd + eps) ** 2 * mask).sum() / (mask.sum() * x0.shape[1])
    return ScoreLoss(loss=loss, x_t=x_t, t=t)


def prior_sample(mu: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0,
                 generator: torch.Generator | None = None,
                 noise: NoiseFn | None = None) -> torch.Tensor:
    """Terminal sample x_T = (mu + N(0, I) / temperature) * mask (Grad-SVC V1/V2 meaning).

    `temperature` > 1 shrinks the starting noise (1.015 -> std 0.985); it divides, unlike the
    flow decoders (V3), whose temperature multiplies.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return (mu + noise_from(generator, noise)(mu) / temperature) * mask


@register_decoder
class ScoreDecoder(DecoderFamily):
    """Grad-TTS / Grad-SVC V1-V2 score decoder on the mu-shifted VP-SDE (`schedule.py`).

    Training: `score_loss` (sigma_t^2-weighted denoising score matching). Sampling starts from
    x_T = mu + N(0, I) / temperature and runs a score sampler (`samplers.py`) from t = 1 to 0.
    """

    name = "score"
    default_sampler = "ml"
    default_steps = 20
    temperature_help = ("score: divides the start noise, x_T = mu + N(0, I) / temperature "
                        "(Grad-SVC V1/V2; 1.015 = std 0.985)")

    def __init__(self, estimator: torch.nn.Module, schedule: sch.VPSchedule) -> None:
        super().__init__(estimator)
        self.schedule = schedule

    @classmethod
    def build(cls, estimator: torch.nn.Module, grad, options) -> ScoreDecoder:
        return cls(estimator, sch.VPSchedule(grad.beta_min, grad.beta_max))

    def compute_loss(self, x0: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor,
                     spk_emb: torch.Tensor, *, generator: torch.Generator | None = None,
                     noise: NoiseFn | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
        return score_loss(self.field(mu, mask, spk_emb), x0, mu, mask, self.schedule,
                          generator, t=t, noise=noise).loss

    def initial_state(self, mu: torch.Tensor, mask: torch.Tensor, temperature: float,
                      noise: NoiseFn) -> torch.Tensor:
        return prior_sample(mu, mask, temperature, noise=noise)

    def sampler_context(self) -> dict[str, object]:
        return {"schedule": self.schedule}

    # ------------------------------------------------------------------ distillation view
    def distill_grid(self, points: int) -> torch.Tensor:
        """Uniform in half log-SNR lambda from t = 1e-3 up to t = 1 (DPM-Solver's spacing)."""
        return sch.logsnr_grid(self.schedule, points - 1, 1.0, T_DISTILL).flip(0)

    def perturb(self, x0: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, t: torch.Tensor,
                noise: torch.Tensor) -> torch.Tensor:
        return diffuse(x0, mu, mask, t, self.schedule, noise)

    def denoised(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
                 mu: torch.Tensor) -> torch.Tensor:
        """Tweedie: x0 = mu + (y + sigma_t^2 s) / alpha_t with y = x - mu and s the score."""
        t64 = t.detach().cpu().double()
        a = _per_item(sch.alpha(self.schedule, t64), x)
        var = _per_item(-torch.expm1(-sch.cum_beta(self.schedule, t64)), x)
        return mu + (x - mu + var * out) / a

    def drift(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
              mu: torch.Tensor) -> torch.Tensor:
        """Probability-flow ODE of the mu-shifted VP-SDE: dx/dt = beta(t) (mu - x - s) / 2."""
        b = _per_item(sch.beta(self.schedule, t.detach().cpu().double()), x)
        return 0.5 * b * (mu - x - out)


from gvc.decoders import samplers as _samplers  # noqa: E402,F401  (registers the score samplers)
