"""The HuBERT-Soft network: `transformers.HubertModel` (bshall's architecture) plus `proj`.

bshall's model (`hubert/model.py` in bshall/hubert, vendored by Grad-SVC) and HF's
`HubertModel` with `feat_extract_norm="group"` and `do_stable_layer_norm=False` compute the same
function in eval mode; the correspondence, checked against the reference fixture, is:

* feature extractor: conv0 (1→512, k10 s5, no bias) → GroupNorm(512, 512, eps 1e-5) → GELU
  (exact erf), then conv1–6 (k3,3,3,3,2,2, s2, no bias) each → GELU; total stride 320;
* feature projection: LayerNorm(512) → Linear(512→768) → dropout (identity in eval);
* encoder: x + GELU(pos_conv(x)[..., :-1]) (Conv1d k128, pad 64, groups 16, weight norm over
  dim 2) → LayerNorm(768) → dropout → N post-norm layers, each
  x = LN1(x + MHA(x)); x = LN2(x + W2·GELU(W1·x)), 12 heads of 64 with scale 64^-0.5;
* `proj`: Linear(768→256).

HF's SpecAugment masking is disabled (`mask_time_prob=0`) and no attention mask is ever used
(bshall's soft model has none). The training-only tensors `masked_spec_embed` and
`label_embedding_weight` are optional buffers kept only for a faithful round trip.

`forward_frames()` also accepts externally computed GroupNorm statistics, so that windows of a
long file can be normalised with the statistics of the whole file (see `hubert.windows`).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import HubertConfig, HubertModel

#: Samples of zero padding added on each side before encoding: (400 − 320) // 2.
PAD = 40
HOP = 320
GN_EPS = 1e-5


def hubert_soft_config(num_layers: int = 12) -> HubertConfig:
    """The `HubertConfig` of bshall's HuBERT-Soft with `num_layers` transformer layers."""
    config = HubertConfig(
        hidden_size=768,
        num_hidden_layers=num_layers,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        feat_extract_activation="gelu",
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        conv_dim=(512,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=False,
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
        conv_pos_batch_norm=False,
        feat_proj_layer_norm=True,
        layer_norm_eps=1e-5,
        hidden_dropout=0.1,
        attention_dropout=0.1,
        activation_dropout=0.1,
        feat_proj_dropout=0.1,
        layerdrop=0.0,
        mask_time_prob=0.0,
        mask_feature_prob=0.0,
        apply_spec_augment=False,
    )
    config._attn_implementation = "sdpa"
    return config


class HubertSoftNet(nn.Module):
    """HuBERT-Soft: 16 kHz waveform → soft speech units [B, T, 256] at 50 frames/s.

    Args:
        num_layers: transformer layers (12 in the published checkpoint).
    """

    def __init__(self, num_layers: int = 12) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.hubert = HubertModel(hubert_soft_config(num_layers))
        self.proj = nn.Linear(768, 256)
        self.register_buffer("masked_spec_embed", None)
        self.register_buffer("label_embedding_weight", None)
        self.eval()

    def set_training_only(self, masked_spec_embed: torch.Tensor | None, label_embedding: torch.Tensor | None) -> None:
        """Store (or clear) the training-only tensors so a written checkpoint carries them."""
        self.masked_spec_embed = None if masked_spec_embed is None else masked_spec_embed.detach().float()
        self.label_embedding_weight = None if label_embedding is None else label_embedding.detach().float()

    def conv0(self, padded: torch.Tensor) -> torch.Tensor:
        """First convolution only (before GroupNorm): [B, S] → [B, 512, floor((S−10)/5)+1]."""
        return self.hubert.feature_extractor.conv_layers[0].conv(padded[:, None])

    def forward_frames(
        self,
        padded: torch.Tensor,
        gn_mean: torch.Tensor | None = None,
        gn_rstd: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Units for already-padded audio.

        Args:
            padded: [B, S] float 16 kHz audio that already includes the 40-sample padding where
                it applies; S = 320·T + 80 gives exactly T frames.
            gn_mean: optional [B, 512, 1] per-channel mean of conv0's output for GroupNorm
                (float32); when given with `gn_rstd`, it replaces the statistics of `padded`.
            gn_rstd: optional [B, 512, 1] reciprocal standard deviation 1/sqrt(var + 1e-5).

        Returns:
            [B, T, 256] units, in the autocast dtype when autocast is active.
        """
        layers = self.hubert.feature_extractor.conv_layers
        first = layers[0]
        x = first.conv(padded[:, None])
        if gn_mean is None or gn_rstd is None:
            x = first.layer_norm(x)
        else:
            norm = first.layer_norm
            x = (x.float() - gn_mean) * gn_rstd
            x = x * norm.weight.float()[:, None] + norm.bias.float()[:, None]
        x = first.activation(x)
        for layer in layers[1:]:
            x = layer(x)
        hidden = self.hubert.feature_projection(x.transpose(1, 2))
        hidden = self.hubert.encoder(hidden).last_hidden_state
        return self.proj(hidden)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """bshall's `HubertSoft.units` for a batch: [B, L] 16 kHz → [B, floor(L/320), 256].

        Pads 40 zeros on each side and runs `transformers.HubertModel.forward` unchanged (its own
        GroupNorm over the whole input), then `proj`. This is the single-pass reference.
        """
        padded = nn.functional.pad(wav, (PAD, PAD))
        hidden = self.hubert(input_values=padded).last_hidden_state
        return self.proj(hidden)
