"""The generic training loop: `run_loop(TrainRun) -> TrainResult` and the functions it uses.

A `TrainRun` (one typed object, built by a set-up function such as
`gvc.training.runner.setup_acoustic`) holds everything a run needs; the model-specific part is
its `Objective` (`gvc.training.objective`). The loop does, for any objective:

* steps with named losses summed into the total, NaN/Inf checks on losses and gradients
  (`TrainingDiverged`, nothing saved), gradient clipping per objective group, the LR schedule;
* the objective's phase rule (DDP is re-wrapped when the phase changes) and its after-step hook;
* atomic, rotated checkpoints that carry everything needed to continue bit-for-bit (optimizer,
  position, RNG, the objective's extra state);
* graceful stop on SIGINT/SIGTERM (checkpoint, then `interrupted`), `max_steps`, validation;
* several processes under `torchrun` (DDP); rank 0 alone logs and writes files.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gvc.errors import CheckpointError, TrainingDiverged
from gvc.training import optim
from gvc.training.checkpoint import checkpoint_path, rotate, save_checkpoint
from gvc.training.distributed import DistContext, all_reduce_sum, wrap
from gvc.training.logging import TrainLogger
from gvc.training.options import StepRecord, TrainOptions, TrainResult
from gvc.training.signals import StopRequest
from gvc.training.state import TrainState, rng_state, seed_step, set_rng_state

if TYPE_CHECKING:
    from gvc.config import TrainConfig
    from gvc.device import Runtime
    from gvc.training.objective import Objective
    from gvc.training.sampler import EpochBatchSampler

log = logging.getLogger(__name__)


@dataclass
class TrainRun:
    """Everything one training run holds (see the module docstring).

    Attributes:
        opts: the caller's options; train: the `train:` block in force (schedule, clipping,
            checkpoint cadence); ctx / runtime: process place, device and precision.
        run_dir: checkpoints, logs and `run.json`.
        objective: the model-specific half; model: the trained module (unwrapped).
        optimizer / base_lr: the optimizer and the learning rate the schedule starts from.
        state: position; loader / sampler: training batches in a resumable order.
        steps_per_epoch, valid_every: batches per epoch; validation interval in steps (0 = off).
        logger: TensorBoard, metrics.jsonl, progress; meta_run: the run's record (`run.json`).
        data_order: what fixes the batch order (a resume warns when it differs).
        last_checkpoint / saved_step: the newest checkpoint written or resumed from.
    """

    opts: TrainOptions
    train: TrainConfig
    ctx: DistContext
    runtime: Runtime
    run_dir: Path
    objective: Objective
    model: nn.Module
    optimizer: torch.optim.Optimizer
    base_lr: float
    loader: Iterable[Any]
    sampler: EpochBatchSampler
    steps_per_epoch: int
    valid_every: int
    logger: TrainLogger
    meta_run: dict[str, Any]
    data_order: dict[str, int]
    state: TrainState = field(default_factory=TrainState)
    last_checkpoint: Path | None = None
    saved_step: int | None = None

    @cached_property
    def clip_groups(self) -> dict[str, list[nn.Parameter]]:
        """The objective's clip groups, computed once (freezing is settled before the first
        step), not on every step."""
        return self.objective.clip_groups(self.model)

    @property
    def total_steps(self) -> int:
        """Steps of the whole schedule (`full_epochs` epochs)."""
        return self.train.full_epochs * self.steps_per_epoch


def train_step(run: TrainRun, module: nn.Module, batch: Any, joint: bool,
               stop: StopRequest) -> tuple[StepRecord, bool]:
    """One optimizer step; returns (its record, with losses averaged over processes; whether a
    stop was requested on any process).

    Raises:
        TrainingDiverged: a non-finite loss (before the update) or gradient (before the step).
    """
    t, st = run.train, run.state
    gen = seed_step(t.seed, st.step, run.ctx.rank)
    lr = optim.lr_at(t, run.base_lr, st.step, st.epoch, run.total_steps)
    optim.set_lr(run.optimizer, lr)
    b = batch.to(run.runtime.device, non_blocking=True)
    with run.runtime.autocast():
        losses = module(b, joint, gen)
    names = list(losses)
    values = torch.stack([losses[k].detach().float() for k in names])
    flags = torch.stack([(~torch.isfinite(values)).any().float(),
                         torch.tensor(float(stop.requested), device=values.device)])
    reduced = all_reduce_sum(torch.cat([values, flags]), run.ctx).tolist()
    means = {k: v / run.ctx.world_size for k, v in zip(names, reduced, strict=False)}
    means["total"] = sum(means[k] for k in names)
    if reduced[-2] > 0:
        _diverged(run, "loss", means, batch.names)
    run.optimizer.zero_grad(set_to_none=True)
    sum(losses.values()).backward()
    norms = optim.clip_gradients(run.clip_groups, t.grad_clip)
    if not all(torch.isfinite(torch.tensor(v)) for v in norms.values()):
        _diverged(run, "gradient", {**means, **{f"{k}_grad_norm": v for k, v in norms.items()}},
                  batch.names)
    run.optimizer.step()
    return StepRecord(st.step + 1, st.epoch, joint, means, lr, norms), reduced[-1] > 0


def _diverged(run: TrainRun, what: str, metrics: dict[str, float], names: list[str]) -> None:
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    last = run.last_checkpoint or "none yet"
    st = run.state
    raise TrainingDiverged(
        f"non-finite {what} at step {st.step + 1} (epoch {st.epoch + 1}): {shown}; batch "
        f"{', '.join(names)}; nothing was saved, the last good checkpoint is {last}. Resume from "
        "it with --resume auto, and lower --lr, use --precision fp32, or check those utterances "
        "(gvc check)")


def save(run: TrainRun) -> Path | None:
    """Checkpoint (rank 0) and rotate; returns the path (None on other ranks)."""
    if not run.ctx.is_main:
        run.saved_step = run.state.step
        return None
    path = save_checkpoint(checkpoint_path(run.run_dir, run.state.step), model=run.model,
                           optimizer=run.optimizer, state=run.state.to_dict(), rng=rng_state(),
                           meta=run.objective.checkpoint_meta(run), data_order=run.data_order,
                           extra=run.objective.state_dict())
    run.last_checkpoint, run.saved_step = path, run.state.step
    for old in rotate(run.run_dir, run.train.keep_last, run.train.keep_every):
        log.debug("removed old checkpoint %s", old)
    return path


def restore(run: TrainRun, ckpt: dict[str, Any], path: Path) -> None:
    """Load optimizer, position, RNG and objective state from a checkpoint (model loaded);
    warn when the data order differs from the checkpoint's."""
    try:
        run.optimizer.load_state_dict(ckpt["optim"])
    except (ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{path}: the optimizer state does not fit ({exc}); resume with the same --freeze "
            "as the run had") from exc
    run.state = TrainState.from_dict(ckpt["train_state"])
    set_rng_state(ckpt["rng"])
    run.objective.load_state_dict(ckpt.get("objective") or {})
    run.last_checkpoint, run.saved_step = path, run.state.step
    if ckpt.get("data_order", run.data_order) != run.data_order:
        log.warning("the data order differs from the interrupted run's (%s now, %s then): the "
                    "continuation is not identical to an uninterrupted run", run.data_order,
                    ckpt.get("data_order"))
    if run.state.batch_in_epoch >= run.steps_per_epoch:  # fewer items than before
        run.state.epoch, run.state.batch_in_epoch = run.state.epoch + 1, 0


def run_loop(run: TrainRun) -> TrainResult:
    """Train until the last epoch, `max_steps`, or a stop signal; always closes the logger."""
    try:
        return _loop(run)
    finally:
        run.logger.close()


def _loop(run: TrainRun) -> TrainResult:
    t, st, opts = run.train, run.state, run.opts
    if opts.max_steps is not None and st.step >= opts.max_steps:
        return _result(run, "max_steps")
    stop = StopRequest().install()
    joint = run.objective.joint(st)
    module = wrap(run.objective.loss_module(run.model), run.ctx, run.runtime.device, joint)
    run.model.train()
    run.logger.start(st.step)
    step_time, tick = 0.0, time.perf_counter()
    try:
        while st.epoch < t.full_epochs:
            if run.objective.joint(st) != joint:
                joint = run.objective.joint(st)
                module = wrap(run.objective.loss_module(run.model), run.ctx, run.runtime.device,
                              joint)
                run.logger.message(f"epoch {st.epoch + 1}: decoder loss on (joint phase)")
            run.sampler.set_epoch(st.epoch, st.batch_in_epoch)
            for batch in run.loader:
                record, stop_now = train_step(run, module, batch, joint, stop)
                run.objective.after_step(run)
                st.step += 1
                st.batch_in_epoch += 1
                epoch_done = st.batch_in_epoch >= run.steps_per_epoch
                if epoch_done:
                    st.epoch, st.batch_in_epoch = st.epoch + 1, 0
                now = time.perf_counter()
                dt, tick = now - tick, now
                step_time = dt if step_time == 0 else 0.9 * step_time + 0.1 * dt
                run.logger.step(st.step, record.epoch, record.metrics(),
                                1.0 / max(step_time, 1e-9))
                for cb in opts.callbacks:
                    cb(record)
                if run.valid_every and st.step % run.valid_every == 0 and run.ctx.is_main:
                    run.objective.validate(run, joint)
                if stop_now:
                    save(run)
                    return _result(run, "interrupted", signal=stop.signal_name)
                if opts.max_steps is not None and st.step >= opts.max_steps:
                    save(run)
                    return _result(run, "max_steps")
                if _due(run, epoch_done):
                    save(run)
        if run.saved_step != st.step:
            save(run)
        return _result(run, "finished")
    finally:
        stop.uninstall()


def _due(run: TrainRun, epoch_done: bool) -> bool:
    t, s = run.train, run.state.step
    return bool((t.checkpoint_every and s % t.checkpoint_every == 0)
                or (t.keep_every and s % t.keep_every == 0)
                or (epoch_done and run.state.epoch % t.save_step == 0))


def _result(run: TrainRun, reason: str, signal: str | None = None) -> TrainResult:
    st = run.state
    if signal:
        run.logger.message(f"{signal}: stopped at step {st.step}, saved {run.last_checkpoint}")
    if run.ctx.is_main:
        from gvc.fileio import save_json

        with open(run.run_dir / "run.json", encoding="utf-8") as fh:
            info = json.load(fh)
        info["last"] = {"step": st.step, "epoch": st.epoch, "reason": reason,
                        "checkpoint": str(run.last_checkpoint) if run.last_checkpoint else None}
        save_json(run.run_dir / "run.json", info)
    return TrainResult(run.run_dir, st.step, st.epoch, reason, run.last_checkpoint)
