"""Vocoders and the shared log-mel definition.

* `Vocoder`: the interface, log-mel [B, 100, T] + F0 [B, T] (Hz, 100 fps) -> audio [B, T * 320] at 32 kHz.
* `NSFBigVGAN` / `load_nsf_bigvgan`: Grad-SVC's NSF-BigVGAN generator from its published checkpoint.
* `GriffinLimVocoder`: a weight-free preview fallback.
* `mel_spectrogram` / `MelConfig`: the one mel definition shared with the acoustic model.
"""

from vocoder.base import Vocoder
from vocoder.bigvgan import BigVGANConfig, NSFBigVGANGenerator
from vocoder.checkpoint import load_bigvgan_config, save_random_checkpoint
from vocoder.factory import VOCODERS, load_vocoder
from vocoder.griffinlim import GriffinLimVocoder
from vocoder.mel import MEL, MelConfig, mel_spectrogram
from vocoder.nsf_bigvgan import NSFBigVGAN, load_nsf_bigvgan

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
