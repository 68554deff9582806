"""The mueller91 / Mozilla TTS LSTM speaker encoder network (`LSTMSpeakerEncoder`).

Three `LSTMWithProjection` layers, each an `nn.LSTM(in, lstm_dim, batch_first=True)` followed by a
bias-free `Linear(lstm_dim -> proj_dim)`; layer 0 takes the 80 mel bands, later layers the 256-d
projection. The d-vector of a window is the last time step of the last projection, L2-normalised.
Parameter names match the published `best_model.pth.tar`:
`layers.{i}.lstm.{weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0}`, `layers.{i}.linear.weight`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

NUM_FRAMES = 250  # 4.0 s of 62.5 fps mel frames per evaluation window
NUM_EVAL = 10  # windows averaged per utterance


@dataclass(frozen=True)
class LstmDims:
    """Network sizes, as in `config.json` `model` (published: 80 / 256 / 768 / 3 / true)."""

    input_dim: int = 80
    proj_dim: int = 256
    lstm_dim: int = 768
    num_lstm_layers: int = 3
    use_lstm_with_projection: bool = True


class LSTMWithProjection(nn.Module):
    """One LSTM layer followed by a bias-free linear projection of every time step."""

    def __init__(self, input_size: int, hidden_size: int, proj_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.linear = nn.Linear(hidden_size, proj_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, input_size] -> [B, T, proj_size]."""
        out, _ = self.lstm(x)
        return self.linear(out)


class LSTMSpeakerNet(nn.Module):
    """Stack of `num_lstm_layers` projected LSTMs; the output is one unit vector per window."""

    def __init__(self, dims: LstmDims = LstmDims()) -> None:
        super().__init__()
        self.dims = dims
        sizes = [dims.input_dim] + [dims.proj_dim] * (dims.num_lstm_layers - 1)
        self.layers = nn.Sequential(
            *[LSTMWithProjection(n_in, dims.lstm_dim, dims.proj_dim) for n_in in sizes]
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """d-vectors of a batch of equal-length windows.

        Args:
            mel: [B, T, input_dim] normalised mel frames (see `speaker.frontend`).

        Returns:
            [B, proj_dim] L2-normalised projection of the last time step.
        """
        out = self.layers(mel)
        return nn.functional.normalize(out[:, -1], p=2, dim=1)


def window_offsets(
    num_total: int, num_frames: int = NUM_FRAMES, num_eval: int = NUM_EVAL
) -> tuple[list[int], int]:
    """Start frames and length of the evaluation windows of an utterance of `num_total` frames.

    Offsets are `linspace(0, T - num_frames, num_eval)` truncated to int; when `T < num_frames`
    every window is the whole utterance.

    Returns:
        (list of `num_eval` start frames, window length in frames).
    """
    length = min(num_frames, num_total)
    offsets = np.linspace(0, num_total - length, num=num_eval)
    return [int(o) for o in offsets], length


def windows(
    mel: torch.Tensor, num_frames: int = NUM_FRAMES, num_eval: int = NUM_EVAL
) -> torch.Tensor:
    """Cut the evaluation windows of one utterance.

    Args:
        mel: [T, input_dim] frames of one utterance.

    Returns:
        [num_eval, min(T, num_frames), input_dim] stacked windows (views copied into one batch).
    """
    offsets, length = window_offsets(mel.shape[0], num_frames, num_eval)
    return torch.stack([mel[o : o + length] for o in offsets])


@torch.inference_mode()
def compute_embedding(
    net: LSTMSpeakerNet, mel: torch.Tensor, num_frames: int = NUM_FRAMES, num_eval: int = NUM_EVAL
) -> torch.Tensor:
    """The utterance d-vector: the mean of the `num_eval` window d-vectors, not renormalised.

    Args:
        net: the encoder network (its device is used).
        mel: [T, input_dim] frames of one utterance.

    Returns:
        [proj_dim] float32 on the network's device; its norm is <= 1.
    """
    device = next(net.parameters()).device
    batch = windows(mel.to(device=device, dtype=torch.float32), num_frames, num_eval)
    return net(batch).mean(dim=0)
