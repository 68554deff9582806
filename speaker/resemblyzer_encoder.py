"""Resemblyzer's GE2E `VoiceEncoder` as a speaker encoder that needs no download.

The weights (`pretrained.pt`, ~17 MB) ship inside the `resemblyzer` pip package, so this encoder
works offline out of the box. Input is prepared exactly as `resemblyzer.preprocess_wav` does for
16 kHz audio (volume raised to -30 dBFS if quieter, long silences cut by webrtcvad; no resampling
since resemblyzer also works at 16 kHz), then `VoiceEncoder.embed_utterance` averages 1.6 s
partials (rate 1.3/s) and L2-normalises: the result is float32 [256], non-negative, norm 1.

**Its embedding space is unrelated to the `lstm` encoder's** (different network, 40-band mel,
different training). A Grad-SVC checkpoint trained on `lstm` d-vectors must be given `lstm`
vectors; use resemblyzer only for models trained on resemblyzer features.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gvc.device import Runtime
from gvc.errors import AudioError, CheckpointError
from speaker.base import SpeakerEncoder, as_mono_float32

# Keys of resemblyzer's `pretrained.pt` that belong to its GE2E training loss, not the encoder.
_TRAINING_ONLY_KEYS = frozenset({"similarity_weight", "similarity_bias"})


def _import_resemblyzer() -> Any:
    """Import resemblyzer, hiding the SciPy deprecation warning its audio module triggers."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import resemblyzer
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise CheckpointError(
            f"the resemblyzer speaker encoder needs the 'resemblyzer' package ({exc}); "
            "install it with: pip install resemblyzer"
        ) from exc
    return resemblyzer


class ResemblyzerEncoder(SpeakerEncoder):
    """Resemblyzer's 3-layer LSTM (hidden 256) on 40-band mels; embeddings in its own space.

    Args:
        runtime: device to run on (CPU when None); always fp32.
        weights: a resemblyzer `.pt` checkpoint (`{"model_state": ...}`); default: the copy
            bundled with the package.

    Raises:
        CheckpointError: the weights file is missing or its keys do not match.
    """

    name = "resemblyzer"

    def __init__(self, runtime: Runtime | None = None, weights: Path | str | None = None) -> None:
        rz = _import_resemblyzer()
        self._rz = rz
        self.device = runtime.device if runtime is not None else torch.device("cpu")
        path = Path(weights) if weights is not None else Path(rz.__file__).parent / "pretrained.pt"
        if not path.is_file():
            raise CheckpointError(
                f"resemblyzer weights not found at {path}; reinstall resemblyzer "
                "(pip install --force-reinstall resemblyzer), which bundles pretrained.pt"
            )
        self.weights_path = path
        # verbose=False: resemblyzer otherwise prints a load message on stdout.
        self.model = rz.VoiceEncoder(device=self.device, verbose=False, weights_fpath=path)
        self._load_strict(path)
        self.model.eval()
        with open(path, "rb") as fh:
            self._sha = hashlib.sha256(fh.read()).hexdigest()[:16]

    def _load_strict(self, path: Path) -> None:
        """Re-load the weights strictly (resemblyzer itself loads with `strict=False`)."""
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in ckpt["model_state"].items() if k not in _TRAINING_ONLY_KEYS}
        except Exception as exc:  # any failure to read the bundled pickle is a bad checkpoint
            raise CheckpointError(f"{path}: not a readable resemblyzer checkpoint ({exc})") from exc
        expected = set(self.model.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise CheckpointError(
                f"{path}: keys do not match resemblyzer's VoiceEncoder (missing: {missing[:4]}, "
                f"unexpected: {unexpected[:4]}); reinstall resemblyzer"
            )
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: {str(exc).splitlines()[0]}") from exc

    def preprocess(self, wav_16k: Any) -> np.ndarray:
        """`resemblyzer.preprocess_wav` for 16 kHz input: volume up to -30 dBFS, VAD silence cut.

        Returns:
            [L'] float32 samples at 16 kHz.

        Raises:
            AudioError: silent input, or no voiced 30 ms window found by the VAD.
        """
        x = as_mono_float32(wav_16k)
        if float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) < 1e-8:
            raise AudioError("audio is silent; cannot compute a speaker embedding")
        x = self._rz.preprocess_wav(x, source_sr=None)  # already 16 kHz: no resampling
        if x.size == 0:
            raise AudioError(
                "resemblyzer's voice activity detector found no voiced segment; "
                "the utterance is too short or contains no voice"
            )
        return np.asarray(x, dtype=np.float32)

    def embed(self, wav_16k: Any) -> np.ndarray:
        """Resemblyzer d-vector of one 16 kHz utterance: float32 [256], non-negative, norm 1."""
        x = self.preprocess(wav_16k)
        with torch.inference_mode():
            vec = self.model.embed_utterance(x)
        return np.asarray(vec, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """Encoder name, package version, weights fingerprint and the fixed preprocessing."""
        return {
            "encoder": self.name,
            "package_version": importlib.metadata.version("resemblyzer"),
            "weights": self.weights_path.name,
            "weights_sha256": self._sha,
            "preprocess": "resemblyzer.preprocess_wav (16 kHz, -30 dBFS increase-only, webrtcvad)",
            "partials": {"n_frames": 160, "rate": 1.3, "min_coverage": 0.75},
            "precision": "fp32",
            "space": "resemblyzer GE2E; not comparable with 'lstm' d-vectors",
        }
