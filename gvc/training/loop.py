"""The training loop: `train(TrainOptions) -> TrainResult`.

Grad-SVC's schedule with its bugs fixed: `fast_epochs` encoder-only epochs, then joint training
with the diffusion loss from epoch `fast_epochs` on (also on resume); Adam/AdamW with an optional
schedule; encoder and decoder gradients clipped separately (embeddings in the encoder group).
Checkpoints are atomic, rotated, and carry everything needed to continue bit-for-bit (optimizer,
position, RNG). A NaN/Inf loss or gradient stops the run with `TrainingDiverged` and saves nothing.
Several processes run under `torchrun` (DDP); rank 0 alone logs and writes files.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gvc.errors import CheckpointError
from gvc.training import optim
from gvc.training.checkpoint import checkpoint_path, rotate, save_checkpoint
from gvc.training.distributed import DistContext, all_reduce_sum, init_distributed, shutdown, wrap
from gvc.training.logging import TrainLogger
from gvc.training.options import StepRecord, TrainingDiverged, TrainOptions, TrainResult
from gvc.training.signals import StopRequest
from gvc.training.state import TrainState, rng_state, seed_step, set_rng_state

if TYPE_CHECKING:
    from gvc.config import Config

log = logging.getLogger(__name__)

LOSS_KEYS = ("prior", "ssim", "spk", "diff")
__all__ = ["Loop", "StepRecord", "TrainOptions", "TrainResult", "TrainingDiverged", "train"]


def train(opts: TrainOptions) -> TrainResult:
    """Run (or continue) a training run; see `TrainOptions`.

    Raises:
        GvcError subclasses, all before the first step: bad data, index, config, checkpoint.
        TrainingDiverged: a NaN/Inf loss or gradient (the last good checkpoint is kept).
    """
    ctx, device = init_distributed(opts.device)
    try:
        from gvc.training.runner import Runner

        return Runner(opts, ctx, device).run()
    finally:
        shutdown(ctx)


class Loop:
    """The step-level machinery; `gvc.training.runner.Runner` sets its fields up."""

    opts: TrainOptions
    cfg: Config  # the resolved config
    ctx: DistContext
    runtime: Any
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    state: TrainState
    loader: Any
    sampler: Any
    steps_per_epoch: int
    valid_every: int
    meta_run: dict[str, Any]
    features: dict[str, Any]
    logger: TrainLogger
    run_dir: Path
    last_checkpoint: Path | None = None
    saved_step: int | None = None  # step of the newest checkpoint written or resumed from
    base_lr: float
    clip_groups: tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]
    valid_batches: Any  # DataLoader of validation batches (rank 0), or None
    data_order: dict[str, int]
    valid_samples: list[Any]

    def _total_steps(self) -> int:
        return self.cfg.train.full_epochs * self.steps_per_epoch

    def _step(self, batch: Any, joint: bool, module: torch.nn.Module,
              stop: StopRequest) -> tuple[dict[str, float], bool]:
        """One optimizer step; returns (metrics, stop requested on any rank)."""
        t, st = self.cfg.train, self.state
        gen = seed_step(t.seed, st.step, self.ctx.rank)
        lr = optim.lr_at(t, self.base_lr, st.step, st.epoch, self._total_steps())
        optim.set_lr(self.optimizer, lr)
        b = batch.to(self.runtime.device, non_blocking=True)
        with self.runtime.autocast():
            losses = module(b.vec, b.pit, b.spk, b.mel, b.lengths, not joint, t.segment_frames,
                            t.mu_noise_std, gen)
        values = torch.stack([v.detach().float() for v in losses])
        flags = torch.stack([(~torch.isfinite(values)).any().float(),
                             torch.tensor(float(stop.requested), device=values.device)])
        reduced = all_reduce_sum(torch.cat([values, flags]), self.ctx).tolist()
        metrics = {k: v / self.ctx.world_size for k, v in zip(LOSS_KEYS, reduced[:4], strict=True)}
        metrics["total"] = sum(metrics[k] for k in LOSS_KEYS)
        if reduced[4] > 0:
            self._diverged("loss", metrics, batch.names)
        total = losses[0] + losses[1] + losses[2] + losses[3]
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        enc, dec = optim.clip_gradients(self.clip_groups, t.grad_clip)
        if not (torch.isfinite(torch.tensor(enc)) and torch.isfinite(torch.tensor(dec))):
            self._diverged("gradient", {**metrics, "enc_grad_norm": enc, "dec_grad_norm": dec},
                           batch.names)
        self.optimizer.step()
        metrics.update(enc_grad_norm=enc, dec_grad_norm=dec, lr=lr)
        return metrics, reduced[5] > 0

    def _diverged(self, what: str, metrics: dict[str, float], names: list[str]) -> None:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        last = self.last_checkpoint or "none yet"
        raise TrainingDiverged(
            f"non-finite {what} at step {self.state.step + 1} (epoch {self.state.epoch + 1}): "
            f"{shown}; batch {', '.join(names)}; nothing was saved, the last good checkpoint is "
            f"{last}. Resume from it with --resume auto, and lower --lr, use --precision fp32, or "
            "check those utterances (gvc check)")

    def _save(self) -> Path | None:
        """Checkpoint (rank 0) and rotate; returns the path."""
        if not self.ctx.is_main:
            self.saved_step = self.state.step
            return None
        from gvc.export.meta import build_meta

        t = self.cfg.train
        meta = build_meta(self.cfg, self.features, kind="training",
                          source={"kind": "gvc-training"}, run=self.meta_run)
        path = save_checkpoint(checkpoint_path(self.run_dir, self.state.step), model=self.model,
                               optimizer=self.optimizer, state=self.state.to_dict(),
                               rng=rng_state(), meta=meta, data_order=self.data_order)
        self.last_checkpoint, self.saved_step = path, self.state.step
        for old in rotate(self.run_dir, t.keep_last, t.keep_every):
            log.debug("removed old checkpoint %s", old)
        return path

    def _restore(self, ckpt: dict[str, Any], path: Path) -> None:
        """Load optimizer, position and RNG from a training checkpoint (model already loaded)."""
        try:
            self.optimizer.load_state_dict(ckpt["optim"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(
                f"{path}: the optimizer state does not fit ({exc}); resume with the same --freeze "
                "as the run had") from exc
        self.state = TrainState.from_dict(ckpt["train_state"])
        set_rng_state(ckpt["rng"])

    def _validate(self, joint: bool) -> None:
        if not (self.ctx.is_main and self.valid_batches is not None):
            return
        from gvc.training.validate import validation_images, validation_loss

        seed = self.cfg.train.seed + 1
        metrics = validation_loss(self.model, self.valid_batches, self.cfg, self.runtime, seed)
        self.logger.validation(self.state.step, metrics)
        images = validation_images(self.model, self.valid_samples, self.cfg, self.runtime,
                                   joint, seed)
        self.logger.images(self.state.step, images)

    def loop(self) -> TrainResult:
        """Train until the last epoch, `max_steps`, or a stop signal."""
        t, st, opts = self.cfg.train, self.state, self.opts
        if opts.max_steps is not None and st.step >= opts.max_steps:
            return self._result("max_steps")
        stop = StopRequest().install()
        joint = st.joint(t.fast_epochs)
        module = wrap(self.model, self.ctx, self.runtime.device, joint)
        self.model.train()
        self.logger.start(st.step)
        step_time, tick = 0.0, time.perf_counter()
        try:
            while st.epoch < t.full_epochs:
                if st.joint(t.fast_epochs) != joint:
                    joint = st.joint(t.fast_epochs)
                    module = wrap(self.model, self.ctx, self.runtime.device, joint)
                    self.logger.message(f"epoch {st.epoch + 1}: diffusion loss on (joint phase)")
                self.sampler.set_epoch(st.epoch, st.batch_in_epoch)
                for batch in self.loader:
                    metrics, stop_now = self._step(batch, joint, module, stop)
                    st.step += 1
                    st.batch_in_epoch += 1
                    epoch_done = st.batch_in_epoch >= self.steps_per_epoch
                    if epoch_done:
                        st.epoch, st.batch_in_epoch = st.epoch + 1, 0
                    now = time.perf_counter()
                    dt, tick = now - tick, now
                    step_time = dt if step_time == 0 else 0.9 * step_time + 0.1 * dt
                    self.logger.step(st.step, st.epoch - int(epoch_done), metrics,
                                     1.0 / max(step_time, 1e-9))
                    record = StepRecord(st.step, st.epoch - int(epoch_done), joint,
                                        {k: metrics[k] for k in (*LOSS_KEYS, "total")},
                                        metrics["lr"], (metrics["enc_grad_norm"],
                                                        metrics["dec_grad_norm"]))
                    for cb in opts.callbacks:
                        cb(record)
                    if self.valid_every and st.step % self.valid_every == 0:
                        self._validate(joint)
                    if stop_now:
                        self._save()
                        return self._result("interrupted", signal=stop.signal_name)
                    if opts.max_steps is not None and st.step >= opts.max_steps:
                        self._save()
                        return self._result("max_steps")
                    if self._due(epoch_done):
                        self._save()
            if self.saved_step != st.step:
                self._save()
            return self._result("finished")
        finally:
            stop.uninstall()

    def _due(self, epoch_done: bool) -> bool:
        t, s = self.cfg.train, self.state.step
        return bool((t.checkpoint_every and s % t.checkpoint_every == 0)
                    or (t.keep_every and s % t.keep_every == 0)
                    or (epoch_done and self.state.epoch % t.save_step == 0))

    def _result(self, reason: str, signal: str | None = None) -> TrainResult:
        st = self.state
        if signal:
            self.logger.message(
                f"{signal}: stopped at step {st.step}, saved {self.last_checkpoint}"
            )
        if self.ctx.is_main:
            with open(self.run_dir / "run.json", encoding="utf-8") as fh:
                info = json.load(fh)
            info["last"] = {
                "step": st.step,
                "epoch": st.epoch,
                "reason": reason,
                "checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
            }
            from gvc.fileio import save_json

            save_json(self.run_dir / "run.json", info)
        return TrainResult(self.run_dir, st.step, st.epoch, reason, self.last_checkpoint)
