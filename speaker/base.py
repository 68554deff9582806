"""The speaker-encoder interface: one 16 kHz utterance in, one 256-d d-vector out.

Every encoder takes mono float audio at 16 kHz (`SpeakerEncoder.sample_rate`) as a numpy array
or a torch tensor, and returns a float32 numpy vector of `SpeakerEncoder.dim` = 256 values: the
timbre code Grad-SVC stores per utterance as `data_gvc/speaker/<singer>/<utt>.spk.npy`.

Encoders differ only in construction. Their embedding spaces are *not* interchangeable (a model
trained on `lstm` d-vectors cannot be fed `resemblyzer` ones), so each encoder reports its name and
settings through `describe()`, which the feature folders record next to the files.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from gvc.errors import AudioError

SAMPLE_RATE = 16000
EMBED_DIM = 256


def as_mono_float32(wav: Any) -> np.ndarray:
    """Validate and convert one utterance to a contiguous [L] float32 numpy array.

    Args:
        wav: [L] (or [1, L]) samples at 16 kHz, numpy array or torch tensor on any device,
            nominally in [-1, 1].

    Returns:
        [L] float32 numpy array (a copy only when a conversion is needed).

    Raises:
        AudioError: not one channel, empty, or containing NaN/Inf.
    """
    if hasattr(wav, "detach"):  # torch.Tensor, without importing torch here
        wav = wav.detach().to("cpu").float().numpy()
    x = np.asarray(wav)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise AudioError(
            f"speaker encoder expects one mono channel [L], got an array of shape "
            f"{tuple(x.shape)}; "
            "mix down to mono first"
        )
    if x.size == 0:
        raise AudioError("speaker encoder got an empty waveform (0 samples)")
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioError(
            f"speaker encoder expects float samples in [-1, 1], got dtype {x.dtype}; "
            "convert integer PCM with x / 32768"
        )
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise AudioError("speaker encoder input contains NaN or Inf samples")
    return x


class SpeakerEncoder(abc.ABC):
    """Turns one utterance of 16 kHz mono audio into a 256-d float32 d-vector.

    Attributes:
        sample_rate: input sample rate in Hz (16000 for every encoder).
        dim: length of the returned vector (256).
        name: short identifier of the encoder family (`"lstm"`, `"resemblyzer"`).
    """

    sample_rate: int = SAMPLE_RATE
    dim: int = EMBED_DIM
    name: str = ""

    @abc.abstractmethod
    def embed(self, wav_16k: Any) -> np.ndarray:
        """d-vector of one utterance.

        Args:
            wav_16k: [L] float samples at 16 kHz (numpy array or torch tensor).

        Returns:
            [256] float32 numpy array.

        Raises:
            AudioError: silent, too short, multi-channel or non-finite input.
        """

    def embed_batch(self, wavs: Sequence[Any]) -> list[np.ndarray]:
        """d-vectors of several utterances, in order; each one as `embed` returns it."""
        return [self.embed(w) for w in wavs]

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-serialisable name and settings of this encoder (with a weights fingerprint).

        Two feature folders whose descriptions differ hold embeddings that must not be mixed.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"
