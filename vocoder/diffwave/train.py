"""`gvc train-vocoder`: a DiffWave run on the generic training loop (`gvc.training.loop`).

`setup_vocoder` builds the `TrainRun` (every check before any compute: resume checkpoint, data,
model, optimizer, loaders, run folder) with a `DiffWaveObjective`; `train_vocoder` runs it. The
loop brings resume at the exact step, DDP under torchrun, bf16 autocast, keep-N rotation, and
SIGINT/SIGTERM checkpoints. Validation logs the DDPM loss on held-out segments and, for the
first `train.valid_items` held-out utterances, copy-synthesis audio (TensorBoard) and its
log-mel L1 against the recording's mel (`mel_l1`).

A training checkpoint's `gvc` entry has kind `vocoder-training` plus the architecture, mel and
config, so `gvc export --checkpoint RUN_DIR` recognises it (`export_vocoder`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from gvc.config import TrainConfig
from gvc.errors import CheckpointError, ConfigError, DataLayoutError
from gvc.training import optim
from gvc.training.checkpoint import load_checkpoint
from gvc.training.data import quiet_worker
from gvc.training.distributed import DistContext, init_distributed, shutdown
from gvc.training.logging import TrainLogger
from gvc.training.loop import TrainRun, restore, run_loop
from gvc.training.objective import Objective
from gvc.training.options import TrainOptions, TrainResult
from gvc.training.sampler import EpochBatchSampler
from gvc.training.setup import resolve_resume, run_place
from gvc.training.state import seed_everything
from vocoder.diffwave.config import VocoderConfig, vocoder_config_to_dict
from vocoder.diffwave.model import DiffWave
from vocoder.diffwave.training import (
    SegmentDataset,
    SegmentItem,
    collate_segments,
    copy_synthesis_l1,
    diffwave_losses,
    load_pair,
    scan_items,
)
from vocoder.diffwave.vocoder import DiffWaveVocoder, save_diffwave, vocoder_meta

log = logging.getLogger(__name__)

TRAINING_KIND = "vocoder-training"
VALID_MAX_FRAMES = 300  # validation audio is the first 3 s of each held-out utterance


class DiffWaveLossModule(nn.Module):
    """`diffwave_losses` as `forward(batch, joint, generator)`, so DDP can wrap it."""

    def __init__(self, model: DiffWave) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any, joint: bool,
                generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """{"diff": DDPM loss} of a `SegmentBatch` on the device (`joint` is always True)."""
        return diffwave_losses(self.model, batch, generator)


class DiffWaveObjective(Objective):
    """DiffWave training: one loss, one clip group, validation loss + copy-synthesis.

    Args:
        cfg: the vocoder config; valid_batches: held-out segments (rank 0; None: no loss);
        valid_items: held-out utterances synthesised at each validation (rank 0).
    """

    def __init__(self, cfg: VocoderConfig, valid_batches: Any = None,
                 valid_items: list[SegmentItem] | None = None) -> None:
        self.cfg, self.valid_batches, self.valid_items = cfg, valid_batches, valid_items or []

    def loss_module(self, model: nn.Module) -> nn.Module:
        return DiffWaveLossModule(model)

    def clip_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        return {"net": [p for p in model.parameters() if p.requires_grad]}

    def checkpoint_meta(self, run: TrainRun) -> dict[str, Any]:
        return {**vocoder_meta(self.cfg, {"kind": "gvc-training"}), "kind": TRAINING_KIND,
                "config": vocoder_config_to_dict(self.cfg), "run": run.meta_run}

    @torch.no_grad()
    def validate(self, run: TrainRun, joint: bool) -> None:
        seed = self.cfg.train.seed + 1
        metrics: dict[str, float] = {}
        run.model.eval()
        try:
            if self.valid_batches is not None:
                gen = torch.Generator().manual_seed(seed)
                losses = [diffwave_losses(run.model, b.to(run.runtime.device), gen)["diff"].item()
                          for b in self.valid_batches]
                metrics["diff"] = sum(losses) / len(losses)
            clips = []
            if self.valid_items:
                voc = DiffWaveVocoder(run.model, self.cfg.mel, run.runtime,
                                      self.cfg.train.valid_steps)
                l1 = []
                for item in self.valid_items:
                    audio, mel = load_pair(item, voc.hop, voc.sample_rate)
                    mel = mel[:, :VALID_MAX_FRAMES]
                    out = voc(mel, generator=torch.Generator().manual_seed(seed)).cpu()
                    l1.append(copy_synthesis_l1(out, mel, self.cfg.mel))
                    clips.append({"name": item.name, "audio": out,
                                  "truth": torch.from_numpy(audio[: out.shape[-1]])})
                metrics["mel_l1"] = sum(l1) / len(l1)
        finally:
            run.model.train()
        run.logger.validation(run.state.step, metrics)
        run.logger.audio(run.state.step, clips, self.cfg.mel.sampling_rate)


def loop_train_config(cfg: VocoderConfig, lr: float, precision: str,
                      steps_per_epoch: int) -> TrainConfig:
    """The `train:` settings the generic loop reads, from the vocoder's `train:` block.

    Epochs are only the data order's unit here: the run is measured in steps (`max_steps`),
    and checkpoints come every `checkpoint_every` steps, never per epoch.
    """
    t = cfg.train
    return TrainConfig(seed=t.seed, learning_rate=lr, batch_size=t.batch_size,
                       full_epochs=math.ceil(t.max_steps / steps_per_epoch), fast_epochs=0,
                       save_step=2**31, adam_betas=t.adam_betas, grad_clip=t.grad_clip,
                       checkpoint_every=t.checkpoint_every, keep_last=t.keep_last,
                       keep_every=t.keep_every, precision=precision, num_workers=t.num_workers,
                       train_files=t.train_files, valid_files=t.valid_files)


def resume_vocoder_checkpoint(path: Path, cfg: VocoderConfig) -> dict[str, Any]:
    """A vocoder training checkpoint made with the same architecture and mel as `cfg`.

    Raises:
        CheckpointError: not a vocoder training checkpoint.
        ConfigError: another architecture or mel.
    """
    ckpt = load_checkpoint(path)
    if ckpt["gvc"].get("kind") != TRAINING_KIND:
        raise CheckpointError(f"{path} is not a gvc train-vocoder checkpoint; start the vocoder "
                              "run in another --run-dir")
    ours = vocoder_meta(cfg, {})
    for block in ("architecture", "mel"):
        if ckpt["gvc"].get(block) != ours[block]:
            raise ConfigError(f"{path} was trained with another {block} ({ckpt['gvc'].get(block)}"
                              f" vs {ours[block]}); resume with the same config, or start in "
                              "another --run-dir")
    return ckpt


def _items(opts: TrainOptions, cfg: VocoderConfig) -> tuple[list[SegmentItem],
                                                             list[SegmentItem], dict[str, Any]]:
    """Training and held-out utterances: the index files when present, else every mel."""
    t = cfg.train
    train_files = Path(opts.train_files or t.train_files)
    valid_files = Path(opts.valid_files or t.valid_files)
    if not train_files.is_file():
        log.warning("no index at %s: training on every mel of %s, nothing held out (gvc index "
                    "writes files/train.txt and files/valid.txt)", train_files, opts.data)
    scan = scan_items(opts.data, t.segment_frames, train_files if train_files.is_file() else None)
    valid = scan_items(opts.data, 1, valid_files).items if valid_files.is_file() else []
    if scan.missing:
        log.warning("%d utterance(s) lack a 32 kHz wave or a mel and are skipped: %s",
                    len(scan.missing), ", ".join(scan.missing[:5]))
    if not scan.items:
        raise DataLayoutError(f"{opts.data}: no utterance has both waves-32k and mel with at "
                              f"least {t.segment_frames} frames; run gvc resample and gvc "
                              "extract-mel")
    info = {"train_items": len(scan.items), "too_short": scan.too_short,
            "missing": len(scan.missing), "valid_items": len(valid),
            "train_files": str(train_files) if train_files.is_file() else None,
            "valid_files": str(valid_files) if valid_files.is_file() else None}
    return scan.items, valid, info


def setup_vocoder(opts: TrainOptions, ctx: DistContext, device: torch.device) -> TrainRun:
    """Resolve options, check resume and data, build model, optimizer, loaders and run folder.

    Raises:
        GvcError subclasses on any problem, before training compute.
    """
    cfg: VocoderConfig = opts.config
    t = cfg.train
    precision, runtime, run_dir = run_place(opts, t.precision, device)
    resume_path = resolve_resume(opts.resume, run_dir)
    ckpt = resume_vocoder_checkpoint(resume_path, cfg) if resume_path else None
    run_info = ckpt["gvc"].get("run", {}) if ckpt else {}

    items, valid, info = _items(opts, cfg)
    sampler = EpochBatchSampler(len(items), t.batch_size, seed=t.seed, rank=ctx.rank,
                                world_size=ctx.world_size)
    if len(sampler) == 0:
        raise DataLayoutError(f"{len(items)} usable utterances make no full batch of "
                              f"{t.batch_size} per process ({ctx.world_size} process(es)); lower "
                              "train.batch_size or add data")

    seed_everything(t.seed)  # identical initial weights on every rank
    model = DiffWave(cfg.model, cfg.mel.n_mels)
    if ckpt:
        model.load_state_dict(ckpt["model"], strict=True)
    model.to(device)
    base_lr = float(opts.lr if opts.lr is not None else run_info.get("lr", t.learning_rate))
    if base_lr <= 0:
        raise ConfigError(f"--lr {base_lr} must be > 0")
    loop_cfg = loop_train_config(cfg, base_lr, precision, len(sampler))
    meta_run = {"config_source": opts.config_name, "lr": base_lr, "precision": precision,
                "world_size": ctx.world_size, "device": device.type}

    hop, sr = cfg.mel.hop_length, cfg.mel.sampling_rate
    train_set = SegmentDataset(items, t.segment_frames, hop=hop, sample_rate=sr, seed=t.seed)
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate_segments,
                        num_workers=t.num_workers, persistent_workers=t.num_workers > 0,
                        pin_memory=device.type == "cuda",
                        worker_init_fn=quiet_worker if t.num_workers else None)
    valid_long = [it for it in valid if it.frames >= t.segment_frames]
    valid_batches = None
    if ctx.is_main and valid_long:
        vset = SegmentDataset(valid_long, t.segment_frames, hop=hop, sample_rate=sr,
                              seed=t.seed, train=False)
        vsampler = EpochBatchSampler(len(vset), t.batch_size, shuffle=False, drop_last=False)
        valid_batches = DataLoader(vset, batch_sampler=vsampler, collate_fn=collate_segments)
    objective = DiffWaveObjective(cfg, valid_batches,
                                  valid[: t.valid_items] if ctx.is_main else [])
    total = min(t.max_steps, opts.max_steps) if opts.max_steps is not None else t.max_steps
    logger = TrainLogger(run_dir, enabled=ctx.is_main, console=opts.console, total_steps=total,
                         log_every=opts.log_every)
    run = TrainRun(opts=dataclasses.replace(opts, max_steps=total), train=loop_cfg, ctx=ctx,
                   runtime=runtime, run_dir=run_dir, objective=objective, model=model,
                   optimizer=optim.build_optimizer(model, loop_cfg, base_lr), base_lr=base_lr,
                   loader=loader, sampler=sampler, steps_per_epoch=len(sampler),
                   valid_every=opts.valid_every if opts.valid_every is not None else
                   t.valid_every, logger=logger, meta_run=meta_run,
                   data_order={"items": len(items), "batch_size": t.batch_size,
                               "world_size": ctx.world_size, "seed": t.seed})
    if ckpt:
        restore(run, ckpt, resume_path)
    if ctx.is_main:
        _write_run_files(run, cfg, info, resume_path)
    return run


def _write_run_files(run: TrainRun, cfg: VocoderConfig, info: dict[str, Any],
                     resume_path: Path | None) -> None:
    import yaml

    from gvc import __version__
    from gvc.fileio import save_json, save_text

    save_text(run.run_dir / "config.yaml",
              yaml.safe_dump(vocoder_config_to_dict(cfg), sort_keys=False))
    save_json(run.run_dir / "run.json", {
        **run.meta_run, **info, "kind": TRAINING_KIND, "gvc_version": __version__,
        "resumed_from": str(resume_path) if resume_path else None,
        "steps_per_epoch": run.steps_per_epoch})
    where = f"resuming {resume_path} at step {run.state.step}" if resume_path else "new run"
    log.info("%s in %s: DiffWave %d layers x %d channels, %d training items (%d too short), "
             "%d held out, %s on %s x%d", where, run.run_dir, cfg.model.residual_layers,
             cfg.model.residual_channels, info["train_items"], info["too_short"],
             info["valid_items"], run.runtime.precision.value, run.runtime.device,
             run.ctx.world_size)


def train_vocoder(opts: TrainOptions) -> TrainResult:
    """Run (or continue) a DiffWave training run (`opts.config` is a `VocoderConfig`).

    Raises:
        GvcError subclasses, all before the first step; TrainingDiverged on NaN/Inf.
    """
    ctx, device = init_distributed(opts.device)
    try:
        return run_loop(setup_vocoder(opts, ctx, device))
    finally:
        shutdown(ctx)


def is_vocoder_checkpoint(path: Path) -> bool:
    """Whether `path` is a `gvc train-vocoder` checkpoint (read lazily, memory-mapped)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - unreadable files are reported by the acoustic export
        return False
    meta = ckpt.get("gvc") if isinstance(ckpt, dict) else None
    return isinstance(meta, dict) and meta.get("kind") == TRAINING_KIND


def export_vocoder(checkpoint: Path, out: Path, *, half: bool = False,
                   force: bool = False) -> dict[str, Any]:
    """Write the self-describing DiffWave file of a training checkpoint; returns its metadata.

    Raises:
        CheckpointError: not a vocoder training checkpoint; ConfigError: `out` exists.
    """
    from vocoder.diffwave.config import vocoder_config_from_dict

    if Path(out).exists() and not force:
        raise ConfigError(f"{out} already exists; pass --force to replace it")
    ckpt = load_checkpoint(checkpoint)
    meta = ckpt["gvc"]
    if meta.get("kind") != TRAINING_KIND:
        raise CheckpointError(f"{checkpoint} is not a gvc train-vocoder checkpoint")
    cfg = vocoder_config_from_dict(meta["config"], str(checkpoint))
    model = DiffWave(cfg.model, cfg.mel.n_mels)
    model.load_state_dict(ckpt["model"], strict=True)
    source = {"kind": "gvc-training", "file": str(checkpoint), "step": ckpt["steps"],
              "epoch": ckpt["epoch"]}
    save_diffwave(Path(out), model, cfg, source, half=half)
    return vocoder_meta(cfg, source)
