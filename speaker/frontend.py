"""Audio front end of the Mozilla/Coqui LSTM speaker encoder, as Grad-SVC runs it.

Grad-SVC feeds the speaker encoder through Mozilla TTS's `AudioProcessor` (`speaker/utils/audio.py`)
configured by `speaker_pretrain/config.json`. The steps, for 16 kHz mono float input:

1. drop `trim_margin` = 10 ms (160 samples) at both ends, then
   `librosa.effects.trim(top_db=60, frame_length=1024, hop_length=256)`;
2. sound norm `x / max|x| * 0.95`;
3. pre-emphasis `y[n] = x[n] - 0.98 x[n-1]` (`scipy.signal.lfilter([1, -0.98], [1])`);
4. `librosa.stft(n_fft=1024, hop=256, win=1024, hann, center=True, pad_mode="reflect")`, magnitude;
5. 80-band Slaney mel (librosa default, area-normalised), 0-8000 Hz;
6. dB = `20 log10(max(1e-5, mel))` - `ref_level_db` (20);
7. normalise `(dB + 100) / 100`, then `* 2 * max_norm - max_norm` (x8 - 4), clip to [-4, 4].

The result is [T, 80] float32 at 62.5 frames/s (hop 256 at 16 kHz), values in [-4, 4].
Unlike the original, an all-silent input raises `AudioError` instead of dividing by zero.

Step 2 is off by default. Grad-SVC's `prepare/preprocess_speaker.py` sets `do_sound_norm = True`
on its `AudioProcessor`, but the reference fixture `speaker_lstm_small`, produced by running the
original code, carries no sound norm (with it, every mel bin is off by a constant
20 log10(0.95 / peak) dB), so the default follows what the original code demonstrably computes.
`do_sound_norm=True` remains available (gain-independent embeddings, not Grad-SVC-compatible).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from gvc.errors import AudioError, ConfigError

# Below this peak (-160 dBFS) a signal is treated as digital silence: sound norm would only
# amplify rounding noise (the original divides by zero at exactly 0).
SILENCE_PEAK = 1e-8

# Switches Grad-SVC sets to True after reading config.json, whatever the file says.
_FORCED_BY_GRADSVC = frozenset({"do_trim_silence"})


@dataclass(frozen=True)
class FrontendConfig:
    """Settings of the speaker front end; the defaults are the published `config.json` values.

    Attributes mirror the `audio` section of Mozilla's `config.json` (same names), plus
    `do_sound_norm` and `trim_margin_s`, which Grad-SVC's `AudioProcessor` applies without them
    being in the file.
    """

    sample_rate: int = 16000
    num_mels: int = 80
    fft_size: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    preemphasis: float = 0.98
    min_level_db: float = -100.0
    ref_level_db: float = 20.0
    signal_norm: bool = True
    symmetric_norm: bool = True
    max_norm: float = 4.0
    clip_norm: bool = True
    mel_fmin: float = 0.0
    mel_fmax: float = 8000.0
    do_trim_silence: bool = True
    trim_db: float = 60.0
    do_sound_norm: bool = False
    trim_margin_s: float = 0.01

    @classmethod
    def from_audio_section(cls, audio: dict[str, Any]) -> FrontendConfig:
        """Build from the `audio` dict of `config.json`; unrelated keys (griffin_lim...) are
        ignored.

        `do_trim_silence` stays True whatever the file says, as in Grad-SVC.

        Raises:
            ConfigError: a value has the wrong type or the sample rate is not 16 kHz.
        """
        if not isinstance(audio, dict):
            raise ConfigError(
                f"speaker config: 'audio' must be an object, got {type(audio).__name__}"
            )
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in _FORCED_BY_GRADSVC or f.name not in audio or audio[f.name] is None:
                continue
            value = audio[f.name]
            default = getattr(cls, f.name)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(
                        f"speaker config: audio.{f.name} must be true/false, got {value!r}"
                    )
            elif isinstance(default, int):
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value % 1:
                    raise ConfigError(
                        f"speaker config: audio.{f.name} must be an integer, got {value!r}"
                    )
                value = int(value)
            else:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(
                        f"speaker config: audio.{f.name} must be a number, got {value!r}"
                    )
                value = float(value)
            kwargs[f.name] = value
        cfg = cls(**kwargs)
        if cfg.sample_rate != 16000:
            raise ConfigError(
                f"speaker config: audio.sample_rate is {cfg.sample_rate}; the speaker encoder "
                "interface takes 16 kHz audio (use the published config.json)"
            )
        return cfg


@functools.lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)


def prepare_wave(wav: np.ndarray, cfg: FrontendConfig = FrontendConfig()) -> np.ndarray:
    """Steps 1-2: margin drop, silence trim and sound norm.

    Args:
        wav: [L] float32 mono samples at `cfg.sample_rate` Hz, nominally in [-1, 1].

    Returns:
        [L'] float32 trimmed waveform peaking at 0.95 (when `do_sound_norm`).

    Raises:
        AudioError: silent input, or too short after trimming for one STFT window.
    """
    import librosa

    x = np.asarray(wav, dtype=np.float32)
    if cfg.do_trim_silence:
        margin = int(cfg.sample_rate * cfg.trim_margin_s)
        x = x[margin:-margin] if margin > 0 else x
    if x.size == 0 or float(np.max(np.abs(x))) < SILENCE_PEAK:
        raise AudioError(
            "audio is silent or empty (peak below -160 dBFS after dropping the 10 ms margins); "
            "cannot compute a speaker embedding"
        )
    if cfg.do_trim_silence:
        x = librosa.effects.trim(
            x, top_db=cfg.trim_db, frame_length=cfg.win_length, hop_length=cfg.hop_length
        )[0]
    if x.size < cfg.fft_size:
        raise AudioError(
            f"audio too short for the speaker encoder: {x.size} samples after silence trimming, "
            f"needs at least {cfg.fft_size} ({cfg.fft_size / cfg.sample_rate * 1000:.0f} ms)"
        )
    if cfg.do_sound_norm:
        x = x / np.max(np.abs(x)) * 0.95
    return x.astype(np.float32, copy=False)


def mel_frames(x: np.ndarray, cfg: FrontendConfig = FrontendConfig()) -> np.ndarray:
    """Steps 3-7: pre-emphasis, STFT magnitude, mel, dB and normalisation.

    Args:
        x: [L] float32 waveform already passed through `prepare_wave`.

    Returns:
        [T, num_mels] float32, T = 1 + L // hop_length, values in [-max_norm, max_norm].
    """
    import librosa
    from scipy.signal import lfilter

    y = x
    if cfg.preemphasis != 0:
        y = lfilter([1.0, -cfg.preemphasis], [1.0], x).astype(np.float32)
    spec = librosa.stft(
        y,
        n_fft=cfg.fft_size,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window="hann",
        center=True,
        pad_mode="reflect",
    )
    basis = _mel_basis(cfg.sample_rate, cfg.fft_size, cfg.num_mels, cfg.mel_fmin, cfg.mel_fmax)
    mel = basis @ np.abs(spec)
    min_level = 10.0 ** (cfg.min_level_db / 20.0)
    db = 20.0 * np.log10(np.maximum(min_level, mel)) - cfg.ref_level_db
    if cfg.signal_norm:
        s = (db - cfg.min_level_db) / -cfg.min_level_db
        if cfg.symmetric_norm:
            s = 2.0 * cfg.max_norm * s - cfg.max_norm
            if cfg.clip_norm:
                s = np.clip(s, -cfg.max_norm, cfg.max_norm)
        else:
            s = cfg.max_norm * s
            if cfg.clip_norm:
                s = np.clip(s, 0.0, cfg.max_norm)
        db = s
    return np.ascontiguousarray(db.T, dtype=np.float32)


def speaker_mel(wav: np.ndarray, cfg: FrontendConfig = FrontendConfig()) -> np.ndarray:
    """The whole front end: [L] float32 16 kHz samples -> [T, num_mels] float32 normalised mel."""
    return mel_frames(prepare_wave(wav, cfg), cfg)
