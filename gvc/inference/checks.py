"""Consistency checks run before any compute: one clear line per problem.

Checks that compare feature extractors (speaker, content, pitch) and feature lengths raise
`FeatureMismatch` unless the caller allows mismatches, in which case they log a warning and the
conversion goes on. Checks on the files themselves (a speaker vector that is not [256] float, a
vocoder with another mel definition) always raise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gvc.errors import ConfigError, FeatureMismatch

log = logging.getLogger(__name__)

OVERRIDE_HINT = "pass --allow-mismatch to convert anyway"
CONTENT_EXTRACTOR = "hubert-soft"
DEFAULT_PITCH = "praat"  # Grad-SVC trains on Praat F0 (Grad-SVC `prepare/preprocess_f0.py`)
SPEAKER_FEATURES = ("speaker", "singer")


def mismatch(message: str, allow: bool) -> None:
    """Raise `FeatureMismatch(message; hint)`, or only warn when `allow` is set."""
    if allow:
        log.warning("%s (continuing: --allow-mismatch)", message)
        return
    raise FeatureMismatch(f"{message}; {OVERRIDE_HINT}")


@dataclass(frozen=True)
class ModelFeatures:
    """What the model's training features were made with (None = not recorded)."""

    pitch: str | None
    content: str | None
    speaker: str | None
    mel: dict[str, Any]

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ModelFeatures:
        """Read the `features` record of a gvc model file's metadata."""
        feats = meta.get("features") or {}

        def name(key: str) -> str | None:
            entry = feats.get(key) or {}
            value = entry.get("extractor") if isinstance(entry, dict) else None
            return str(value) if value else None

        return cls(name("pitch"), name("content"), name("speaker"), dict(feats.get("mel") or {}))


def feature_meta(path: Path, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """The `.gvc-feature.json` governing a feature file, if any.

    Feature files live at `<root>/<file>` (singer means) or `<root>/<singer>/<file>`; the record
    sits in `<root>`. Only records whose `feature` is one of `kinds` count.
    """
    from prepare.meta import read_meta

    path = Path(path).resolve()
    for folder in (path.parent, path.parent.parent):
        meta = read_meta(folder)
        if meta is not None and meta.get("feature") in kinds:
            return meta
    return None


def check_speaker(spk: Path, n_spks: int, model_speaker: str | None, allow: bool) -> np.ndarray:
    """Load the target speaker vector and check it against the model.

    Returns:
        [n_spks] float32.

    Raises:
        FeatureMismatch: missing or malformed file, wrong size (always); another speaker encoder
            than the model's (unless `allow`).
    """
    from speaker import load_embedding

    spk = Path(spk)
    if not spk.is_file():
        raise FeatureMismatch(f"speaker file {spk} does not exist (a <singer>.spk.npy from "
                              "gvc extract-speaker, or one of Grad-SVC's assets/singers/*.npy)")
    if n_spks != 256:
        raise ConfigError(f"the model expects {n_spks}-d speaker vectors; gvc reads 256-d ones")
    vec = load_embedding(spk)
    meta = feature_meta(spk, SPEAKER_FEATURES)
    used = meta.get("extractor") if meta else None
    if used and model_speaker and used != model_speaker:
        mismatch(f"{spk} was made by the {used!r} speaker encoder but the model was trained on "
                 f"{model_speaker!r} embeddings (re-extract with gvc extract-speaker --encoder "
                 f"{model_speaker})", allow)
    elif used is None:
        log.debug("%s: no feature metadata; speaker encoder not verified", spk)
    return np.ascontiguousarray(vec, dtype=np.float32)


def check_content(model_content: str | None, vec: Path | None, allow: bool) -> None:
    """The model's content features must be HuBERT-Soft units (the only encoder gvc computes).

    Raises:
        FeatureMismatch: the model or the `--vec` file's folder records another content encoder.
    """
    if model_content and model_content != CONTENT_EXTRACTOR and vec is None:
        mismatch(f"the model was trained on {model_content!r} content features but gvc infer "
                 f"computes {CONTENT_EXTRACTOR!r} units (pass --vec with matching features)", allow)
    if vec is not None:
        meta = feature_meta(vec, ("hubert", "content"))
        used = meta.get("extractor") if meta else None
        if used and model_content and used != model_content:
            mismatch(f"{vec} holds {used!r} content features but the model was trained on "
                     f"{model_content!r}", allow)


def resolve_pitch_method(model_pitch: str | None, requested: str | None, allow: bool) -> str:
    """The F0 method to compute the source pitch with.

    Default: the model's training method (Praat when the model does not record it). An explicit
    `requested` method that differs from the model's is used with a warning (it is an explicit
    choice); an unknown name is an error.

    Raises:
        ConfigError: unknown method, or the model's method is not one gvc can compute and none
            was requested.
    """
    from pitch import F0Method

    known = [m.value for m in F0Method]
    if requested is not None:
        if requested not in known:
            raise ConfigError(f"--f0-method {requested!r} is not one of {', '.join(known)}")
        if model_pitch and requested != model_pitch:
            log.warning("--f0-method %s differs from the model's training pitch method %s; "
                        "expect pitch errors or a different timbre", requested, model_pitch)
        return requested
    if model_pitch is None:
        log.info("the model does not record its pitch method; using %s (Grad-SVC's)",
                 DEFAULT_PITCH)
        return DEFAULT_PITCH
    if model_pitch not in known:
        raise ConfigError(f"the model was trained on {model_pitch!r} pitch, which gvc cannot "
                          f"compute; pass --f0-method ({', '.join(known)}) or --pit")
    return model_pitch


def check_pitch_file(pit: Path, model_pitch: str | None, allow: bool) -> None:
    """A `--pit` file inside a pitch feature folder must come from the model's pitch method."""
    meta = feature_meta(pit, ("pitch",))
    used = meta.get("extractor") if meta else None
    if used and model_pitch and used != model_pitch:
        mismatch(f"{pit} was made by {used!r} but the model was trained on {model_pitch!r} "
                 "pitch", allow)


def check_length(what: str, path: Path, got: int, expected: int, tolerance: int,
                 allow: bool) -> None:
    """A feature file's frame count must match the audio (within `tolerance` frames)."""
    if abs(got - expected) > tolerance:
        mismatch(f"{path}: {got} {what} frames, but the audio gives {expected} "
                 f"(more than {tolerance} apart: features of another file or another rate?)",
                 allow)


def check_vocoder(vocoder, data) -> None:
    """The vocoder must use the model's mel definition (rate, hop, bands, FFT, band edges).

    Raises:
        ConfigError: any setting differs.
    """
    mel = vocoder.mel
    pairs = (("sample rate", vocoder.sample_rate, data.sampling_rate),
             ("hop", vocoder.hop, data.hop_length),
             ("mel bands", vocoder.n_mels, data.mel_channels),
             ("n_fft", mel.n_fft, data.filter_length),
             ("window", mel.win_length, data.win_length),
             ("fmin", mel.fmin, data.mel_fmin),
             ("fmax", mel.fmax, data.mel_fmax))
    for name, voc, model in pairs:
        if float(voc) != float(model):
            raise ConfigError(f"vocoder {vocoder.name} has {name} {voc} but the model's mel uses "
                              f"{model}; use a vocoder trained on the same mel")
