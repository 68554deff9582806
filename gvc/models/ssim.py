"""Structural-similarity loss on log-mel "images" (Grad-SVC's `mel_loss`).

SSIM with an 11 x 11 Gaussian window (sigma 1.5), C1 = 0.01^2, C2 = 0.03^2, zero padding, on
[B, 1, n_mels, T] images of (log-mel + 6) (the shift moves log-mels toward positive values).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

WINDOW = 11
WINDOW_SIGMA = 1.5
C1 = 0.01**2
C2 = 0.03**2
MEL_OFFSET = 6.0


def gaussian_window(size: int = WINDOW, sigma: float = WINDOW_SIGMA,
                    device: torch.device | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 2-D Gaussian window [1, 1, size, size]."""
    x = torch.arange(size, device=device, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).to(dtype)[None, None]


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of two [B, 1, H, W] images -> [B, 1, H, W]."""
    w = gaussian_window(device=x.device, dtype=x.dtype)
    pad = WINDOW // 2

    def blur(v: torch.Tensor) -> torch.Tensor:
        return F.conv2d(v, w, padding=pad)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + C1) * (2 * cov + C2)
    den = (mu_x**2 + mu_y**2 + C1) * (var_x + var_y + C2)
    return num / den


def ssim_loss(pred: torch.Tensor, target: torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """1 - SSIM(pred + 6, target + 6) for log-mels.

    Args:
        pred: [B, F, T] predicted log-mel (e.g. mu).
        target: [B, F, T] target log-mel.
        mask: optional [B, 1, T] frame mask. With it the shifted images are zeroed on padded
            frames (like the window's own zero padding) and the SSIM map is averaged over valid
            frames only, so an item's loss does not depend on how much it was padded (gvc fix).
            Without it the whole padded map is averaged, which is what Grad-SVC effectively did
            (its mask multiplication cancelled out).

    Returns:
        scalar loss.
    """
    # Variances are differences of large numbers: always float32, even under autocast.
    with torch.autocast(device_type=pred.device.type, enabled=False):
        pred, target = pred.float() + MEL_OFFSET, target.float() + MEL_OFFSET
        if mask is None:
            return 1.0 - ssim_map(pred.unsqueeze(1), target.unsqueeze(1)).mean()
        mask = mask.float()
        m = ssim_map((pred * mask).unsqueeze(1), (target * mask).unsqueeze(1)).squeeze(1)
        return 1.0 - (m * mask).sum() / (mask.sum() * m.shape[1])
