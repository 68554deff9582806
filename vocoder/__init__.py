"""Vocoders and the shared log-mel definition.

* `Vocoder`: the interface, log-mel [B, 100, T] + F0 [B, T] (Hz, 100 fps) -> audio
  [B, T * 320] at 32 kHz, with the `Capabilities` each vocoder declares; `vocoder.chunking`
  cuts long inputs for all.
* `vocoder.registry`: every vocoder by name (`load_vocoder`, `register`, `get_spec`).
* `NSFBigVGAN` / `load_nsf_bigvgan`: Grad-SVC's NSF-BigVGAN generator from its published checkpoint.
* `vocoder.diffwave`: DiffWave (network, DDPM schedules, the vocoder file, training parts).
* `GriffinLimVocoder`: a weight-free preview fallback.
* `vocoder.copysynth`: copy-synthesis (`gvc vocode`).
* `mel_spectrogram` / `MelConfig`: the one mel definition shared with the acoustic model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names are resolved on first use (PEP 562): `vocoder.mel` settings are read by the no-op path of
# `gvc extract-mel`, which must not pay for importing torch through the generator modules.
_HOME = {
    "Vocoder": "vocoder.base",
    "BigVGANConfig": "vocoder.bigvgan",
    "NSFBigVGANGenerator": "vocoder.bigvgan",
    "load_bigvgan_config": "vocoder.checkpoint",
    "save_random_checkpoint": "vocoder.checkpoint",
    "VOCODERS": "vocoder.factory",
    "load_vocoder": "vocoder.registry",
    "GriffinLimVocoder": "vocoder.griffinlim",
    "MEL": "vocoder.mel",
    "MelConfig": "vocoder.mel",
    "mel_spectrogram": "vocoder.mel",
    "NSFBigVGAN": "vocoder.nsf_bigvgan",
    "load_nsf_bigvgan": "vocoder.nsf_bigvgan",
}

if TYPE_CHECKING:
    from vocoder.base import Vocoder
    from vocoder.bigvgan import BigVGANConfig, NSFBigVGANGenerator
    from vocoder.checkpoint import load_bigvgan_config, save_random_checkpoint
    from vocoder.factory import VOCODERS
    from vocoder.griffinlim import GriffinLimVocoder
    from vocoder.mel import MEL, MelConfig, mel_spectrogram
    from vocoder.nsf_bigvgan import NSFBigVGAN, load_nsf_bigvgan
    from vocoder.registry import load_vocoder


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'vocoder' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "MEL",
    "VOCODERS",
    "BigVGANConfig",
    "GriffinLimVocoder",
    "MelConfig",
    "NSFBigVGAN",
    "NSFBigVGANGenerator",
    "Vocoder",
    "load_bigvgan_config",
    "load_nsf_bigvgan",
    "load_vocoder",
    "mel_spectrogram",
    "save_random_checkpoint",
]
