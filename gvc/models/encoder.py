"""Grad-SVC's content encoder (`encoder.*` keys): prenet, GRL speaker classifier, transformer.

mu = proj_m(Transformer([prenet(vec), pitch_emb, speaker_emb])) is the prior mean, in log-mel
units, [B, n_mels, T] at 100 frames/s.
"""

from __future__ import annotations

import torch
from torch import nn

from gvc.models.attention import Transformer
from gvc.models.layers import ChannelLayerNorm, WeightNormConv1d, instance_norm


class PrenetV2(nn.Module):
    """V2/V3 prenet: 5 x [conv k5 -> instance norm -> ReLU -> dropout], zero-init 1x1 `proj`.

    Keys: `conv_layers.{0..4}`, `proj`. See `instance_norm` for `masked_stats`.
    """

    def __init__(self, in_channels: int, channels: int, n_layers: int = 5, kernel_size: int = 5,
                 p_dropout: float = 0.5, masked_stats: bool = False) -> None:
        super().__init__()
        self.masked_stats = masked_stats
        self.conv_layers = nn.ModuleList(
            nn.Conv1d(in_channels if i == 0 else channels, channels, kernel_size,
                      padding=kernel_size // 2) for i in range(n_layers))
        self.drop = nn.Dropout(p_dropout)
        self.proj = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: [B, n_vecs, T], mask: [B, 1, T] -> [B, channels, T] (masked)."""
        for conv in self.conv_layers:
            x = conv(x * mask)
            x = self.drop(torch.relu(instance_norm(x, mask, self.masked_stats)))
        return self.proj(x) * mask


class PrenetV1(nn.Module):
    """V1 prenet: `conv_pre`, 3 x [conv -> channel LayerNorm -> ReLU -> dropout], residual.

    Keys: `conv_pre`, `conv_layers.{0..2}`, `norm_layers.{0..2}.{gamma,beta}`, `proj`.
    """

    def __init__(self, in_channels: int, channels: int, n_layers: int = 3, kernel_size: int = 5,
                 p_dropout: float = 0.5) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv_pre = nn.Conv1d(in_channels, channels, kernel_size, padding=pad)
        self.conv_layers = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=pad) for _ in range(n_layers))
        self.norm_layers = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))
        self.drop = nn.Dropout(p_dropout)
        self.proj = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: [B, n_vecs, T], mask: [B, 1, T] -> [B, channels, T] (masked)."""
        x = self.conv_pre(x)
        residual = x
        for conv, norm in zip(self.conv_layers, self.norm_layers, strict=True):
            x = self.drop(torch.relu(norm(conv(x * mask))))
        return (residual + self.proj(x)) * mask


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # noqa: D102
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return -ctx.scale * grad, None


class GradientReversal(nn.Module):
    """Identity forward, gradient multiplied by -scale backward (Ganin & Lempitsky 2015)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Identity."""
        return _ReverseGrad.apply(x, self.scale)


class SpeakerClassifier(nn.Module):
    """GRL speaker regressor (training only). Keys: `classifier.{1,3,5}.{weight_g,weight_v,bias}`.

    GRL -> WN-Conv(k5) -> ReLU -> WN-Conv(k5) -> ReLU -> WN-Conv(k5) -> mean over time: a
    prediction of the d-vector, whose reversed gradient pushes speaker identity out of the prenet.
    """

    def __init__(self, channels: int, hidden: int = 1024, out_dim: int = 256) -> None:
        super().__init__()
        self.classifier = nn.Sequential(
            GradientReversal(1.0),
            WeightNormConv1d(channels, hidden, 5, padding=2), nn.ReLU(),
            WeightNormConv1d(hidden, hidden, 5, padding=2), nn.ReLU(),
            WeightNormConv1d(hidden, out_dim, 5, padding=2))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B, C, T] -> [B, out_dim].

        With `mask` [B, 1, T] every conv output is masked and the time average covers valid
        frames only, so the prediction does not depend on padding (gvc fix); without it the
        layers run unmasked and padding is averaged in, as in Grad-SVC.
        """
        if mask is None:
            return self.classifier(x).mean(dim=-1)
        for layer in self.classifier:
            x = layer(x)
            if isinstance(layer, WeightNormConv1d):
                x = x * mask
        return x.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)


class TextEncoder(nn.Module):
    """Prenet + speaker GRL + transformer + `proj_m`. Keys as Grad-SVC's `encoder.*`.

    Args:
        n_vecs: content-unit dimension (256).
        n_mels: output bands (100).
        n_embs: pitch/speaker embedding width (64).
        n_channels: prenet width (`n_enc_channels`).
        filter_channels: FFN width.
        n_spks: d-vector size predicted by the GRL classifier.
        version: "v1", "v2" or "v3-rope".
        masked_stats: V2 prenet instance-norm statistics over valid frames only.
        grl_channels: hidden width of the GRL classifier.
    """

    def __init__(self, n_vecs: int, n_mels: int, n_embs: int, n_channels: int,
                 filter_channels: int, n_spks: int = 256, version: str = "v2",
                 masked_stats: bool = False, grl_channels: int = 1024) -> None:
        super().__init__()
        if version == "v1":
            self.prenet: nn.Module = PrenetV1(n_vecs, n_channels)
        elif version in ("v2", "v3-rope"):
            self.prenet = PrenetV2(n_vecs, n_channels, masked_stats=masked_stats)
        else:
            raise ValueError(f"unknown encoder version {version!r}")
        self.speaker = SpeakerClassifier(n_channels, grl_channels, n_spks)
        hidden = n_channels + 2 * n_embs
        self.encoder = Transformer(hidden, filter_channels, rope=version == "v3-rope")
        self.proj_m = nn.Conv1d(hidden, n_mels, 1)

    def forward(self, vec: torch.Tensor, pit_emb: torch.Tensor, spk_emb: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode content, pitch and speaker into the prior mean.

        Args:
            vec: [B, n_vecs, T] content units.
            pit_emb: [B, n_embs, T] pitch embedding.
            spk_emb: [B, n_embs] speaker embedding.
            mask: [B, 1, T] frame mask.

        Returns:
            mu [B, n_mels, T] (masked) and the prenet output [B, n_channels, T] (input of the
            GRL classifier, `self.speaker`).
        """
        x = self.prenet(vec, mask)
        spk = spk_emb.unsqueeze(-1).expand(-1, -1, x.shape[-1])
        h = self.encoder(torch.cat([x, pit_emb, spk], dim=1), mask)
        return self.proj_m(h) * mask, x
