"""Everything a run checks and resolves before the first step (no training compute here).

* the index (`files/train.txt`, `files/valid.txt`; built from the data tree when absent),
* the training and validation items (files present, shapes, lengths, feature metadata),
* the checkpoint to resume (`--resume auto|PATH|none`) and its agreement with the config,
* the effective settings (`--lr`, `--precision`, `--init-from`) and how they differ from the config,
* the run's place: precision, device, run folder (`run_place`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gvc.device import Precision, Runtime
from gvc.errors import ConfigError, DataLayoutError
from gvc.training.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from gvc.training.data import ScanResult, scan_items
from gvc.training.features import check_features

if TYPE_CHECKING:
    import torch

    from gvc.config import Config
    from gvc.training.distributed import DistContext
    from gvc.training.options import TrainOptions

log = logging.getLogger(__name__)


@dataclass
class RunData:
    """The validated training and validation items and the features they were made with."""

    train: ScanResult
    valid: ScanResult
    features: dict[str, Any]
    train_files: Path
    valid_files: Path


def ensure_index(data: Path, train_files: Path, valid_files: Path, valid_count: int, seed: int,
                 ctx: DistContext) -> None:
    """Build the index from the data tree when neither list exists (rank 0; others wait)."""
    from gvc.training.distributed import barrier

    if not train_files.exists() and not valid_files.exists():
        if train_files.name != "train.txt" or valid_files != train_files.with_name("valid.txt"):
            raise ConfigError(
                f"{train_files} does not exist and can only be built as <folder>/train.txt with "
                f"<folder>/valid.txt; run `gvc index --files <folder>` or fix train.train_files")
        failure: Exception | None = None
        if ctx.is_main:
            from gvc.dataset.index import build_index
            from gvc.layout import DataTree

            try:
                res = build_index(DataTree(Path(data)), train_files.parent,
                                  valid_count=valid_count, seed=seed)
                log.info("built the index from %s: %s (%d utterances), %s (%d)", data,
                         res.train_path, len(res.train), res.valid_path, len(res.valid))
                for utt, absent in res.missing:
                    log.warning("index: skipped %s (no %s)", utt.key, ", ".join(absent))
            except Exception as exc:  # noqa: BLE001 - re-raised after the other ranks are released
                failure = exc
        barrier(ctx)
        if failure is not None:
            raise failure
        if not train_files.exists():
            raise DataLayoutError(f"rank 0 could not build {train_files}; see its error")
    elif not train_files.exists():
        raise DataLayoutError(f"{train_files} is missing but {valid_files} exists; rebuild both "
                              "with `gvc index`")


def load_data(cfg: Config, train_files: Path, valid_files: Path) -> RunData:
    """Read and validate both lists (headers only) and the feature folders' metadata.

    Raises:
        DataLayoutError: empty list, missing files, every training item too short.
        FeatureMismatch: wrong shapes, or feature metadata that disagrees with the config or
            with itself.
    """
    from gvc.dataset.index import read_index

    t = cfg.train
    train_entries = read_index(train_files)
    if not train_entries:
        raise DataLayoutError(f"{train_files} lists no utterance; add data and rebuild it with "
                              "`gvc index`")
    valid_entries = read_index(valid_files) if valid_files.exists() else []
    train = scan_items(train_entries, cfg, str(train_files), t.min_frames)
    if not train.items:
        raise DataLayoutError(
            f"{train_files}: all {len(train_entries)} utterances are shorter than "
            f"train.min_frames = {t.min_frames} frames ({t.min_frames / 100:.2f} s); use longer "
            "recordings (gvc check lists lengths) or lower train.min_frames")
    valid = scan_items(valid_entries, cfg, str(valid_files), t.min_frames)
    features = check_features(train_entries + valid_entries, cfg)
    if train.too_short:
        log.warning("%s: %d of %d utterances are shorter than %.2f s and are skipped",
                    train_files, train.too_short, len(train_entries), t.min_frames / 100)
    if train.misaligned + valid.misaligned:
        log.warning("%d utterance(s) have mel/pitch/unit lengths that disagree by more than 8 "
                    "frames; they are truncated to the shortest (run gvc check)",
                    train.misaligned + valid.misaligned)
    if not valid.items:
        log.warning("no usable validation utterance in %s: validation is off", valid_files)
    return RunData(train, valid, features, train_files, valid_files)


def resolve_resume(resume: str, run_dir: Path) -> Path | None:
    """The checkpoint to resume from: `auto` (latest in `run_dir`, or none), `none`, or a path.

    Raises:
        ConfigError: `none` while `run_dir` already holds checkpoints (they would be mixed and
            rotated away), or a path that does not exist.
    """
    if resume == "auto":
        return latest_checkpoint(run_dir)
    if resume == "none":
        found = list_checkpoints(run_dir)
        if found:
            raise ConfigError(
                f"{run_dir} already holds {len(found)} checkpoint(s); continue with --resume auto, "
                "or start the new run in another --run-dir")
        return None
    path = Path(resume)
    if not path.is_file():
        raise ConfigError(f"--resume {resume}: no such checkpoint (use auto, none or a path)")
    return path


def resume_checkpoint(path: Path, cfg: Config) -> dict[str, Any]:
    """Load a training checkpoint and check that it was made with the same model and mel.

    Raises:
        CheckpointError: not a gvc training checkpoint.
        ConfigError: its `grad:` or `data:` block differs from the config's.
    """
    from gvc.config import config_to_dict

    ckpt = load_checkpoint(path)
    theirs, ours = ckpt["gvc"].get("config") or {}, config_to_dict(cfg)
    for block in ("grad", "data", cfg.grad.decoder):
        diff = [f"{block}.{k}: checkpoint {theirs.get(block, {}).get(k)!r} vs config {v!r}"
                for k, v in ours.get(block, {}).items() if theirs.get(block, {}).get(k) != v]
        if diff:
            raise ConfigError(f"{path} was trained with another config ({'; '.join(diff[:4])}); "
                              "resume with the same config, or start in another --run-dir")
    changed = [f"train.{k}: {theirs.get('train', {}).get(k)!r} -> {v!r}"
               for k, v in ours["train"].items()
               if k not in ("learning_rate", "precision", "pretrain")
               and theirs.get("train", {}).get(k) != v]
    if changed:
        log.warning("resuming with changed training settings: %s", "; ".join(changed))
    return ckpt


def effective_config(cfg: Config, *, lr: float, precision: str,
                     init_from: Path | None) -> tuple[Config, dict[str, list[Any]]]:
    """The run's resolved config and `{key: [config value, used value]}` for what differs."""
    t = cfg.train
    used = {"learning_rate": float(lr), "precision": precision,
            "pretrain": str(init_from) if init_from else None}
    overrides = {f"train.{k}": [getattr(t, k), v] for k, v in used.items() if getattr(t, k) != v}
    resolved = dataclasses.replace(cfg, train=dataclasses.replace(t, **used))
    return resolved, overrides


def check_precision(precision: str) -> str:
    """Training precisions: fp32 and bf16 (fp16 needs loss scaling and diverges in TTS models)."""
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"--precision {precision}: training supports fp32 and bf16 (bf16 on "
                          "a GPU that has it); fp16 training is not supported")
    return precision


def run_place(opts: TrainOptions, default_precision: str,
              device: torch.device) -> tuple[str, Runtime, Path]:
    """(training precision, runtime, run folder) of a run, after checking the step flags.

    Raises:
        ConfigError: an unsupported precision, `--log-every` < 1 or `--max-steps` < 0.
    """
    precision = check_precision(opts.precision or default_precision)
    run_dir = Path(opts.run_dir) if opts.run_dir else Path("logs") / opts.config_name
    if opts.log_every < 1 or (opts.max_steps is not None and opts.max_steps < 0):
        raise ConfigError("--log-every must be >= 1 and --max-steps >= 0")
    return precision, Runtime(device, Precision(precision)), run_dir
