"""Reading and writing audio, with one clear error for every kind of bad file.

Everything is decoded by soundfile (libsndfile: wav, flac, ogg, mp3, aiff, ...), mixed down to
mono float32 and resampled with librosa's default high-quality resampler (soxr), as Grad-SVC's
`librosa.load(path, sr=...)` does.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf

from gvc.errors import AudioError
from gvc.fileio import atomic_path

AUDIO_SUFFIXES = frozenset(
    {
        ".wav",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aiff",
        ".aif",
        ".aifc",
        ".au",
        ".caf",
        ".w64",
    }
)

# Grad-SVC's prepare/preprocess_a.py writes int16 peaking at 0.6 of full scale.
PEAK = 0.6


def is_audio_file(path: Path) -> bool:
    """Whether the name looks like an audio file we decode (by suffix; hidden files excluded)."""
    return not path.name.startswith(".") and path.suffix.lower() in AUDIO_SUFFIXES


# libsndfile's open log notes a chunk whose size field disagrees with the bytes present, e.g.
# "data : 1728000 (should be 960)" for a WAV cut short (SSND is AIFF's sample chunk).
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _truncated(path: Path, header_seconds: float, held_seconds: float) -> AudioError:
    return AudioError(
        f"{path}: truncated: header says {header_seconds:.1f} s, file holds {held_seconds:.2f} s "
        "(a broken copy?); copy or export it again"
    )


def _check_complete(path: Path, f: sf.SoundFile) -> None:
    """Refuse a file whose header promises more samples than it holds.

    libsndfile quietly shortens such a file to what is present, so a 54 s WAV copied halfway reads
    as a valid 0.03 s one; its open log still records the size the header claimed.
    """
    m = _SHORT_CHUNK.search(f.extra_info or "")
    if m and int(m[1]) > int(m[2]) > 0 and f.frames:
        held = f.frames / f.samplerate
        raise _truncated(path, held * int(m[1]) / int(m[2]), held)


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Decode a file to mono float32 at its native rate.

    Returns:
        (samples [L] float32 nominally in [-1, 1], sample rate in Hz).

    Raises:
        AudioError: unreadable, empty, truncated, or containing NaN/Inf samples.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise AudioError(f"{path}: empty file (0 bytes); re-export or remove it")
        with sf.SoundFile(str(path)) as f:
            _check_complete(path, f)
            sr, promised = int(f.samplerate), f.frames
            data = f.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except PermissionError as exc:
        raise AudioError(f"{path}: not readable ({exc.strerror}); fix its permissions") from exc
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        reason = str(exc).split("\n")[0]
        raise AudioError(
            f"{path}: cannot be decoded as audio ({reason}); check that it is a real audio file"
        ) from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: contains no samples (header only or truncated); re-export it")
    # e.g. a compressed stream that ends early without an error (1 % slack: MP3 without a Xing
    # header only estimates its length)
    if promised - data.shape[0] > max(sr // 100, promised // 100):
        raise _truncated(path, promised / sr, data.shape[0] / sr)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: contains NaN or Inf samples; re-export it from the source")
    return np.ascontiguousarray(mono, dtype=np.float32), sr


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample [L] float32 with soxr HQ, which is what librosa's default `soxr_hq` calls (same
    samples; calling soxr directly avoids librosa's slow first call); identity when rates agree."""
    if orig_sr == target_sr:
        return audio
    import soxr

    return soxr.resample(audio, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def load_audio(path: Path, sr: int) -> np.ndarray:
    """Decode, mix down and resample to `sr`: [L] float32 (the equivalent of `librosa.load`)."""
    audio, orig = read_audio(path)
    return resample(audio, orig, sr)


def peak(audio: np.ndarray) -> float:
    """Largest absolute sample value."""
    return float(np.max(np.abs(audio))) if audio.size else 0.0


def to_int16_peak(audio: np.ndarray, source: Path | str = "audio") -> np.ndarray:
    """Grad-SVC's double peak normalisation to 0.6 and int16 conversion (truncating cast).

    Raises:
        AudioError: the audio is all zeros (Grad-SVC would divide by zero and write NaNs).
    """
    p = peak(audio)
    if p == 0.0:
        raise AudioError(f"{source}: the audio is completely silent; remove the file")
    x = audio.astype(np.float32) / p * PEAK
    x = x / max(0.01, peak(x)) * 32767 * PEAK
    return x.astype(np.int16)


def write_wav_int16(path: Path, samples: np.ndarray, sr: int) -> None:
    """Write int16 PCM WAV atomically."""
    with atomic_path(Path(path)) as tmp:
        sf.write(str(tmp), samples, sr, subtype="PCM_16", format="WAV")


def write_wav_float(path: Path, audio: np.ndarray, sr: int) -> None:
    """Write float audio in [-1, 1] as 16-bit PCM WAV atomically (clipped)."""
    pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
    write_wav_int16(path, pcm, sr)
