"""`gvc train`: set an acoustic-model run up (every check before any compute), then run the loop.

`train(TrainOptions)` joins the torchrun job if any, builds a `TrainRun` with
`setup_acoustic` (index, data and checkpoint checks, model, optimizer, loaders, run folder) and
hands it to `gvc.training.loop.run_loop`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from gvc.errors import ConfigError, DataLayoutError
from gvc.training import optim
from gvc.training.data import FeatureDataset, collate, quiet_worker
from gvc.training.distributed import init_distributed, shutdown
from gvc.training.features import check_reference
from gvc.training.logging import TrainLogger
from gvc.training.loop import TrainRun, restore, run_loop
from gvc.training.objective import AcousticObjective
from gvc.training.options import TrainOptions, TrainResult
from gvc.training.sampler import EpochBatchSampler
from gvc.training.setup import (
    RunData,
    effective_config,
    ensure_index,
    load_data,
    resolve_resume,
    resume_checkpoint,
    run_place,
)
from gvc.training.state import seed_everything

if TYPE_CHECKING:
    from gvc.config import Config
    from gvc.training.distributed import DistContext

log = logging.getLogger(__name__)


def train(opts: TrainOptions) -> TrainResult:
    """Run (or continue) an acoustic-model training run; see `TrainOptions`.

    Raises:
        GvcError subclasses, all before the first step: bad data, index, config, checkpoint.
        TrainingDiverged: a NaN/Inf loss or gradient (the last good checkpoint is kept).
    """
    ctx, device = init_distributed(opts.device)
    try:
        return run_loop(setup_acoustic(opts, ctx, device))
    finally:
        shutdown(ctx)


def setup_acoustic(opts: TrainOptions, ctx: DistContext, device: torch.device) -> TrainRun:
    """Resolve options, validate data and checkpoints, build model, optimizer and loaders.

    Raises:
        GvcError subclasses on any problem, before training compute.
    """
    cfg, t = opts.config, opts.config.train
    precision, runtime, run_dir = run_place(opts, t.precision, device)
    if cfg.grad.decoder == "consistency":
        raise ConfigError("a consistency model is made by distilling its teacher: gvc distill "
                          "--teacher MODEL.gvc.pth, not gvc train")

    # 1. what to resume, and whether it fits this config
    resume_path = resolve_resume(opts.resume, run_dir)
    ckpt = resume_checkpoint(resume_path, cfg) if resume_path else None
    run_info = (ckpt or {}).get("gvc", {}).get("run", {}) if ckpt else {}
    if ckpt and opts.init_from:
        log.info("resuming %s: --init-from %s is not applied again", resume_path, opts.init_from)
    init_from = None if ckpt else opts.init_from
    if not ckpt and not init_from and t.pretrain:
        log.info("the config names train.pretrain=%s; it is not loaded unless you pass "
                 "--init-from (and --lr / --freeze for Grad-SVC's fine-tuning)", t.pretrain)

    # 2. data: index, files, shapes, lengths, feature metadata; loaders
    loaders = load_run_data(opts, cfg, ctx, device, vec_noise_std=t.vec_noise_std)
    data, sampler = loaders.data, loaders.sampler

    # 3. model, weights, freezing, optimizer (still no training compute)
    from gvc.models import GradSVC, load_acoustic_state

    seed_everything(t.seed)  # identical initial weights on every rank
    model = GradSVC.from_config(cfg)
    report = None
    if ckpt:
        load_acoustic_state(model, ckpt["model"], resume_path)
        check_reference(data.features, ckpt["gvc"].get("features"), str(resume_path))
    elif init_from:
        from gvc.training.finetune import init_from as load_init

        report = load_init(model, init_from, cfg)
        check_reference(data.features, report.features, str(init_from))
    freeze = optim.resolve_freeze(opts.freeze) if opts.freeze else \
        list(run_info.get("freeze", []))
    if ckpt and opts.freeze and freeze != list(run_info.get("freeze", [])):
        raise ConfigError(f"--freeze {','.join(freeze) or 'none'} differs from the resumed "
                          f"run's ({','.join(run_info.get('freeze', [])) or 'none'})")
    optim.apply_freeze(model, freeze)
    model.to(device)
    base_lr = float(opts.lr if opts.lr is not None else run_info.get("lr", t.learning_rate))
    if base_lr <= 0:
        raise ConfigError(f"--lr {base_lr} must be > 0")
    pretrain = init_from or (Path(run_info["init_from"]) if run_info.get("init_from") else None)
    cfg, overrides = effective_config(cfg, lr=base_lr, precision=precision, init_from=pretrain)
    meta_run = {"config_source": opts.config_name, "overrides": overrides,
                "init_from": str(pretrain) if pretrain else None, "freeze": freeze,
                "lr": base_lr, "precision": precision, "world_size": ctx.world_size,
                "device": device.type}

    # 4. validation
    valid_set = loaders.valid_set
    vsampler = EpochBatchSampler(len(valid_set), t.batch_size, shuffle=False, drop_last=False)
    valid_batches = DataLoader(valid_set, batch_sampler=vsampler, collate_fn=collate) \
        if ctx.is_main and len(valid_set) else None
    valid_samples = [valid_set[i] for i in range(min(t.test_size, len(valid_set)))] \
        if ctx.is_main else []
    objective = AcousticObjective(cfg, data.features, valid_batches, valid_samples)
    steps_per_epoch = len(sampler)
    valid_every = opts.valid_every if opts.valid_every is not None else \
        t.test_step * steps_per_epoch

    # 5. the run folder (rank 0)
    total = opts.max_steps if opts.max_steps is not None else t.full_epochs * steps_per_epoch
    logger = TrainLogger(run_dir, enabled=ctx.is_main, console=opts.console, total_steps=total,
                         log_every=opts.log_every)
    run = TrainRun(opts=opts, train=cfg.train, ctx=ctx, runtime=runtime, run_dir=run_dir,
                   objective=objective, model=model,
                   optimizer=optim.build_optimizer(model, t, base_lr), base_lr=base_lr,
                   loader=loaders.loader, sampler=sampler, steps_per_epoch=steps_per_epoch,
                   valid_every=valid_every, logger=logger, meta_run=meta_run,
                   data_order={"items": len(data.train.items), "batch_size": t.batch_size,
                               "world_size": ctx.world_size, "seed": t.seed})
    if ckpt:
        restore(run, ckpt, resume_path)
    if ctx.is_main:
        write_run_files(run, cfg, report, resume_path, data)
    return run


@dataclass
class RunLoaders:
    """A run's validated items and its loaders (no training compute yet)."""

    data: RunData
    sampler: EpochBatchSampler  # resumable order of the training batches
    loader: DataLoader  # training batches
    valid_set: FeatureDataset  # validation items (unbatched)


def load_run_data(opts: TrainOptions, cfg: Config, ctx: DistContext, device: torch.device, *,
                  vec_noise_std: float) -> RunLoaders:
    """Index (built when absent), item and feature checks, and the training loader.

    Args:
        vec_noise_std: the V2 unit perturbation of the training set (0 = clean features).

    Raises:
        GvcError subclasses: bad index or data, or too few items for one batch per process.
    """
    t = cfg.train
    train_files = Path(opts.train_files or t.train_files)
    valid_files = Path(opts.valid_files or t.valid_files)
    ensure_index(opts.data, train_files, valid_files, opts.valid_count, t.seed, ctx)
    data = load_data(cfg, train_files, valid_files)
    sampler = EpochBatchSampler(len(data.train.items), t.batch_size, seed=t.seed,
                                rank=ctx.rank, world_size=ctx.world_size)
    if len(sampler) == 0:
        raise DataLayoutError(
            f"{len(data.train.items)} usable training utterances make no full batch of "
            f"{t.batch_size} per process ({ctx.world_size} process(es)); lower "
            "train.batch_size or add data")
    train_set = FeatureDataset(data.train.items, max_frames=t.max_frames,
                               vec_noise_std=vec_noise_std, seed=t.seed, train=True)
    workers = t.num_workers
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate,
                        num_workers=workers, persistent_workers=workers > 0,
                        pin_memory=device.type == "cuda",
                        worker_init_fn=quiet_worker if workers else None)
    valid_set = FeatureDataset(data.valid.items, max_frames=t.max_frames, seed=t.seed,
                               train=False)
    return RunLoaders(data, sampler, loader, valid_set)


def write_run_files(run: TrainRun, cfg: Config, report: Any, resume_path: Path | None,
                    data: RunData) -> None:
    """`config.yaml` and `run.json` in the run folder, and the start-of-run log lines."""
    from gvc import __version__
    from gvc.config import dump_config
    from gvc.fileio import save_json

    dump_config(cfg, run.run_dir / "config.yaml")
    save_json(run.run_dir / "run.json", {
        **run.meta_run, "gvc_version": __version__, "resumed_from": str(resume_path)
        if resume_path else None, "features": data.features,
        "train_items": len(data.train.items), "too_short": data.train.too_short,
        "valid_items": len(data.valid.items), "steps_per_epoch": run.steps_per_epoch,
        "train_files": str(data.train_files), "valid_files": str(data.valid_files)})
    if report is not None and run.opts.console is not None:
        from gvc.training.finetune import init_table

        run.opts.console.print(init_table(report, run.meta_run["freeze"], run.base_lr))
    for key, (was, now) in run.meta_run["overrides"].items():
        log.info("%s: config %r, this run %r (recorded in %s)", key, was, now,
                 run.run_dir / "config.yaml")
    where = f"resuming {resume_path} at step {run.state.step}" if resume_path else "new run"
    log.info("%s in %s: %d training items (%d too short), %d validation, %d steps/epoch, "
             "%s on %s x%d", where, run.run_dir, len(data.train.items), data.train.too_short,
             len(data.valid.items), run.steps_per_epoch, run.runtime.precision.value,
             run.runtime.device, run.ctx.world_size)
