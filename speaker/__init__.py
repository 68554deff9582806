"""Speaker (timbre) encoders: one 16 kHz utterance -> a float32 [256] d-vector.

Two encoders share the `SpeakerEncoder` interface:

* `"lstm"`: Grad-SVC's own (mueller91 / Mozilla TTS LSTM), loaded from `speaker_pretrain/`
  (`best_model.pth.tar` + `config.json`, downloaded by the user). Use it for Grad-SVC checkpoints.
* `"resemblyzer"`: resemblyzer's GE2E encoder, weights bundled in the pip package (works offline,
  no download). A different embedding space: never mix it with `lstm` vectors.

Per-singer helpers: `singer_mean`/`average_folder` (Grad-SVC's non-normalised mean, read-only on
the inputs) and `SingerProfile`/`build_profile` (F0 range summary saved as JSON).
"""

from __future__ import annotations

from pathlib import Path

from gvc.device import Runtime
from gvc.errors import ConfigError
from speaker.average import (
    SingerProfile,
    average_folder,
    build_profile,
    load_embedding,
    profile_path,
    singer_mean,
)
from speaker.base import EMBED_DIM, SAMPLE_RATE, SpeakerEncoder
from speaker.checkpoint import DEFAULT_DIR
from speaker.frontend import FrontendConfig
from speaker.lstm import LstmSpeakerEncoder
from speaker.random_weights import save_random_checkpoint
from speaker.resemblyzer_encoder import ResemblyzerEncoder

ENCODERS = ("lstm", "resemblyzer")

__all__ = [
    "EMBED_DIM",
    "ENCODERS",
    "SAMPLE_RATE",
    "FrontendConfig",
    "LstmSpeakerEncoder",
    "ResemblyzerEncoder",
    "SingerProfile",
    "SpeakerEncoder",
    "average_folder",
    "build_profile",
    "load_embedding",
    "load_speaker_encoder",
    "profile_path",
    "save_random_checkpoint",
    "singer_mean",
]


def load_speaker_encoder(
    kind: str = "lstm",
    model_dir: Path | str | None = None,
    runtime: Runtime | None = None,
) -> SpeakerEncoder:
    """Build a speaker encoder by name.

    Args:
        kind: `"lstm"` (Grad-SVC's) or `"resemblyzer"` (bundled weights).
        model_dir: for `lstm`, the folder with `best_model.pth.tar` and `config.json`
            (default `speaker_pretrain/`); for `resemblyzer`, an optional folder holding a
            replacement `pretrained.pt` (default: the one inside the package).
        runtime: device to run on (CPU when None); speaker encoders always compute in fp32.

    Raises:
        ConfigError: unknown `kind`.
        CheckpointError: weights missing or not matching.
    """
    if kind == "lstm":
        return LstmSpeakerEncoder.from_folder(
            DEFAULT_DIR if model_dir is None else model_dir,
            runtime=runtime,
        )
    if kind == "resemblyzer":
        weights = None if model_dir is None else Path(model_dir) / "pretrained.pt"
        return ResemblyzerEncoder(runtime=runtime, weights=weights)
    raise ConfigError(f"speaker encoder {kind!r} is not one of: {', '.join(ENCODERS)}")
