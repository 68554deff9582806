"""The `gvc` metadata entry of checkpoints: format version, architecture, config, features.

Every file gvc writes keeps Grad-SVC's `model` key (so Grad-SVC's own loader still reads it) and
adds a `gvc` entry of plain Python values (safe under `torch.load(weights_only=True)`):

    {
        "format_version": 1,
        "kind": "model" | "training",
        "architecture": "grad-svc-v2",        # encoder variant (v1, v2, v3-rope)
        "decoder": "score",                   # objective/sampler family of the U-Net
        "config": {...},                      # the resolved config (gvc.config.config_to_dict)
        "features": {                         # what the training features were made with
            "frame_rate": 100.0,              # mel frames per second
            "mel": {...},                     # the config's `data:` block (32 kHz, hop 320, ...)
            "pitch": {"extractor": "praat", "settings": {...}, "rate": 100.0, "unit": "Hz"},
            "content": {"extractor": "hubert-soft", "settings": ..., "rate": 50.0, "dim": 256},
            "speaker": {"extractor": "lstm", "settings": ..., "dim": 256},
        },
        "source": {...},                      # where the weights came from
        "gvc_version": "0.1.0",
    }

`settings` is None when unknown (a feature folder made by Grad-SVC, or an imported file).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from gvc import __version__

if TYPE_CHECKING:
    from gvc.config import Config, DataConfig

FORMAT_VERSION = 1
META_KEY = "gvc"
FEATURE_NAMES = ("pitch", "content", "speaker")
# the data-tree folder (gvc.layout.Feature value) that holds each recorded feature
FEATURE_FOLDERS = {"mel": "mel", "pitch": "pitch", "content": "hubert", "speaker": "speaker"}
# config `data:` key -> the key `prepare.mel.mel_settings()` records in the mel folder
MEL_KEYS = {
    "sampling_rate": "sampling_rate",
    "filter_length": "n_fft",
    "hop_length": "hop_length",
    "win_length": "win_length",
    "mel_channels": "n_mels",
    "mel_fmin": "fmin",
    "mel_fmax": "fmax",
}


def architecture(cfg: Config) -> str:
    """Architecture tag, e.g. `grad-svc-v2` (V2 and V3 files cannot be told apart by shapes)."""
    return f"grad-svc-{cfg.grad.version}"


def mel_record(data: DataConfig) -> dict[str, Any]:
    """The mel definition of a config's `data:` block (the keys that change the mel)."""
    return {key: getattr(data, key) for key in MEL_KEYS}


def mel_mismatches(data: DataConfig, folder_settings: dict[str, Any]) -> list[str]:
    """Differences between a config's mel and a mel folder's recorded settings.

    Returns:
        one `config key: config value vs folder value` string per disagreeing setting.
    """
    out = []
    for key, folder_key in MEL_KEYS.items():
        if folder_key not in folder_settings:
            continue
        want, got = getattr(data, key), folder_settings[folder_key]
        if not isinstance(got, (int, float)) or not math.isclose(
            float(want), float(got), rel_tol=1e-9
        ):
            out.append(f"data.{key}: config {want} vs folder {got}")
    return out


def feature_entry(name: str, folder_meta: dict[str, Any] | None, cfg: Config) -> dict[str, Any]:
    """One `features` entry from a feature folder's `.gvc-feature.json` (None = unknown)."""
    entry: dict[str, Any] = {
        "extractor": folder_meta.get("extractor") if folder_meta else None,
        "settings": folder_meta.get("settings") if folder_meta else None,
    }
    frame_rate = cfg.data.sampling_rate / cfg.data.hop_length
    if name == "pitch":
        entry.update(rate=frame_rate, unit="Hz")
    elif name == "content":
        entry.update(rate=frame_rate / 2, dim=cfg.grad.n_vecs)
    elif name == "speaker":
        entry.update(dim=cfg.grad.n_spks)
    return entry


def features_record(cfg: Config, folder_metas: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """The `features` entry of a run, from the metadata of its feature folders.

    Args:
        cfg: the resolved config (its `data:` block is the mel definition).
        folder_metas: `pitch`/`content`/`speaker` -> the folder's metadata (None if unrecorded).
    """
    record: dict[str, Any] = {
        "frame_rate": cfg.data.sampling_rate / cfg.data.hop_length,
        "mel": mel_record(cfg.data),
    }
    for name in FEATURE_NAMES:
        record[name] = feature_entry(name, folder_metas.get(name), cfg)
    return record


def gradsvc_features(cfg: Config) -> dict[str, Any]:
    """The features Grad-SVC's own pipeline used (Praat F0, HuBERT-Soft, LSTM d-vectors)."""
    from pitch.praat import PraatSettings

    metas = {
        "pitch": {"extractor": "praat", "settings": asdict(PraatSettings())},
        "content": {"extractor": "hubert-soft", "settings": None},
        "speaker": {"extractor": "lstm", "settings": None},
    }
    return features_record(cfg, metas)


def feature_mismatches(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """Where two `features` records disagree: extractor names, and settings where both are known."""
    out = []
    for name in FEATURE_NAMES:
        a, b = expected.get(name) or {}, found.get(name) or {}
        if a.get("extractor") and b.get("extractor") and a["extractor"] != b["extractor"]:
            out.append(f"{name}: {a['extractor']} vs {b['extractor']}")
        elif a.get("settings") is not None and b.get("settings") is not None \
                and a["settings"] != b["settings"]:
            out.append(f"{name}: {a.get('extractor')} settings {a['settings']} vs {b['settings']}")
    mel_a, mel_b = expected.get("mel") or {}, found.get("mel") or {}
    for key in sorted(set(mel_a) & set(mel_b)):
        if mel_a[key] != mel_b[key]:
            out.append(f"mel {key}: {mel_a[key]} vs {mel_b[key]}")
    return out


def build_meta(cfg: Config, features: dict[str, Any], *, kind: str,
               source: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Assemble the `gvc` entry (see the module docstring)."""
    from gvc.config import config_to_dict

    meta = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "architecture": architecture(cfg),
        "decoder": cfg.grad.decoder,
        "config": config_to_dict(cfg),
        "features": features,
        "source": source or {},
        "gvc_version": __version__,
    }
    meta.update(extra)
    return meta
