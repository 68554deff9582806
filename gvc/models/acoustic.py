"""The Grad-SVC acoustic model: embeddings + content encoder + U-Net decoder.

Parameter names equal Grad-SVC's `GradTTS` (`pit_emb`, `spk_emb`, `encoder.*`,
`decoder.estimator.*`), so published `gvc.pth` state dicts load strictly.

Shapes and units (100 frames/s):
    vec     [B, T, n_vecs]  HuBERT-Soft units repeated x2 to the mel rate
    pit     [B, T]          F0 in Hz, 0 = unvoiced
    spk     [B, n_spks]     speaker d-vector
    lengths [B]             valid frames per item (int)
    mel, mu [B, n_mels, T]  natural-log mel (32 kHz, hop 320); mask [B, 1, T]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from gvc.decoders.noise import NoiseFn, noise_from
from gvc.decoders.registry import get_sampler
from gvc.decoders.schedule import VPSchedule
from gvc.decoders.score import ScoreFn, prior_sample, score_loss
from gvc.models.embeddings import f0_to_coarse, fix_len_compatibility, frame_mask
from gvc.models.encoder import TextEncoder
from gvc.models.ssim import ssim_loss
from gvc.models.unet import GradLogPEstimator2d

if TYPE_CHECKING:
    from gvc.config import GradConfig


@dataclass
class EncoderState:
    """Everything the encoder computes: mu, mask, the 64-d speaker embedding, prenet output."""

    mu: torch.Tensor  # [B, n_mels, T]
    mask: torch.Tensor  # [B, 1, T]
    spk_emb: torch.Tensor  # [B, n_embs]
    prenet: torch.Tensor  # [B, n_enc_channels, T]


@dataclass
class AcousticOutput:
    """Result of `GradSVC.infer`: decoder mel, encoder mean and mask, all trimmed to T."""

    mel: torch.Tensor  # [B, n_mels, T]
    mu: torch.Tensor  # [B, n_mels, T]
    mask: torch.Tensor  # [B, 1, T]


@dataclass
class AcousticLosses:
    """Training losses (scalars); `total` weights them all 1, like Grad-SVC."""

    prior: torch.Tensor  # Gaussian NLL of mel under N(mu, I), valid frames only
    ssim: torch.Tensor  # 1 - SSIM(mu, mel), valid frames only (Grad-SVC's "mel_loss")
    spk: torch.Tensor  # mean(1 - cos(d-vector, GRL prediction))
    diff: torch.Tensor  # decoder loss on a segment; 0 when skipped (fast epochs)

    @property
    def total(self) -> torch.Tensor:
        """prior + ssim + spk + diff."""
        return self.prior + self.ssim + self.spk + self.diff


class Decoder(nn.Module):
    """Holds the U-Net as `estimator` (keys `decoder.estimator.*`)."""

    def __init__(self, n_mels: int, dim: int, emb_dim: int, pe_scale: float) -> None:
        super().__init__()
        self.estimator = GradLogPEstimator2d(dim, emb_dim=emb_dim, n_mels=n_mels,
                                             pe_scale=pe_scale)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, t: torch.Tensor,
                spk: torch.Tensor) -> torch.Tensor:
        """See `GradLogPEstimator2d.forward`."""
        return self.estimator(x, mask, mu, t, spk)


class GradSVC(nn.Module):
    """Grad-SVC acoustic model (architectures V1, V2, V3-RoPE encoders; score decoder).

    Constructor arguments are the `grad:` config keys (see `gvc.config.GradConfig`).
    """

    def __init__(self, n_mels: int = 100, n_vecs: int = 256, n_pits: int = 256,
                 n_spks: int = 256, n_embs: int = 64, n_enc_channels: int = 192,
                 filter_channels: int = 512, dec_dim: int = 96, beta_min: float = 0.05,
                 beta_max: float = 20.0, pe_scale: float = 1000, version: str = "v2",
                 decoder: str = "score", prenet_stats: str = "padded",
                 grl_channels: int = 1024) -> None:
        super().__init__()
        self.n_mels, self.decoder_kind, self.version = n_mels, decoder, version
        self.schedule = VPSchedule(beta_min, beta_max)
        self.pit_emb = nn.Embedding(n_pits, n_embs)
        self.spk_emb = nn.Linear(n_spks, n_embs)
        self.encoder = TextEncoder(n_vecs, n_mels, n_embs, n_enc_channels, filter_channels,
                                   n_spks, version, prenet_stats == "masked", grl_channels)
        self.decoder = Decoder(n_mels, dec_dim, n_embs, pe_scale)

    @classmethod
    def from_config(cls, grad: GradConfig) -> GradSVC:
        """Build from a `grad:` config block."""
        keys = ("n_mels", "n_vecs", "n_pits", "n_spks", "n_embs", "n_enc_channels",
                "filter_channels", "dec_dim", "beta_min", "beta_max", "pe_scale", "version",
                "decoder", "prenet_stats", "grl_channels")
        return cls(**{k: getattr(grad, k) for k in keys})

    # ----------------------------------------------------------------- encoder
    def encode_full(self, vec: torch.Tensor, pit: torch.Tensor, spk: torch.Tensor,
                    lengths: torch.Tensor) -> EncoderState:
        """Run embeddings and encoder; see module docstring for shapes."""
        mask = frame_mask(lengths.to(vec.device), vec.shape[1], vec.dtype)
        pit_emb = self.pit_emb(f0_to_coarse(pit)).transpose(1, 2)  # [B, n_embs, T]
        spk_emb = self.spk_emb(spk)
        mu, prenet = self.encoder(vec.transpose(1, 2), pit_emb, spk_emb, mask)
        return EncoderState(mu=mu, mask=mask, spk_emb=spk_emb, prenet=prenet)

    def encode(self, vec: torch.Tensor, pit: torch.Tensor, spk: torch.Tensor,
               lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior mean and mask: (mu [B, n_mels, T], mask [B, 1, T])."""
        state = self.encode_full(vec, pit, spk, lengths)
        return state.mu, state.mask

    # ----------------------------------------------------------------- decoder
    def score_fn(self, mu: torch.Tensor, mask: torch.Tensor, spk_emb: torch.Tensor) -> ScoreFn:
        """The estimator with its conditioning bound: `score(x, t) -> [B, n_mels, T]`."""
        return lambda x, t: self.decoder(x, mask, mu, t, spk_emb)

    def sample(self, mu: torch.Tensor, mask: torch.Tensor, spk_emb: torch.Tensor, *,
               sampler: str = "ml", steps: int = 20, temperature: float = 1.015,
               generator: torch.Generator | None = None, noise: NoiseFn | None = None,
               z: torch.Tensor | None = None, **options) -> torch.Tensor:
        """Decode mu into a mel (T must be a multiple of 4).

        Args:
            mu, mask, spk_emb: from `encode_full`.
            sampler: a registered sampler name of this decoder family (see `sampler_names`).
            steps: sampler steps (= network evaluations for all score samplers).
            temperature: x_T = mu + N(0, I) / temperature (score decoder meaning).
            generator: seeds the initial noise and any sampler noise.
            noise: optional noise source overriding `generator`.
            z: optional explicit initial state [B, n_mels, T] (then temperature is unused).
            options: extra sampler keywords (e.g. `t_end`, `lower_order_final` for DPM-Solver).
        """
        spec = get_sampler(sampler, self.decoder_kind)
        draw = noise_from(generator, noise)
        if mu.dtype in (torch.float16, torch.bfloat16):  # keep the sampler state in float32
            mu, mask = mu.float(), mask.float()
        if z is None:
            z = prior_sample(mu, mask, temperature, noise=draw)
        return spec.fn(self.score_fn(mu, mask, spk_emb), z, mu, mask, steps,
                       schedule=self.schedule, noise=draw, **options)

    @torch.no_grad()
    def infer(self, vec: torch.Tensor, pit: torch.Tensor, spk: torch.Tensor,
              lengths: torch.Tensor | None = None, *, sampler: str = "ml", steps: int = 20,
              temperature: float = 1.015, generator: torch.Generator | None = None,
              noise: NoiseFn | None = None, **options) -> AcousticOutput:
        """Convert features to a mel: encode, then `sample`.

        T need not be a multiple of 4: inputs are zero-padded (pitch 0 = unvoiced, as Grad-SVC's
        inference pads) and outputs trimmed back to T. `lengths` defaults to T for every item.
        """
        b, t = vec.shape[:2]
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=vec.device)
        pad = fix_len_compatibility(t) - t
        if pad:
            vec = F.pad(vec, (0, 0, 0, pad))
            pit = F.pad(pit, (0, pad))
        state = self.encode_full(vec, pit, spk, lengths)
        mel = self.sample(state.mu, state.mask, state.spk_emb, sampler=sampler, steps=steps,
                          temperature=temperature, generator=generator, noise=noise, **options)
        return AcousticOutput(mel=mel[..., :t], mu=state.mu[..., :t], mask=state.mask[..., :t])

    forward = infer

    # ----------------------------------------------------------------- training
    def compute_loss(self, vec: torch.Tensor, pit: torch.Tensor, spk: torch.Tensor,
                     mel: torch.Tensor, lengths: torch.Tensor, *, segment_frames: int = 200,
                     skip_diff: bool = False, mu_noise_std: float = 1.0,
                     generator: torch.Generator | None = None) -> AcousticLosses:
        """Grad-SVC training losses with correct masking.

        Args:
            vec, pit, spk, lengths: model inputs (vec already perturbed by the data loader if
                the V2 perturbation is wanted); mel: [B, n_mels, T] target.
            segment_frames: decoder segment (multiple of 4); items shorter than it are padded
                and masked instead of crashing (Grad-SVC issue #5).
            skip_diff: fast-epoch mode: no decoder call, `diff` = 0.
            mu_noise_std: V2 perturbation, decoder sees mu + N(0, std^2) (0 = clean mu, V1).
            generator: RNG for segment offsets, diffusion times and noise.
        """
        state = self.encode_full(vec, pit, spk, lengths)
        mu, mask = state.mu.float(), state.mask.float()  # loss maths in float32 under autocast
        mel = mel.float()
        n_valid = mask.sum() * self.n_mels
        prior = (0.5 * ((mel - mu) ** 2 + math.log(2 * math.pi)) * mask).sum() / n_valid
        ssim = ssim_loss(mu, mel * mask, mask)
        spk_pred = self.encoder.speaker(state.prenet, state.mask).float()
        spk_loss = (1.0 - F.cosine_similarity(spk.float(), spk_pred, dim=-1)).mean()
        if skip_diff:
            diff = mu.new_zeros(())
        else:
            mel_s, mu_s, mask_s = random_segments([mel, mu, mask], lengths, segment_frames,
                                                  generator)
            if mu_noise_std > 0:
                mu_s = (mu_s + mu_noise_std * noise_from(generator)(mu_s)) * mask_s
            score = self.score_fn(mu_s, mask_s, state.spk_emb)
            diff = score_loss(score, mel_s, mu_s, mask_s, self.schedule, generator).loss
        return AcousticLosses(prior=prior, ssim=ssim, spk=spk_loss, diff=diff)

    def freeze_for_finetune(self) -> list[str]:
        """Freeze `pit_emb`, `spk_emb`, `encoder.prenet`, `encoder.speaker` (Grad-SVC V2
        `fine_tune()`); returns the frozen module names."""
        names = ["pit_emb", "spk_emb", "encoder.prenet", "encoder.speaker"]
        for name in names:
            self.get_submodule(name).requires_grad_(False)
        return names


def random_segments(tensors: list[torch.Tensor], lengths: torch.Tensor, frames: int,
                    generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Cut the same random `frames`-long window from each [B, C, T] tensor, per item.

    Offsets are uniform in [0, max(length - frames, 0)]; tensors shorter than `frames` are
    zero-padded on the right first, so short items give a partly masked segment.
    """
    t = tensors[0].shape[-1]
    if t < frames:
        tensors = [F.pad(x, (0, frames - t)) for x in tensors]
    device = tensors[0].device
    span = (lengths.to("cpu") - frames).clamp(min=0) + 1
    u = torch.rand(span.shape[0], generator=generator, dtype=torch.float64,
                   device=generator.device if generator is not None else "cpu")
    offsets = (u.cpu() * span).long().clamp(max=span - 1).to(device)
    index = offsets[:, None] + torch.arange(frames, device=device)  # [B, frames]
    return [torch.gather(x, -1, index[:, None, :].expand(-1, x.shape[1], -1)) for x in tensors]
