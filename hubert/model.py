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

HF's SpecAugment masking is disabled (`mask_time_prob=0`). bshall's soft model has no
attention mask; one is used here only to batch windows of different lengths (padded frames
masked), which leaves each window's units unchanged. The training-only tensors
`masked_spec_embed` and `label_embedding_weight` are optional buffers kept only for a faithful
round trip.

`forward_frames()` also accepts externally computed GroupNorm statistics, so that windows of a
long file can be normalised with the statistics of the whole file (see `hubert.windows`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from transformers import HubertConfig

#: Samples of zero padding added on each side before encoding: (400 − 320) // 2.
PAD = 40
HOP = 320
GN_EPS = 1e-5


def hubert_soft_config(num_layers: int = 12) -> HubertConfig:
    """The `HubertConfig` of bshall's HuBERT-Soft with `num_layers` transformer layers."""
    from transformers import HubertConfig  # imported on use: transformers takes seconds to import

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
        attn_implementation="sdpa",  # same maths as eager attention, less memory
    )
    return config


class HubertSoftNet(nn.Module):
    """HuBERT-Soft: 16 kHz waveform → soft speech units [B, T, 256] at 50 frames/s.

    Args:
        num_layers: transformer layers (12 in the published checkpoint).
    """

    def __init__(self, num_layers: int = 12) -> None:
        from transformers import HubertModel

        super().__init__()
        self.num_layers = num_layers
        self.hubert = HubertModel(hubert_soft_config(num_layers))
        self.proj = nn.Linear(768, 256)
        self.register_buffer("masked_spec_embed", None)
        self.register_buffer("label_embedding_weight", None)
        self.eval()

    def set_training_only(
        self, masked_spec_embed: torch.Tensor | None, label_embedding: torch.Tensor | None
    ) -> None:
        """Store (or clear) the training-only tensors so a written checkpoint carries them."""
        self.masked_spec_embed = (
            None if masked_spec_embed is None else masked_spec_embed.detach().float()
        )
        self.label_embedding_weight = (
            None if label_embedding is None else label_embedding.detach().float()
        )

    def conv0(self, padded: torch.Tensor) -> torch.Tensor:
        """First convolution only (before GroupNorm): [B, S] → [B, 512, floor((S−10)/5)+1]."""
        return self.hubert.feature_extractor.conv_layers[0].conv(padded[:, None])

    def forward_frames(
        self,
        padded: torch.Tensor,
        gn_mean: torch.Tensor | None = None,
        gn_rstd: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Units for already-padded audio.

        Args:
            padded: [B, S] float 16 kHz audio that already includes the 40-sample padding where
                it applies; S = 320·T + 80 gives exactly T frames.
            gn_mean: optional [B, 512, 1] per-channel mean of conv0's output for GroupNorm
                (float32); when given with `gn_rstd`, it replaces the statistics of `padded`.
            gn_rstd: optional [B, 512, 1] reciprocal standard deviation 1/sqrt(var + 1e-5).
            frame_mask: optional [B, T] bool, True on the frames that belong to each row when
                rows were right-padded with zeros to a common length. Valid frames then equal
                those of the unpadded row: convolutions only read past a row's end for frames
                beyond it, the encoder zeroes padded frames before the positional convolution
                (as its own zero padding would be) and attention ignores them as keys. It
                requires `gn_mean`/`gn_rstd` (padding would change the GroupNorm statistics).

        Returns:
            [B, T, 256] units, in the autocast dtype when autocast is active; rows' padded
            frames hold meaningless values.
        """
        if frame_mask is not None and (gn_mean is None or gn_rstd is None):
            raise ValueError("frame_mask needs explicit GroupNorm statistics (gn_mean, gn_rstd)")
        layers = self.hubert.feature_extractor.conv_layers
        first = layers[0]
        x = first.conv(padded[:, None])
        if gn_mean is None or gn_rstd is None:
            x = first.layer_norm(x)
        else:
            norm = first.layer_norm
            scale = gn_rstd * norm.weight.float()[:, None]  # [B, 512, 1]
            shift = norm.bias.float()[:, None] - gn_mean * scale
            x = torch.addcmul(shift, x.float(), scale)
        x = first.activation(x)
        for layer in layers[1:]:
            x = layer(x)
        hidden = self.hubert.feature_projection(x.transpose(1, 2))
        hidden = self.hubert.encoder(hidden, attention_mask=frame_mask).last_hidden_state
        return self.proj(hidden)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """bshall's `HubertSoft.units` for a batch: [B, L] 16 kHz → [B, floor(L/320), 256].

        Pads 40 zeros on each side and runs `transformers.HubertModel.forward` unchanged (its own
        GroupNorm over the whole input), then `proj`. This is the single-pass reference.
        """
        padded = nn.functional.pad(wav, (PAD, PAD))
        hidden = self.hubert(input_values=padded).last_hidden_state
        return self.proj(hidden)
