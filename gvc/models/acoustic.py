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
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from gvc.decoders.base import DecoderFamily, decoder_family
from gvc.decoders.noise import NoiseFn, noise_from
from gvc.models.embeddings import f0_to_coarse, fix_len_compatibility, frame_mask
from gvc.models.encoder import TextEncoder
from gvc.models.ssim import ssim_loss
from gvc.models.unet import GradLogPEstimator2d

if TYPE_CHECKING:
    from gvc.config import Config, GradConfig

LOSS_NAMES = ("prior", "ssim", "spk", "diff")
"""`GradSVC.compute_loss` keys: prior NLL, 1 - SSIM of mu, speaker reversal, decoder objective."""


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


class GradSVC(nn.Module):
    """Grad-SVC acoustic model: V1, V2 or V3-RoPE encoder; any registered decoder family.

    Constructor arguments are the `grad:` config keys (see `gvc.config.GradConfig`) plus the
    decoder family's options (its config block, e.g. `gvc.decoders.flow.FlowOptions`).
    `self.decoder` is the family object (`gvc.decoders.base.DecoderFamily`): it holds the U-Net
    as `decoder.estimator` and owns the decoder's loss and samplers.
    """

    def __init__(self, n_mels: int = 100, n_vecs: int = 256, n_pits: int = 256,
                 n_spks: int = 256, n_embs: int = 64, n_enc_channels: int = 192,
                 filter_channels: int = 512, dec_dim: int = 96, beta_min: float = 0.05,
                 beta_max: float = 20.0, pe_scale: float = 1000, version: str = "v2",
                 decoder: str = "score", prenet_stats: str = "padded",
                 grl_channels: int = 1024, decoder_options: Any = None) -> None:
        from gvc.config import GradConfig

        super().__init__()
        grad = GradConfig(n_mels=n_mels, n_vecs=n_vecs, n_pits=n_pits, n_spks=n_spks,
                          n_embs=n_embs, n_enc_channels=n_enc_channels,
                          filter_channels=filter_channels, dec_dim=dec_dim, beta_min=beta_min,
                          beta_max=beta_max, pe_scale=pe_scale, version=version,
                          decoder=decoder, prenet_stats=prenet_stats, grl_channels=grl_channels)
        self.n_mels, self.version = n_mels, version
        self.pit_emb = nn.Embedding(n_pits, n_embs)
        self.spk_emb = nn.Linear(n_spks, n_embs)
        self.encoder = TextEncoder(n_vecs, n_mels, n_embs, n_enc_channels, filter_channels,
                                   n_spks, version, prenet_stats == "masked", grl_channels)
        estimator = GradLogPEstimator2d(dec_dim, emb_dim=n_embs, n_mels=n_mels,
                                        pe_scale=pe_scale)
        self.decoder: DecoderFamily = decoder_family(decoder).build(estimator, grad,
                                                                    decoder_options)

    @classmethod
    def from_config(cls, cfg: Config) -> GradSVC:
        """Build from a whole config (its `grad:` block and decoder options block)."""
        grad: GradConfig = cfg.grad
        keys = ("n_mels", "n_vecs", "n_pits", "n_spks", "n_embs", "n_enc_channels",
                "filter_channels", "dec_dim", "beta_min", "beta_max", "pe_scale", "version",
                "decoder", "prenet_stats", "grl_channels")
        return cls(**{k: getattr(grad, k) for k in keys}, decoder_options=cfg.decoder)

    @property
    def decoder_kind(self) -> str:
        """The decoder family's name (`grad.decoder`)."""
        return self.decoder.name

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
    def sample(self, mu: torch.Tensor, mask: torch.Tensor, spk_emb: torch.Tensor, *,
               sampler: str | None = None, steps: int | None = None,
               temperature: float = 1.015, generator: torch.Generator | None = None,
               noise: NoiseFn | None = None, z: torch.Tensor | None = None,
               cfg_strength: float = 0.0, **options) -> torch.Tensor:
        """Decode mu into a mel [B, n_mels, T] (T a multiple of 4) with the decoder family.

        Args:
            mu, mask, spk_emb: from `encode_full`.
            sampler: a sampler of this model's family (None = the family default: ml for score,
                euler for flow); steps: its steps (None = the family default).
            temperature: the family's meaning (`decoder.temperature_help`): score divides the
                start noise, flow multiplies it.
            generator / noise: seeds the initial noise and any sampler noise.
            z: explicit initial state [B, n_mels, T] in the family's meaning (score: x_T with
                mu added; flow: the noise at t = 0); then temperature is unused.
            cfg_strength: classifier-free guidance (models trained with condition dropout).
            options: extra sampler keywords (e.g. `grid` for DPM-Solver or the flow solvers).
        """
        return self.decoder.sample(mu, mask, spk_emb, sampler=sampler, steps=steps,
                                   temperature=temperature, generator=generator, noise=noise,
                                   z=z, cfg_strength=cfg_strength, **options)

    @torch.no_grad()
    def infer(self, vec: torch.Tensor, pit: torch.Tensor, spk: torch.Tensor,
              lengths: torch.Tensor | None = None, *, sampler: str | None = None,
              steps: int | None = None, temperature: float = 1.015,
              generator: torch.Generator | None = None, noise: NoiseFn | None = None,
              **options) -> AcousticOutput:
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
                     generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Grad-SVC training losses with correct masking, as scalars named by `LOSS_NAMES`.

        The total is their sum (all weights 1, like Grad-SVC). `diff` is the decoder family's
        objective (score matching, flow matching, ...) on a random segment.

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
            diff = self.decoder.compute_loss(mel_s, mu_s, mask_s, state.spk_emb,
                                             generator=generator)
        return {"prior": prior, "ssim": ssim, "spk": spk_loss, "diff": diff}

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
