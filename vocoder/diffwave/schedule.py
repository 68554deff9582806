"""DiffWave's DDPM: the training noise schedule, the fast 6-step schedule, the reverse process.

Notation of Kong et al. 2020 (arXiv 2009.09761), 0-based here: training steps t = 0..T-1 with
linear betas, alpha_t = 1 - beta_t, alpha_bar_t = prod_{i<=t} alpha_i, and
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps. The reverse step (Algorithm 2) is

    x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta(x_t, t)) / sqrt(alpha_t)
              + sigma_t z,   sigma_t = sqrt((1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t),

with no noise after the last step. Fast sampling (§4 and Appendix B of the paper) runs the same
update with a short inference schedule, betas (1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5), and feeds the
network the *aligned* step of each inference step s: the fractional training step whose
sqrt(alpha_bar) matches, t + (sqrt(abar_t) - sqrt(eta_s)) / (sqrt(abar_t) - sqrt(abar_{t+1}))
where abar_{t+1} <= eta_s <= abar_t and eta_s is the inference schedule's alpha_bar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gvc.errors import ConfigError
from vocoder.diffwave.config import DiffWaveConfig

FAST_BETAS = (1e-4, 1e-3, 1e-2, 5e-2, 0.2, 0.5)  # the paper's 6-step schedule for T = 50

NoiseSource = Callable[[int, torch.Tensor], torch.Tensor]
"""(draw number, tensor shaped like the state [B, L]) -> N(0, 1) noise of that shape."""
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(x_t [B, L], network step [B]) -> predicted noise [B, L]."""


@dataclass(frozen=True)
class Schedule:
    """A noise schedule, all float64 [S] tensors.

    Attributes:
        betas, alphas, alpha_bars: the schedule.
        net_steps: the step fed to the network at each entry (0..T-1 for the training schedule,
            the aligned fractional steps for a fast one).
    """

    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bars: torch.Tensor
    net_steps: torch.Tensor

    @classmethod
    def from_betas(cls, betas: torch.Tensor, net_steps: torch.Tensor | None = None) -> Schedule:
        """Derive alphas and alpha_bars; network steps 0..S-1 unless given."""
        betas = betas.double()
        alphas = 1.0 - betas
        steps = torch.arange(len(betas), dtype=torch.float64) if net_steps is None else net_steps
        return cls(betas, alphas, torch.cumprod(alphas, 0), steps.double())

    def __len__(self) -> int:
        return len(self.betas)

    def sigmas(self) -> torch.Tensor:
        """[S] reverse-process noise scales; sigma_0 = 0 (no noise after the last step)."""
        prev = torch.cat([self.alpha_bars.new_ones(1), self.alpha_bars[:-1]])
        sig = ((1.0 - prev) / (1.0 - self.alpha_bars) * self.betas).sqrt()
        sig[0] = 0.0
        return sig


def training_schedule(cfg: DiffWaveConfig) -> Schedule:
    """The T linear betas from `beta_start` to `beta_end` the model is trained with."""
    return Schedule.from_betas(
        torch.linspace(cfg.beta_start, cfg.beta_end, cfg.train_steps, dtype=torch.float64))


def aligned_steps(train: Schedule, alpha_bars: torch.Tensor) -> torch.Tensor:
    """The fractional training step matching each of `alpha_bars` in sqrt(alpha_bar).

    Raises:
        ConfigError: an alpha_bar outside the training schedule's range.
    """
    root = train.alpha_bars.sqrt()
    out = []
    for eta in alpha_bars.double():
        target = eta.sqrt()
        for t in range(len(train) - 1):
            if root[t + 1] <= target <= root[t]:
                out.append(t + (root[t] - target) / (root[t] - root[t + 1]))
                break
        else:
            raise ConfigError(f"inference alpha_bar {float(eta):.4g} lies outside the training "
                              f"schedule [{float(train.alpha_bars[-1]):.4g}, "
                              f"{float(train.alpha_bars[0]):.4g}]")
    return torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in out])


def fast_schedule(train: Schedule, betas: tuple[float, ...] = FAST_BETAS) -> Schedule:
    """The paper's fast inference schedule, each step aligned to the training steps."""
    sched = Schedule.from_betas(torch.tensor(betas, dtype=torch.float64))
    return Schedule.from_betas(sched.betas, aligned_steps(train, sched.alpha_bars))


def sampling_schedule(cfg: DiffWaveConfig, steps: int) -> Schedule:
    """`steps` = T: the full reverse process; 6: the paper's fast schedule.

    Raises:
        ConfigError: any other number.
    """
    train = training_schedule(cfg)
    if steps == cfg.train_steps:
        return train
    if steps == len(FAST_BETAS):
        return fast_schedule(train)
    raise ConfigError(f"--vocoder-steps {steps}: DiffWave samples with {len(FAST_BETAS)} (the "
                      f"paper's fast schedule) or {cfg.train_steps} (the full reverse process)")


def reverse(denoise: Denoiser, schedule: Schedule, shape: tuple[int, int],
            noise: NoiseSource, device: torch.device) -> torch.Tensor:
    """Run the reverse process from x_S ~ N(0, I) (draw 0) to x_0.

    Args:
        denoise: the noise predictor.
        schedule: training or fast schedule.
        shape: (B, L) of the waveform.
        noise: draw k is used at the k-th reverse step's sigma z (draw 0 = the start).
        device: where the state lives.

    Returns:
        [B, L] float32 waveform, clamped to [-1, 1] after every step (the range of the
        training audio; keeps an imperfect model from drifting).
    """
    x = noise(0, torch.empty(shape, device=device))
    sigmas = schedule.sigmas()
    for k, s in enumerate(range(len(schedule) - 1, -1, -1)):
        t = schedule.net_steps[s].float().expand(shape[0]).to(device)
        eps = denoise(x, t).float()
        c1 = float(1.0 / schedule.alphas[s].sqrt())
        c2 = float(schedule.betas[s] / (1.0 - schedule.alpha_bars[s]).sqrt())
        x = c1 * (x - c2 * eps)
        if s > 0:
            x = x + float(sigmas[s]) * noise(k + 1, x)
        x = x.clamp(-1.0, 1.0)
    return x


def diffusion_loss(model, audio: torch.Tensor, mel: torch.Tensor, schedule: Schedule,
                   generator: torch.Generator | None) -> torch.Tensor:
    """The DDPM training loss (§3, unweighted eps-prediction MSE).

    Args:
        model: a `DiffWave`.
        audio: [B, L] clean segments x_0; mel: [B, n_mels, L / hop] their log-mels.
        schedule: the training schedule.
        generator: source of t and eps (on `audio`'s device or CPU).

    Returns:
        scalar loss.
    """
    b = audio.shape[0]
    where = generator.device if generator is not None else audio.device
    t = torch.randint(0, len(schedule), (b,), generator=generator, device=where)
    eps = torch.randn(audio.shape, generator=generator, device=where).to(audio.device)
    abar = schedule.alpha_bars.to(audio.device)[t.to(audio.device)].float().unsqueeze(1)
    noisy = abar.sqrt() * audio + (1.0 - abar).sqrt() * eps
    pred = model(noisy, t.to(audio.device).float(), mel)
    return torch.nn.functional.mse_loss(pred.float(), eps)
