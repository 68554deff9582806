"""`load_vocoder`: build a vocoder by name."""

from __future__ import annotations

import logging
from pathlib import Path

from gvc.device import Runtime
from gvc.errors import ConfigError
from vocoder.base import Vocoder
from vocoder.checkpoint import PUBLISHED_PATH
from vocoder.griffinlim import GriffinLimVocoder
from vocoder.nsf_bigvgan import load_nsf_bigvgan

logger = logging.getLogger(__name__)

VOCODERS = ("nsf-bigvgan", "griffinlim")


def load_vocoder(
    kind: str = "nsf-bigvgan",
    ckpt: str | Path | None = None,
    config: str | Path | None = None,
    runtime: Runtime | None = None,
) -> Vocoder:
    """Build a vocoder.

    Args:
        kind: `"nsf-bigvgan"` (needs weights) or `"griffinlim"` (weight-free preview).
        ckpt: NSF-BigVGAN checkpoint; defaults to Grad-SVC's
        `bigvgan_pretrain/nsf_bigvgan_pretrain_32K.pth`
            relative to the working directory. Not used by Griffin-Lim.
        config: NSF-BigVGAN yaml (optional; the width is read from the checkpoint otherwise).
        runtime: device and precision for the neural vocoder (CPU fp32 if None).

    Raises:
        ConfigError: unknown `kind`.
        CheckpointError: missing or mismatching NSF-BigVGAN checkpoint.
    """
    name = kind.strip().lower()
    if name == "nsf-bigvgan":
        return load_nsf_bigvgan(
            Path(ckpt) if ckpt is not None else Path(PUBLISHED_PATH), config, runtime=runtime
        )
    if name == "griffinlim":
        if ckpt is not None or config is not None:
            logger.info(
                "griffinlim needs no weights; ignoring the vocoder checkpoint/config arguments"
            )
        return GriffinLimVocoder()
    raise ConfigError(f"unknown vocoder {kind!r}; choose one of {', '.join(VOCODERS)}")
