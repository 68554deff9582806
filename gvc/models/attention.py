"""The encoder's post-norm transformer (Glow-TTS/VITS style, as in Grad-SVC `grad/encoder.py`).

Two position schemes:
* relative attention, window 4, one table shared by all heads (`emb_rel_k`, `emb_rel_v`
  [1, 2*window+1, k_channels]): Grad-SVC V1, V2 and V3-CFM;
* rotary embeddings on half of each head's channels, no extra parameters: V3-CFM-RoPE.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from gvc.models.layers import ChannelLayerNorm


def relative_key_logits(q: torch.Tensor, emb: torch.Tensor, window: int) -> torch.Tensor:
    """Relative-position logits q_i . E[j - i] for |j - i| <= window, else 0.

    Args:
        q: [B, H, T, D] queries.
        emb: [1 or H, 2*window+1, D] relative key table, index r = (j - i) + window.
        window: maximum relative distance.

    Returns:
        [B, H, T, T] logits (query i, key j).
    """
    length = q.shape[2]
    per_offset = torch.matmul(q, emb.unsqueeze(0).transpose(-2, -1))  # [B, H, T, 2w+1]
    pos = torch.arange(length, device=q.device)
    rel = pos.unsqueeze(0) - pos.unsqueeze(1)  # [T, T]: j - i
    inside = (rel.abs() <= window).to(q.dtype)
    index = (rel.clamp(-window, window) + window).expand(*per_offset.shape[:2], length, length)
    return torch.gather(per_offset, -1, index) * inside


def relative_value_output(p: torch.Tensor, emb: torch.Tensor, window: int) -> torch.Tensor:
    """Sum over keys of p_ij E[j - i] for |j - i| <= window.

    Args:
        p: [B, H, T, T] attention weights.
        emb: [1 or H, 2*window+1, D] relative value table.
        window: maximum relative distance.

    Returns:
        [B, H, T, D].
    """
    length = p.shape[-1]
    padded = F.pad(p, (window, window))  # key index j sits at column j + window
    pos = torch.arange(length, device=p.device).unsqueeze(1)
    index = (pos + torch.arange(2 * window + 1, device=p.device)).expand(*p.shape[:2], length, -1)
    band = torch.gather(padded, -1, index)  # band[..., i, r] = p[i, i + r - window]
    return torch.matmul(band, emb.unsqueeze(0))


def rotary(x: torch.Tensor, fraction: float = 0.5, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding on the first `fraction` of the channels (rotate-half pairing).

    Args:
        x: [B, H, T, D] queries or keys; positions are 0..T-1.

    Returns:
        [B, H, T, D]; channels d_rot = int(D * fraction) are rotated, the rest pass through.
    """
    d_rot = int(x.shape[-1] * fraction)
    half = d_rot // 2
    theta = base ** (-torch.arange(0, d_rot, 2, device=x.device, dtype=torch.float32) / d_rot)
    angle = torch.arange(x.shape[2], device=x.device, dtype=torch.float32).unsqueeze(1) * theta
    angle = torch.cat([angle, angle], dim=-1)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x_rot, x_pass = x[..., :d_rot], x[..., d_rot:]
    turned = torch.cat([-x_rot[..., half:], x_rot[..., :half]], dim=-1)
    return torch.cat([x_rot * cos + turned * sin, x_pass], dim=-1)


class MultiHeadAttention(nn.Module):
    """Self-attention with 1x1 conv projections. Keys: `conv_{q,k,v,o}`, `emb_rel_{k,v}`."""

    def __init__(self, channels: int, n_heads: int, window_size: int | None = 4,
                 rope: bool = False, p_dropout: float = 0.0) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels {channels} not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = None if rope else window_size
        self.rope = rope
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        if self.window_size is not None:
            std = self.k_channels**-0.5
            shape = (1, 2 * self.window_size + 1, self.k_channels)
            self.emb_rel_k = nn.Parameter(torch.randn(shape) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(shape) * std)
        self.drop = nn.Dropout(p_dropout)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x: [B, C, T]; attn_mask: [B, 1, T, T] (1 = may attend). Returns [B, C, T]."""
        b, c, t = x.shape
        shape = (b, self.n_heads, self.k_channels, t)
        q = self.conv_q(x).view(shape).transpose(2, 3)  # [B, H, T, D]
        k = self.conv_k(x).view(shape).transpose(2, 3)
        v = self.conv_v(x).view(shape).transpose(2, 3)
        if self.rope:
            q, k = rotary(q), rotary(k)
        scale = 1.0 / math.sqrt(self.k_channels)
        scores = torch.matmul(q, k.transpose(-2, -1)) * scale
        if self.window_size is not None:
            scores = scores + relative_key_logits(q, self.emb_rel_k, self.window_size) * scale
        scores = scores.masked_fill(attn_mask == 0, -1e4)
        p = self.drop(F.softmax(scores, dim=-1))
        out = torch.matmul(p, v)
        if self.window_size is not None:
            out = out + relative_value_output(p, self.emb_rel_v, self.window_size)
        return self.conv_o(out.transpose(2, 3).reshape(b, c, t))


class FFN(nn.Module):
    """Conv1d(k) -> ReLU -> dropout -> Conv1d(k), inputs masked. Keys: `conv_1`, `conv_2`."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int,
                 p_dropout: float = 0.0) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size, padding=pad)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size, padding=pad)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: [B, C, T], mask: [B, 1, T] -> [B, C, T] (masked)."""
        x = self.drop(torch.relu(self.conv_1(x * mask)))
        return self.conv_2(x * mask) * mask


class Transformer(nn.Module):
    """Post-norm encoder stack.

    Keys: `attn_layers`, `norm_layers_1`, `ffn_layers`, `norm_layers_2`.
    """

    def __init__(self, channels: int, filter_channels: int, n_heads: int = 2, n_layers: int = 6,
                 kernel_size: int = 3, p_dropout: float = 0.1, window_size: int = 4,
                 rope: bool = False) -> None:
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(channels, n_heads, window_size, rope, p_dropout)
            for _ in range(n_layers))
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(channels, filter_channels, kernel_size, p_dropout) for _ in range(n_layers))
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: [B, C, T], mask: [B, 1, T] -> [B, C, T] (masked)."""
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1,
                                           self.ffn_layers, self.norm_layers_2, strict=True):
            x = x * mask
            x = norm1(x + self.drop(attn(x, attn_mask)))
            x = norm2(x + self.drop(ffn(x, mask)))
        return x * mask
