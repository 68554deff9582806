"""A deterministic synthetic singing generator, for tests, benchmarks and the demo.

Each singer has its own pitch range, vibrato and formant set; a phrase is a sequence of notes
(harmonic source with vibrato and jitter-free glides) filtered through vowel formants, separated by
short pauses. The output is plausible enough for every extractor (Praat finds the pitch, the mel
has harmonics and formants, silences exist for splitting) and fully determined by the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

# Formant frequencies (Hz) of a few vowels; bandwidths are fixed proportions.
_VOWELS = (
    (730.0, 1090.0, 2440.0),  # a
    (530.0, 1840.0, 2480.0),  # e
    (270.0, 2290.0, 3010.0),  # i
    (570.0, 840.0, 2410.0),  # o
    (300.0, 870.0, 2240.0),  # u
)


@dataclass(frozen=True)
class SingerVoice:
    """Timbre and range of one synthetic singer."""

    base_hz: float
    formant_scale: float
    vibrato_hz: float
    vibrato_cents: float
    brightness: float


def singer_voice(index: int) -> SingerVoice:
    """The voice of synthetic singer `index` (0-based): different range and timbre for each."""
    rng = np.random.default_rng(1000 + index)
    return SingerVoice(
        base_hz=float(110.0 * 2 ** (rng.uniform(0, 24) / 12)),
        formant_scale=float(rng.uniform(0.85, 1.2)),
        vibrato_hz=float(rng.uniform(4.5, 6.5)),
        vibrato_cents=float(rng.uniform(20, 60)),
        brightness=float(rng.uniform(0.6, 1.4)),
    )


def _resonator(x: np.ndarray, freq: float, bw: float, sr: int) -> np.ndarray:
    r = np.exp(-np.pi * bw / sr)
    theta = 2 * np.pi * freq / sr
    a = [1.0, -2 * r * np.cos(theta), r * r]
    return lfilter([1.0 - r], a, x)


def sing(
    voice: SingerVoice, seconds: float, sr: int = 44100, seed: int = 0, pause: float = 0.25
) -> np.ndarray:
    """A phrase of `seconds` of singing at `sr` Hz, float32 in [-0.9, 0.9].

    Notes last 0.3-0.8 s on a pentatonic scale around the singer's base pitch; after every few
    notes a pause of `pause` seconds of near silence (noise at -70 dB) is inserted.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    f0 = np.zeros(n)
    amp = np.zeros(n)
    vowel_idx = np.zeros(n, dtype=int)
    pos = 0
    scale = (0, 2, 4, 7, 9, 12)
    while pos < n:
        for _ in range(int(rng.integers(2, 5))):
            dur = int(rng.uniform(0.3, 0.8) * sr)
            end = min(n, pos + dur)
            semis = scale[int(rng.integers(len(scale)))]
            f0[pos:end] = voice.base_hz * 2 ** (semis / 12)
            env = np.minimum(
                1.0, np.minimum(np.arange(end - pos), np.arange(end - pos)[::-1]) / (0.03 * sr)
            )
            amp[pos:end] = env
            vowel_idx[pos:end] = int(rng.integers(len(_VOWELS)))
            pos = end
            if pos >= n:
                break
        pos += int(pause * sr)
    t = np.arange(n) / sr
    vib = 2 ** (voice.vibrato_cents / 1200 * np.sin(2 * np.pi * voice.vibrato_hz * t))
    inst = f0 * vib
    phase = 2 * np.pi * np.cumsum(inst) / sr
    src = np.zeros(n)
    for h in range(1, 30):
        ok = inst * h < sr / 2 - 500
        src += ok * np.sin(h * phase) / h**voice.brightness
    out = np.zeros(n)
    for v, formants in enumerate(_VOWELS):
        sel = vowel_idx == v
        if not sel.any():
            continue
        y = src * sel
        acc = np.zeros(n)
        for k, fm in enumerate(formants):
            fm_s = min(fm * voice.formant_scale, sr / 2 - 1000)
            acc += _resonator(y, fm_s, 80 + 40 * k, sr) / (k + 1)
        out += acc
    out *= amp
    out += rng.normal(0, 10 ** (-70 / 20), n)
    peak = np.max(np.abs(out))
    return (out / peak * 0.9).astype(np.float32)


def write_corpus(
    root: Path,
    singers: int = 3,
    utterances: int = 4,
    seconds: float = 3.0,
    sr: int = 44100,
    seed: int = 0,
) -> list[Path]:
    """Write `root/<singerNN>/<uttNN>.wav` (16-bit PCM); returns the files written, sorted."""
    files = []
    for s in range(singers):
        voice = singer_voice(s)
        folder = Path(root) / f"singer{s:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for u in range(utterances):
            path = folder / f"utt{u:02d}.wav"
            audio = sing(voice, seconds, sr=sr, seed=seed * 100003 + s * 1009 + u)
            sf.write(path, audio, sr, subtype="PCM_16")
            files.append(path)
    return sorted(files)
