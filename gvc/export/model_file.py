"""Inference-only model files: export a training checkpoint, import a Grad-SVC file, load either.

An exported file is `{'model': state_dict, 'gvc': metadata}` (see `gvc.export.meta`). `model` keeps
every key Grad-SVC's `GradTTS` has (the GRL speaker classifier included), so Grad-SVC's own loader
still reads the file; `gvc` makes it self-describing, so `load_exported` needs no config file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gvc.errors import CheckpointError, ConfigError
from gvc.export.meta import FORMAT_VERSION, META_KEY, build_meta, gradsvc_features

if TYPE_CHECKING:
    import torch

    from gvc.config import Config
    from gvc.models import GradSVC

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    """What an export or import wrote."""

    path: Path
    meta: dict[str, Any]
    parameters: int  # number of weights in `model`
    dtype: str  # "float32" or "float16"


def _import_hint(path: Path | str) -> str:
    return (f"gvc export --from-grad-svc {path} --preset base --out gvc.pth "
            "(--preset v2-64 for a V2-64 file, v3-cfm or v3-cfm-rope for V3 files: V2 and V3 "
            "files cannot be told apart by shapes)")


def _build_strict(cfg: Config, state: dict[str, torch.Tensor], source: Path | str) -> GradSVC:
    """A `GradSVC` from `cfg` with `state` loaded strictly (fp16 weights are cast to fp32)."""
    from gvc.models import GradSVC, load_acoustic_state

    model = GradSVC.from_config(cfg)
    load_acoustic_state(model, state, source)
    return model.eval()


def _state_for_file(model: GradSVC, half: bool) -> dict[str, torch.Tensor]:
    """The model's state dict, detached and contiguous, floating tensors in fp16 if `half`."""
    import torch

    out = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if half and torch.is_floating_point(value):
            value = value.half()
        out[key] = value
    return out


def _write(out: Path, state: dict, meta: dict, force: bool, sources: list[Path]) -> None:
    from gvc.fileio import save_torch

    out = Path(out)
    for src in sources:
        if out.exists() and out.resolve() == Path(src).resolve():
            raise ConfigError(f"--out {out} is the input file; write the export to another path")
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists; pass --force to replace it")
    save_torch(out, {"model": state, META_KEY: meta})


def _config_of(meta: dict[str, Any], path: Path | str) -> Config:
    from gvc.config import config_from_dict

    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: gvc metadata format {version!r} is not supported by this gvc (reads up to "
            f"{FORMAT_VERSION}); upgrade gvc")
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: gvc metadata has no config; re-export the file")
    try:
        return config_from_dict(meta["config"], f"{path} (embedded config)")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from exc


def _read_gvc_file(path: Path | str, what: str) -> tuple[dict, dict[str, Any], Config, GradSVC]:
    """Read a file carrying gvc metadata and build its model strictly.

    Returns (the whole checkpoint dict, its `gvc` metadata, the embedded config, the model).
    `what` completes the error for a file without metadata (e.g. an original Grad-SVC file).
    """
    from gvc.models import read_checkpoint

    ckpt = read_checkpoint(path)
    meta = ckpt.get(META_KEY)
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{path} {what} (no gvc metadata); for an original Grad-SVC file run "
            f"{_import_hint(path)}")
    cfg = _config_of(meta, path)
    return ckpt, meta, cfg, _build_strict(cfg, ckpt["model"], path)


def _export_weights(ckpt: dict, model: GradSVC, path: Path | str) -> str:
    """Load the training objective's `export_weights` (e.g. the slow EMA of a distilled
    student, `gvc.training.distill`) over the online weights; returns which weights are used.

    Raises:
        CheckpointError: export weights with keys or shapes the model does not have.
    """
    weights = (ckpt.get("objective") or {}).get("export_weights")
    if not weights:
        return "online"
    own = model.state_dict()
    bad = [k for k, v in weights.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise CheckpointError(f"{path}: its export weights do not fit the model ({bad[0]}, "
                              f"{len(bad)} in all); the checkpoint is damaged")
    model.load_state_dict(weights, strict=False)
    return "slow EMA (export_weights)"


def export_checkpoint(checkpoint: Path | str, out: Path | str, *, half: bool = False,
                      force: bool = False) -> ExportResult:
    """Write an inference-only file from a gvc training checkpoint.

    A distillation checkpoint (`gvc distill`) exports its slow EMA weights (`source.weights`).

    Args:
        checkpoint: a `ckpt-*.pt` written by `gvc train`.
        out: the file to write (e.g. `gvc.pth`).
        half: store floating weights as fp16 (half the size; loaders cast back to fp32).
        force: replace `out` if it exists.

    Raises:
        CheckpointError: unreadable file, no gvc metadata, or weights that do not fit its config.
        ConfigError: `out` exists (without `force`) or is the input.
    """
    ckpt, meta, cfg, model = _read_gvc_file(checkpoint, "is not a gvc training checkpoint")
    weights = _export_weights(ckpt, model, checkpoint)
    state = _state_for_file(model, half)
    source = {"kind": "gvc-training", "file": Path(checkpoint).name,
              "step": ckpt.get("steps"), "epoch": ckpt.get("epoch"),
              "run": meta.get("run", {}), "weights": weights}
    new_meta = build_meta(cfg, meta.get("features") or {}, kind="model", source=source,
                          dtype="float16" if half else "float32")
    _write(Path(out), state, new_meta, force, [Path(checkpoint)])
    return ExportResult(Path(out), new_meta, sum(v.numel() for v in state.values()),
                        new_meta["dtype"])


def import_gradsvc(source: Path | str, preset: str, out: Path | str, *, half: bool = False,
                   force: bool = False, decoder: str | None = None) -> ExportResult:
    """Add gvc metadata to an original Grad-SVC `gvc.pth` / `gvc.pretrain.pth`.

    V2-96 and V3-CFM files have identical key names and shapes, so the architecture cannot be read
    from the file: `preset` (a preset name or YAML path) states it and is recorded in the output.
    Grad-SVC's own YAML has no key naming the decoder, so a V3 file trained with other widths
    comes with `decoder="flow"` (it overrides the preset's `grad.decoder`; the family's default
    options and sampler settings apply: Grad-SVC V3's sigma_min 1e-4, Euler, 10 steps).

    Raises:
        CheckpointError: unreadable file, a file that already has gvc metadata, or weights that
            do not fit the preset (strict: any missing, extra or mis-shaped key).
        ConfigError: unknown preset, or `out` exists (without `force`).
    """
    from gvc.config import load_config
    from gvc.models import read_checkpoint

    ckpt = read_checkpoint(source)
    if isinstance(ckpt.get(META_KEY), dict):
        raise CheckpointError(
            f"{source} already has gvc metadata ({ckpt[META_KEY].get('architecture')}); load it "
            "directly, or re-export a training checkpoint with gvc export --checkpoint")
    cfg = load_config(preset, {"grad.decoder": decoder} if decoder else None)
    stated = f"--preset {preset}" + (f" --decoder {decoder}" if decoder else "")
    try:
        model = _build_strict(cfg, ckpt["model"], source)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} [{stated}]") from exc
    state = _state_for_file(model, half)
    src = {"kind": "grad-svc", "file": Path(source).name, "preset": str(preset),
           "decoder": cfg.grad.decoder,
           "note": f"architecture stated by {stated}: V2 and V3 files have identical shapes"}
    meta = build_meta(cfg, gradsvc_features(cfg), kind="model", source=src,
                      dtype="float16" if half else "float32")
    _write(Path(out), state, meta, force, [Path(source)])
    return ExportResult(Path(out), meta, sum(v.numel() for v in state.values()), meta["dtype"])


def load_exported(path: Path | str) -> tuple[GradSVC, Config, dict[str, Any]]:
    """Load a self-describing gvc model file; no config file needed.

    Args:
        path: a file written by `gvc export` (or a gvc training checkpoint).

    Returns:
        (model in eval mode on CPU, fp32 weights; its resolved config; the `gvc` metadata).

    Raises:
        CheckpointError: missing/unreadable file, a file without gvc metadata (an original
            Grad-SVC file: the message gives the import command), or weights that do not fit the
            embedded config.
    """
    _, meta, cfg, model = _read_gvc_file(path, "is not a gvc model file")
    log.debug("loaded %s (%s, %s decoder)", path, meta.get("architecture"), meta.get("decoder"))
    return model, cfg, meta
