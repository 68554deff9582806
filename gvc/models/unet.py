"""The decoder network: Grad-TTS's 2-D U-Net `GradLogPEstimator2d` (`decoder.estimator.*` keys).

It works on the (n_mels x T) plane with 3 input channels [mu, x_t, s], where s is the speaker
embedding mapped to one value per mel band by `spk_mlp` and repeated over time. Both axes are
halved twice, so n_mels and T must be multiples of 4. The output has the shape of x_t: a score
(V1/V2), a velocity (V3) or whatever the decoder's objective trains it to be.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gvc.models.layers import Mish


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """x * mask; `None` stands for an all-ones mask (inference on one unpadded item)."""
    return x if mask is None else x * mask


class Block(nn.Module):
    """Conv 3x3 -> GroupNorm -> Mish on masked input. Keys: `block.0` (conv), `block.1` (norm)."""

    def __init__(self, dim: int, dim_out: int, groups: int = 8) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(dim, dim_out, 3, padding=1),
                                   nn.GroupNorm(groups, dim_out), Mish())

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: [B, C, F, T], mask: [B, 1, 1, T] or None (all ones) -> [B, dim_out, F, T] (masked)."""
        return _masked(self.block(_masked(x, mask)), mask)


class ResnetBlock(nn.Module):
    """Two Blocks, a time-embedding shift and a 1x1 residual.

    Keys: `mlp.1`, `block1`, `block2`, `res_conv`.
    """

    def __init__(self, dim: int, dim_out: int, time_emb_dim: int, groups: int = 8) -> None:
        super().__init__()
        self.mlp = nn.Sequential(Mish(), nn.Linear(time_emb_dim, dim_out))
        self.block1 = Block(dim, dim_out, groups)
        self.block2 = Block(dim_out, dim_out, groups)
        self.res_conv = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                t_emb: torch.Tensor) -> torch.Tensor:
        """x: [B, dim, F, T], mask as in `Block`, t_emb: [B, time_emb_dim] -> [B, dim_out, F, T]."""
        h = self.block1(x, mask) + self.mlp(t_emb)[:, :, None, None]
        return self.block2(h, mask) + self.res_conv(_masked(x, mask))


class LinearAttention(nn.Module):
    """Linear attention (softmax over keys along F*T), 4 heads x 32. Keys: `to_qkv`, `to_out`."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        self.to_qkv = nn.Conv2d(dim, 3 * heads * dim_head, 1, bias=False)
        self.to_out = nn.Conv2d(heads * dim_head, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, F, T] -> [B, C, F, T]."""
        b, _, h, w = x.shape
        qkv = self.to_qkv(x).reshape(b, 3, self.heads, self.dim_head, h * w)
        q, k, v = qkv.unbind(dim=1)  # each [B, heads, d, N]
        context = torch.matmul(k.softmax(dim=-1), v.transpose(-2, -1))  # [B, heads, d, e]
        out = torch.matmul(context.transpose(-2, -1), q)  # [B, heads, e, N]
        return self.to_out(out.reshape(b, self.heads * self.dim_head, h, w))


class Rezero(nn.Module):
    """fn(x) * g with g initialised to 0. Keys: `fn`, `g` [1]."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.g = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """fn(x) * g."""
        return self.fn(x) * self.g


class Residual(nn.Module):
    """fn(x) + x. Keys: `fn`."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """fn(x) + x."""
        return self.fn(x) + x


class Downsample(nn.Module):
    """Conv 3x3 stride 2. Keys: `conv`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, F, T] -> [B, C, F/2, T/2]."""
        return self.conv(x)


class Upsample(nn.Module):
    """Transposed conv 4x4 stride 2. Keys: `conv`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(dim, dim, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, F, T] -> [B, C, 2F, 2T]."""
        return self.conv(x)


def sinusoidal_embedding(t: torch.Tensor, dim: int, scale: float) -> torch.Tensor:
    """Grad-TTS time embedding: [sin, cos] of scale * t * 10000^(-k/(dim/2 - 1)), in float32.

    Args:
        t: [B] diffusion times (float; computed in float32 whatever the input dtype).
        dim: embedding width (even).
        scale: `pe_scale` (1000 for every Grad-SVC checkpoint).

    Returns:
        [B, dim] float32.
    """
    half = dim // 2
    step = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, device=t.device).float() * -step)
    arg = scale * t.float().unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat([arg.sin(), arg.cos()], dim=-1)


class GradLogPEstimator2d(nn.Module):
    """Grad-TTS U-Net with Grad-SVC's speaker channel.

    Args:
        dim: base width (`dec_dim`, a multiple of 8).
        dim_mults: width multipliers per resolution (1, 2, 4).
        emb_dim: speaker-embedding width (`n_embs`).
        n_mels: mel bands (a multiple of 4).
        groups: GroupNorm groups.
        pe_scale: time-embedding scale.
    """

    def __init__(self, dim: int, dim_mults: tuple[int, ...] = (1, 2, 4), emb_dim: int = 64,
                 n_mels: int = 100, groups: int = 8, pe_scale: float = 1000) -> None:
        super().__init__()
        self.dim, self.pe_scale = dim, pe_scale
        self.spk_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim * 4), Mish(),
                                     nn.Linear(emb_dim * 4, n_mels))
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 4), Mish(), nn.Linear(dim * 4, dim))
        dims = [3, *(dim * m for m in dim_mults)]
        in_out = list(zip(dims[:-1], dims[1:], strict=True))
        self.downs = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(in_out):
            last = i == len(in_out) - 1
            self.downs.append(nn.ModuleList([
                ResnetBlock(d_in, d_out, dim, groups), ResnetBlock(d_out, d_out, dim, groups),
                Residual(Rezero(LinearAttention(d_out))),
                nn.Identity() if last else Downsample(d_out)]))
        mid = dims[-1]
        self.mid_block1 = ResnetBlock(mid, mid, dim, groups)
        self.mid_attn = Residual(Rezero(LinearAttention(mid)))
        self.mid_block2 = ResnetBlock(mid, mid, dim, groups)
        self.ups = nn.ModuleList()
        for d_in, d_out in reversed(in_out[1:]):
            self.ups.append(nn.ModuleList([
                ResnetBlock(d_out * 2, d_in, dim, groups), ResnetBlock(d_in, d_in, dim, groups),
                Residual(Rezero(LinearAttention(d_in))), Upsample(d_in)]))
        self.final_block = Block(dim, dim, groups)
        self.final_conv = nn.Conv2d(dim, 1, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, t: torch.Tensor,
                spk: torch.Tensor) -> torch.Tensor:
        """Evaluate the network.

        Args:
            x: [B, n_mels, T] noisy mel x_t (T a multiple of 4).
            mask: [B, 1, T] frame mask.
            mu: [B, n_mels, T] encoder output (prior mean).
            t: [B] times in [0, 1].
            spk: [B, emb_dim] speaker embedding (`spk_emb` output).

        Returns:
            [B, n_mels, T] network output, masked.
        """
        s = self.spk_mlp(spk).unsqueeze(-1).expand(-1, -1, x.shape[-1])
        t_emb = self.mlp(sinusoidal_embedding(t, self.dim, self.pe_scale).to(x.dtype))
        h = torch.stack([mu, x, s], dim=1)  # [B, 3, F, T]
        # An all-ones mask (one unpadded item, the usual inference case) multiplies by 1 everywhere:
        # skipping it gives the same numbers and saves about a tenth of the time on CPU.
        full = None if bool((mask == 1).all()) else mask.unsqueeze(1)  # [B, 1, 1, T]
        masks = [full]  # per resolution
        skips = []
        for res1, res2, attn, down in self.downs:
            m = masks[-1]
            h = attn(res2(res1(h, m, t_emb), m, t_emb))
            skips.append(h)
            h = down(_masked(h, m))
            masks.append(None if m is None else m[:, :, :, ::2])
        masks.pop()  # the last level does not downsample
        m = masks[-1]
        h = self.mid_block2(self.mid_attn(self.mid_block1(h, m, t_emb)), m, t_emb)
        for res1, res2, attn, up in self.ups:
            m = masks.pop()
            h = torch.cat([h, skips.pop()], dim=1)
            h = attn(res2(res1(h, m, t_emb), m, t_emb))
            h = up(_masked(h, m))
        out = self.final_conv(_masked(self.final_block(h, full), full))
        return _masked(out, full).squeeze(1)
