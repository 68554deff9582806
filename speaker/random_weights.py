"""A randomly initialised LSTM speaker encoder in the published file layout (demo, benchmarks).

The files look exactly like Grad-SVC's `speaker_pretrain/` (a `//`-commented `config.json` and
`best_model.pth.tar` = `{"model": state_dict, "step": 0}`), so every loading path is exercised
without the real download. The vectors it produces carry no speaker information.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gvc.fileio import save_text, save_torch
from speaker.checkpoint import CHECKPOINT_NAME, CONFIG_NAME
from speaker.lstm_model import LstmDims, LSTMSpeakerNet


def _config_text(dims: LstmDims, description: str) -> str:
    """`config.json` in the published layout, `//` comments included."""
    return f"""{{
    "model_name": "lstm",
    "run_name": "gvc-random",
    "run_description": {json.dumps(description)},
    // audio front end (Mozilla TTS AudioProcessor settings)
    "audio": {{
        // stft parameters
        "num_mels": {dims.input_dim},
        "fft_size": 1024,
        "sample_rate": 16000,
        "win_length": 1024,
        "hop_length": 256,
        "frame_length_ms": null,
        "frame_shift_ms": null,
        "preemphasis": 0.98,
        "min_level_db": -100,
        "ref_level_db": 20,
        "power": 1.5,
        "griffin_lim_iters": 60,
        // normalization parameters
        "signal_norm": true,
        "symmetric_norm": true,
        "max_norm": 4.0,
        "clip_norm": true,
        "mel_fmin": 0.0,
        "mel_fmax": 8000.0,
        "do_trim_silence": true,
        "trim_db": 60
    }},
    "loss": "angleproto",
    // network sizes (read by gvc; Grad-SVC reads 'model_params' and falls back to the same
    // defaults)
    "model": {{
        "input_dim": {dims.input_dim},
        "proj_dim": {dims.proj_dim},
        "lstm_dim": {dims.lstm_dim},
        "num_lstm_layers": {dims.num_lstm_layers},
        "use_lstm_with_projection": true
    }}
}}
"""


def save_random_checkpoint(folder: Path, lstm_dim: int = 768, seed: int = 0) -> Path:
    """Write a randomly initialised speaker encoder in the published layout (demo, benchmarks).

    Creates `folder/best_model.pth.tar` (`{"model": state_dict, "step": 0}`) and
    `folder/config.json` (with `//` comments), both atomically. The global RNG is left untouched.

    Returns:
        `folder`, loadable with `LstmSpeakerEncoder.from_folder(folder)`.
    """
    folder = Path(folder)
    dims = LstmDims(lstm_dim=lstm_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = LSTMSpeakerNet(dims)
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    save_torch(folder / CHECKPOINT_NAME, {"model": state, "step": 0})
    desc = (
        f"random weights (seed {seed}, lstm_dim {lstm_dim}) written by gvc; NOT a trained encoder"
    )
    save_text(folder / CONFIG_NAME, _config_text(dims, desc))
    return folder
