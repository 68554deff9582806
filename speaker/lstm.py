"""Grad-SVC's timbre encoder: mueller91's Mozilla TTS LSTM speaker encoder (`speaker_pretrain/`).

`LstmSpeakerEncoder.from_folder("speaker_pretrain")` reads `config.json` (JSON with `//`
comments; sizes under `model`) and `best_model.pth.tar` (`{"model": state_dict}`), strictly.
`embed(wav_16k)` runs the Mozilla front end (`speaker.frontend`) and averages the d-vectors of
10 windows of 250 frames (4 s) spread evenly over the utterance, giving the float32 [256] vector
that Grad-SVC saves as `<utt>.spk.npy`. Its norm is <= 1 (the mean is not renormalised).

The network always runs in fp32 on `runtime.device`: the vectors are stored as training data, and
the model is small enough that autocast would save nothing worth the drift.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gvc.device import Runtime
from gvc.errors import ConfigError
from speaker.base import SpeakerEncoder, as_mono_float32
from speaker.checkpoint import (
    CHECKPOINT_NAME,
    CONFIG_NAME,
    DEFAULT_DIR,
    dims_from_config,
    load_checkpoint_state,
    load_net_strict,
    missing_files_error,
    read_json_with_comments,
)
from speaker.frontend import FrontendConfig, speaker_mel
from speaker.lstm_model import NUM_EVAL, NUM_FRAMES, LSTMSpeakerNet, compute_embedding, windows
from speaker.random_weights import save_random_checkpoint

__all__ = ["LstmSpeakerEncoder", "save_random_checkpoint"]

# Windows per forward pass in `embed_batch` (bounds memory: 64 x 250 x 768 floats per layer).
_MAX_WINDOWS_PER_PASS = 64


def _sha256_prefix(path: Path, chars: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:chars]


class LstmSpeakerEncoder(SpeakerEncoder):
    """The Mozilla/mueller91 LSTM d-vector encoder with Grad-SVC's front end and window average.

    Args:
        net: the loaded network (moved to `runtime.device` here).
        frontend: front-end settings (from `config.json` `audio`).
        runtime: device to run on (CPU when None); precision is ignored (always fp32).
        num_frames: window length in mel frames (250 = 4.0 s).
        num_eval: windows averaged per utterance (10).
        source: provenance recorded by `describe()` (checkpoint name, weights fingerprint).
    """

    name = "lstm"

    def __init__(
        self,
        net: LSTMSpeakerNet,
        frontend: FrontendConfig = FrontendConfig(),
        runtime: Runtime | None = None,
        num_frames: int = NUM_FRAMES,
        num_eval: int = NUM_EVAL,
        source: dict[str, Any] | None = None,
    ) -> None:
        self.device = runtime.device if runtime is not None else torch.device("cpu")
        self.net = net.to(self.device).eval()
        self.frontend = frontend
        self.num_frames = num_frames
        self.num_eval = num_eval
        self.source = dict(source or {})

    @classmethod
    def from_folder(
        cls,
        model_dir: Path | str = DEFAULT_DIR,
        runtime: Runtime | None = None,
    ) -> LstmSpeakerEncoder:
        """Load `model_dir/config.json` and `model_dir/best_model.pth.tar` (Grad-SVC's layout).

        Args:
            model_dir: folder holding both files (Grad-SVC: `speaker_pretrain/`).
            runtime: device to run on (CPU when None).

        Raises:
            CheckpointError: a file is missing, unreadable, or does not match the config.
            ConfigError: `config.json` is malformed.
        """
        folder = Path(model_dir)
        ckpt_path, cfg_path = folder / CHECKPOINT_NAME, folder / CONFIG_NAME
        missing = [p for p in (ckpt_path, cfg_path) if not p.is_file()]
        if missing:
            raise missing_files_error(folder, missing)
        config = read_json_with_comments(cfg_path)
        dims = dims_from_config(config, cfg_path)
        frontend = FrontendConfig.from_audio_section(config.get("audio", {}))
        if frontend.num_mels != dims.input_dim:
            raise ConfigError(
                f"{cfg_path}: audio.num_mels ({frontend.num_mels}) differs from model.input_dim "
                f"({dims.input_dim})"
            )
        net = LSTMSpeakerNet(dims)
        load_net_strict(net, load_checkpoint_state(ckpt_path), ckpt_path)
        source = {
            "checkpoint": CHECKPOINT_NAME,
            "weights_sha256": _sha256_prefix(ckpt_path),
            **dataclasses.asdict(dims),
        }
        return cls(net, frontend, runtime=runtime, source=source)

    def with_frontend(self, frontend: FrontendConfig) -> LstmSpeakerEncoder:
        """A view of this encoder (same network) with other front-end settings."""
        clone = copy.copy(self)
        clone.frontend = frontend
        return clone

    def mel(self, wav_16k: Any) -> np.ndarray:
        """Front-end output of one utterance: [T, 80] float32 normalised mel at 62.5 fps."""
        return speaker_mel(as_mono_float32(wav_16k), self.frontend)

    def embed_mel(self, mel: np.ndarray | torch.Tensor) -> np.ndarray:
        """d-vector from front-end frames [T, 80] (as `mel` returns): float32 [256], norm <= 1."""
        frames = torch.as_tensor(np.asarray(mel) if not isinstance(mel, torch.Tensor) else mel)
        vec = compute_embedding(self.net, frames, self.num_frames, self.num_eval)
        return vec.float().cpu().numpy().astype(np.float32, copy=False)

    def embed(self, wav_16k: Any) -> np.ndarray:
        """d-vector of one 16 kHz utterance: float32 [256], norm <= 1.

        Raises:
            AudioError: silent, shorter than one STFT window after trimming, or malformed input.
        """
        return self.embed_mel(self.mel(wav_16k))

    @torch.inference_mode()
    def embed_batch(self, wavs: Sequence[Any]) -> list[np.ndarray]:
        """d-vectors of several utterances; windows of all long utterances share forward passes.

        Results equal `[embed(w) for w in wavs]` up to float rounding (~1e-7).
        """
        mels = [self.mel(w) for w in wavs]
        out: list[np.ndarray | None] = [None] * len(mels)
        long_idx = [i for i, m in enumerate(mels) if m.shape[0] >= self.num_frames]
        for i, m in enumerate(mels):
            if m.shape[0] < self.num_frames:
                out[i] = self.embed_mel(m)
        if long_idx:
            cut = [
                windows(torch.from_numpy(mels[i]), self.num_frames, self.num_eval) for i in long_idx
            ]
            batch = torch.cat(cut).to(self.device)
            vecs = torch.cat(
                [self.net(chunk) for chunk in batch.split(_MAX_WINDOWS_PER_PASS)]
            ).view(len(long_idx), self.num_eval, -1)
            means = vecs.mean(dim=1).float().cpu().numpy()
            for row, i in enumerate(long_idx):
                out[i] = means[row].astype(np.float32, copy=False)
        return [v for v in out if v is not None]

    def describe(self) -> dict[str, Any]:
        """Encoder name, network sizes, weights fingerprint, window settings and front end."""
        return {
            "encoder": self.name,
            **self.source,
            "num_frames": self.num_frames,
            "num_eval": self.num_eval,
            "precision": "fp32",
            "frontend": dataclasses.asdict(self.frontend),
        }
