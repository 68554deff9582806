"""DiffWave as a `Vocoder`, and its self-describing file.

The file (written by `gvc export --checkpoint <vocoder run>`, read by `load_diffwave`) is
`{'model': state_dict, 'gvc': {'kind': 'vocoder', 'vocoder': 'diffwave', 'format_version',
'architecture': the model block, 'mel': the mel block, 'source': ...}}`: everything needed to
rebuild the network and to check that its mel matches an acoustic model's, with no config file.

Synthesis runs the reverse process per window of `vocoder.chunking` (4 s cores on a CPU with
0.4 s of context on each side, crossfaded over 0.2 s). The noise of every reverse step comes
from a `NoiseField` seeded once per song and indexed by absolute sample, so a window draws the
same noise a whole-song pass would: chunked and whole synthesis differ only where the context
does not cover the reverse process's growing receptive field, and a fixed seed reproduces the
output exactly.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from gvc.config import _build_block
from gvc.device import Runtime
from gvc.errors import CheckpointError, ConfigError
from gvc.inference.noise import NoiseField
from vocoder.base import Capabilities, Chunking, Vocoder
from vocoder.diffwave.config import DiffWaveConfig, VocoderConfig
from vocoder.diffwave.model import DiffWave
from vocoder.diffwave.schedule import FAST_BETAS, reverse, sampling_schedule
from vocoder.mel import MelConfig
from vocoder.registry import VocoderSpec

log = logging.getLogger(__name__)

KIND = "vocoder"
NAME = "diffwave"
FORMAT_VERSION = 1
NOISE_BLOCK = 8000  # samples per seeded noise block (0.25 s)


class DiffWaveVocoder(Vocoder):
    """A trained DiffWave network plus its sampler.

    Args:
        model: the network (moved to `runtime.device`, eval mode).
        mel: the mel definition it was trained on.
        runtime: device and autocast precision (CPU fp32 if None).
        steps: reverse steps, 6 (the paper's fast schedule, default) or T (the full process).
    """

    name = NAME
    capabilities = Capabilities(
        precisions=("fp32", "bf16", "fp16"), weights=True,
        chunking=Chunking(frames=400, gpu_frames=3000, context=40, crossfade=20))

    def __init__(self, model: DiffWave, mel: MelConfig, runtime: Runtime | None = None,
                 steps: int = len(FAST_BETAS)) -> None:
        self.runtime = runtime or Runtime(torch.device("cpu"))
        self.model = model.eval().to(self.runtime.device)  # synthesis runs in inference mode
        self.mel = mel
        self.sample_rate, self.hop, self.n_mels = mel.sampling_rate, mel.hop_length, mel.n_mels
        self.set_steps(steps)

    @property
    def device(self) -> torch.device:
        """Where the network runs."""
        return self.runtime.device

    def set_steps(self, steps: int) -> None:
        """Choose the schedule: 6 (fast) or the training T (full).

        Raises:
            ConfigError: any other count.
        """
        self.schedule = sampling_schedule(self.model.cfg, steps)
        self.steps = steps

    def begin(self, mel: torch.Tensor, f0: torch.Tensor,
              generator: torch.Generator | None) -> NoiseField:
        """The song's noise field, seeded by one draw from `generator`."""
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        return NoiseField(seed, block=NOISE_BLOCK)

    def render(self, mel: torch.Tensor, f0: torch.Tensor, lo: int, song: NoiseField,
               generator: torch.Generator | None) -> torch.Tensor:
        """One window by the reverse process (see `Vocoder.render`); `f0` is unused."""
        b, _, frames = mel.shape
        start = lo * self.hop

        def noise(draw: int, like: torch.Tensor) -> torch.Tensor:
            field = song.window(draw, start, like.shape[-1], b, 1)[:, 0]
            return field.to(device=like.device, dtype=torch.float32)

        with self.runtime.autocast():
            cond = self.model.condition(mel)

        def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with self.runtime.autocast():
                return self.model(x, t, cond=cond)

        return reverse(denoise, self.schedule, (b, frames * self.hop), noise, mel.device)


def vocoder_meta(cfg: VocoderConfig, source: dict[str, Any]) -> dict[str, Any]:
    """The `gvc` entry of a DiffWave file (JSON-safe)."""
    return {"kind": KIND, "vocoder": NAME, "format_version": FORMAT_VERSION,
            "architecture": {k: list(v) if isinstance(v, tuple) else v
                             for k, v in dataclasses.asdict(cfg.model).items()},
            "mel": dataclasses.asdict(cfg.mel), "source": source}


def save_diffwave(path: Path, model: DiffWave, cfg: VocoderConfig,
                  source: dict[str, Any], half: bool = False) -> Path:
    """Write a self-describing DiffWave file atomically; returns the path."""
    from gvc.fileio import save_torch

    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    save_torch(Path(path), {"model": state, "gvc": vocoder_meta(cfg, source)})
    return Path(path)


def is_vocoder_file(meta: Any) -> bool:
    """Whether a file's `gvc` entry describes a vocoder (not an acoustic model)."""
    return isinstance(meta, dict) and meta.get("kind") == KIND


def read_diffwave(path: Path) -> tuple[DiffWave, MelConfig, dict[str, Any]]:
    """Rebuild the network from a DiffWave file, strictly.

    Returns:
        (network in eval mode on CPU, its mel block, the `gvc` metadata).

    Raises:
        CheckpointError: missing/unreadable file, not a DiffWave file, or mismatching weights.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"DiffWave vocoder file not found: {path}; write one with gvc "
                              "export --checkpoint <run of gvc train-vocoder> --out FILE")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not usable"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"cannot read vocoder file {path}: {reason}") from exc
    meta = data.get("gvc") if isinstance(data, dict) else None
    if not is_vocoder_file(meta) or meta.get("vocoder") != NAME:
        raise CheckpointError(f"{path} is not a DiffWave vocoder file (no gvc vocoder metadata); "
                              "export a vocoder run with gvc export --checkpoint DIR")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path} has vocoder format {meta['format_version']}, newer than "
                              f"this gvc reads ({FORMAT_VERSION}); upgrade gvc")
    try:
        arch = _build_block(DiffWaveConfig, meta["architecture"], "architecture", str(path))
        mel = _build_block(MelConfig, meta["mel"], "mel", str(path))
    except (ConfigError, KeyError) as exc:
        raise CheckpointError(f"{path}: bad vocoder metadata ({exc})") from exc
    model = DiffWave(arch, mel.n_mels)
    state = {k: v.float() for k, v in data["model"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[:2]
        raise CheckpointError(f"{path}: weights do not match the recorded architecture "
                              f"({' '.join(first)})") from exc
    return model.eval(), mel, meta


def load_diffwave(ckpt: Path | None, config: Path | None,
                  runtime: Runtime | None) -> DiffWaveVocoder:
    """Registry loader: a DiffWave file on `runtime` (the file carries its own config)."""
    if ckpt is None:
        raise CheckpointError("the diffwave vocoder needs --vocoder-ckpt FILE (gvc export "
                              "--checkpoint <run of gvc train-vocoder> writes one)")
    if config is not None:
        log.info("a DiffWave file describes itself; ignoring --vocoder-config %s", config)
    model, mel, meta = read_diffwave(Path(ckpt))
    log.info("loaded DiffWave from %s (%d layers x %d channels)", ckpt,
             model.cfg.residual_layers, model.cfg.residual_channels)
    return DiffWaveVocoder(model, mel, runtime)


SPEC = VocoderSpec(NAME, DiffWaveVocoder, load_diffwave,
                   "DiffWave trained with gvc train-vocoder (a gvc export file)")
