"""`gvc distill`: consistency distillation of a trained gvc model into a one-step student.

Consistency distillation (Song et al. 2023, arXiv 2303.01469, Algorithm 2; CoMoSpeech, arXiv
2305.06908, for the mel decoder) along the teacher's probability-flow ODE, for any family with a
distillation view (`gvc.decoders.base.DecoderFamily.distill_grid` ... `drift`): score (Grad-SVC
V1/V2 and imported files), flow (V3 and gvc's) and EDM.

The student is a complete `GradSVC` whose decoder is `consistency` (`gvc.decoders.consistency`)
on the teacher's process. It starts as the teacher: every weight is copied from the teacher file,
so its one-step output is the teacher's denoised estimate. The embeddings and the encoder are
frozen (shared with the teacher, and exported with the student); only `decoder.estimator` trains.

One step, for a batch of clean mel segments x0 (state space) and the frozen encoder's mu:

    n ~ U{0 .. N-2};  t_lo, t_hi = grid[n], grid[n + 1]     (grid: data end first)
    x_hi = base.perturb(x0, t_hi, noise)                     (the forward marginal)
    x_lo = one teacher ODE step (Heun by default) from t_hi to t_lo
    loss = masked MSE( f_theta(x_hi, t_hi), f_target(x_lo, t_lo) )   (target: no gradient)

Two EMA copies of the student's U-Net are updated after every optimizer step (`after_step`) and
saved in checkpoints (`objective` entry): the target theta^- (rate `target_ema`, 0.95, the CM
paper's CD setting) and a slow copy (rate `export_ema`, 0.999, with warm-up rate
min(export_ema, (1 + step) / (10 + step)) so that short runs are not dominated by the initial
weights). `gvc export` writes the slow copy: the CM paper evaluates this slow EMA, as it averages
out the step-to-step noise of the online weights that CoMoSpeech/CoMoSVC export, and unlike the
0.95 target (Amphion's choice) it is not pulled by the last few steps.

The encoder sees clean features (no V2 perturbation of units or mu): the student learns the map
that inference runs.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gvc.errors import ConfigError
from gvc.training.objective import Objective
from gvc.training.options import RunOptions

if TYPE_CHECKING:
    from gvc.config import Config
    from gvc.decoders.base import DecoderFamily
    from gvc.decoders.consistency import ConsistencyDecoder
    from gvc.training.distributed import DistContext
    from gvc.training.loop import TrainRun
    from gvc.training.options import TrainResult

log = logging.getLogger(__name__)

DEFAULT_LR = 1e-4  # CoMoSpeech's distillation rate (CoMoSVC: 5e-5); higher rates collapse to noise


@dataclass(kw_only=True)
class DistillOptions(RunOptions):
    """Everything `gvc distill` passes to `distill` (keywords; `RunOptions` lists the shared
    ones; run_dir defaults to `logs/distill-<teacher name>`).

    Attributes:
        teacher: an exported gvc model file (any family but consistency; imported Grad-SVC
            files included).
        lr: learning rate (default 1e-4); grid_points, teacher_solver, target_ema, export_ema:
            `gvc.decoders.consistency.ConsistencyOptions` (None = its defaults).
        batch_size: override of the teacher config's `train.batch_size`.
    """

    teacher: Path
    lr: float | None = None
    grid_points: int | None = None
    teacher_solver: str | None = None
    target_ema: float | None = None
    export_ema: float | None = None
    batch_size: int | None = None


def student_config(teacher_cfg: Config, opts: DistillOptions, source: str) -> Config:
    """The student's config: the teacher's, with decoder `consistency` on the teacher's process.

    Sampling defaults become `consistency` x 1 (temperature and chunking stay the teacher's);
    training: no encoder-only phase, the distillation learning rate.

    Raises:
        ConfigError: the teacher is itself a consistency model, or a bad option value.
    """
    from gvc.config import config_from_dict, config_to_dict

    family = teacher_cfg.grad.decoder
    if family == "consistency":
        raise ConfigError(f"{source} is already a consistency model; distil its teacher instead")
    data = config_to_dict(teacher_cfg)
    block: dict[str, Any] = {"teacher": family, "teacher_options": data.pop(family, None)}
    for key in ("grid_points", "teacher_solver", "target_ema", "export_ema"):
        if getattr(opts, key) is not None:
            block[key] = getattr(opts, key)
    data["consistency"] = block
    data["grad"]["decoder"] = "consistency"
    data["infer"].update(sampler="consistency", steps=1, cfg_strength=0.0)
    data["train"].update(fast_epochs=0, learning_rate=float(opts.lr or DEFAULT_LR))
    if opts.batch_size is not None:
        data["train"]["batch_size"] = opts.batch_size
    return config_from_dict(data, f"{source} (distillation student)")


class DistillLossModule(nn.Module):
    """The consistency-distillation loss as `forward(batch, joint, generator)` (see module doc).

    Holds the student model (trained: `decoder.estimator` only), the frozen teacher decoder and
    the target U-Net (EMA, no gradient). `loss_module` rebuilds it when the phase changes; the
    teacher and target are the objective's, shared.
    """

    def __init__(self, model: nn.Module, teacher: DecoderFamily, target: nn.Module,
                 segment_frames: int) -> None:
        super().__init__()
        self.model, self.segment_frames = model, segment_frames
        # not submodules: DDP and `state_dict` see only the student
        object.__setattr__(self, "teacher", teacher)
        object.__setattr__(self, "target", target)

    def forward(self, batch: Any, joint: bool,
                generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """`{"consistency": scalar}` for a `gvc.training.data.Batch` on the device."""
        from gvc.decoders.noise import noise_from
        from gvc.models.acoustic import random_segments

        student: ConsistencyDecoder = self.model.decoder
        with torch.no_grad():
            enc = self.model.encode_full(batch.vec, batch.pit, batch.spk, batch.lengths)
            mel, mu, mask = random_segments([batch.mel.float(), enc.mu.float(),
                                             enc.mask.float()], batch.lengths,
                                            self.segment_frames, generator)
            spk = enc.spk_emb.float()
            x0, mu = student.normalise(mel, mask), student.normalise(mu, mask)
            b, grid = x0.shape[0], student.grid
            n = torch.randint(0, grid.shape[0] - 1, (b,), generator=generator)
            t_lo = grid[n].float().to(x0.device)
            t_hi = grid[n + 1].float().to(x0.device)
            x_hi = student.base.perturb(x0, mu, mask, t_hi, noise_from(generator)(x0))
            heun = student.options.teacher_solver == "heun"
            x_lo = self.teacher.ode_step(self.teacher.field(mu, mask, spk), x_hi, t_hi, t_lo, mu,
                                         heun=heun) * mask
            target = student.field(mu, mask, spk, self.target)(x_lo, t_lo)
        pred = student.field(mu, mask, spk)(x_hi, t_hi).float()
        loss = ((pred - target) ** 2 * mask).sum() / (mask.sum() * x0.shape[1])
        return {"consistency": loss}


def _ema_(average: nn.Module, online: nn.Module, rate: float) -> None:
    """average <- rate average + (1 - rate) online, parameters and floating buffers."""
    with torch.no_grad():
        for a, p in zip(average.state_dict().values(), online.state_dict().values(),
                        strict=True):
            if torch.is_floating_point(a):
                a.lerp_(p.to(a.dtype), 1.0 - rate)
            else:
                a.copy_(p)


class DistillObjective(Objective):
    """Consistency distillation (see module doc): the student's loss, EMA copies, metadata.

    Args:
        cfg: the student's config; features: the teacher's `features` record (the data tree
            agrees with it); teacher: the teacher model's decoder (frozen); teacher_path: its file.
    """

    def __init__(self, cfg: Config, features: dict[str, Any], teacher: DecoderFamily,
                 teacher_path: Path) -> None:
        self.cfg, self.features, self.teacher = cfg, features, teacher.requires_grad_(False)
        self.teacher_path = teacher_path
        self.target: nn.Module | None = None
        self.slow: nn.Module | None = None

    def attach(self, model: nn.Module) -> None:
        """Make the target and slow copies from the student's U-Net (before any resume)."""
        est = model.decoder.estimator
        self.target = copy.deepcopy(est).requires_grad_(False).eval()
        self.slow = copy.deepcopy(est).requires_grad_(False).eval()

    def loss_module(self, model: nn.Module) -> nn.Module:
        return DistillLossModule(model, self.teacher, self.target, self.cfg.train.segment_frames)

    def clip_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        """One group: the student's U-Net (nothing else trains)."""
        return {"dec": [p for p in model.decoder.parameters() if p.requires_grad]}

    def checkpoint_meta(self, run: TrainRun) -> dict[str, Any]:
        from gvc.export.meta import build_meta

        return build_meta(self.cfg, self.features, kind="training",
                          source={"kind": "gvc-distillation", "teacher": str(self.teacher_path)},
                          run=run.meta_run)

    def after_step(self, run: TrainRun) -> None:
        """Update the target (fixed rate) and the slow copy (warm-up rate), in that order."""
        o = self.cfg.decoder
        est = run.model.decoder.estimator
        _ema_(self.target, est, o.target_ema)
        step = run.state.step  # steps done before this one
        _ema_(self.slow, est, min(o.export_ema, (1.0 + step) / (10.0 + step)))

    def state_dict(self) -> dict[str, Any]:
        """`target`: the target U-Net; `export_weights`: the slow copy under the model's keys
        (`decoder.estimator.*`), which `gvc export` writes instead of the online weights."""
        return {"target": {k: v.detach().clone() for k, v in self.target.state_dict().items()},
                "export_weights": {f"decoder.estimator.{k}": v.detach().clone()
                                   for k, v in self.slow.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        prefix = "decoder.estimator."
        self.target.load_state_dict(state["target"])
        self.slow.load_state_dict({k[len(prefix):]: v
                                   for k, v in state["export_weights"].items()})


def distill(opts: DistillOptions) -> TrainResult:
    """Run (or continue) a distillation run; see `DistillOptions` and the module doc.

    Raises:
        GvcError subclasses, all before any compute: a bad or consistency teacher file, data
        that disagrees with the teacher's features, a bad checkpoint or option.
    """
    from gvc.training.distributed import init_distributed, shutdown
    from gvc.training.loop import run_loop, save

    ctx, device = init_distributed(opts.device)
    try:
        run = setup_distill(opts, ctx, device)
        if opts.max_steps == 0 and run.last_checkpoint is None:
            save(run)  # the untrained student (= the teacher's denoised estimate)
        return run_loop(run)
    finally:
        shutdown(ctx)


def setup_distill(opts: DistillOptions, ctx: DistContext, device: torch.device) -> TrainRun:
    """Teacher, student config, data checks, resume, student model, objective, run folder."""
    from gvc.device import Precision, Runtime
    from gvc.export import load_exported
    from gvc.models import GradSVC, load_acoustic_state
    from gvc.training import optim
    from gvc.training.features import check_reference
    from gvc.training.logging import TrainLogger
    from gvc.training.loop import TrainRun, restore
    from gvc.training.options import TrainOptions
    from gvc.training.runner import load_run_data, write_run_files
    from gvc.training.setup import resolve_resume, resume_checkpoint
    from gvc.training.state import seed_everything

    if opts.log_every < 1 or (opts.max_steps is not None and opts.max_steps < 0):
        raise ConfigError("--log-every must be >= 1 and --max-steps >= 0")
    if opts.lr is not None and opts.lr <= 0:
        raise ConfigError(f"--lr {opts.lr} must be > 0")
    # 1. the teacher (strict load; its config and features) and the student's config
    teacher_path = Path(opts.teacher)
    teacher, teacher_cfg, teacher_meta = load_exported(teacher_path)
    cfg = student_config(teacher_cfg, opts, str(teacher_path))
    t = cfg.train
    run_dir = Path(opts.run_dir) if opts.run_dir else Path("logs") / f"distill-{teacher_path.stem}"
    shared = {f.name: getattr(opts, f.name) for f in fields(RunOptions)}
    topts = TrainOptions(**{**shared, "run_dir": run_dir}, config=cfg,
                         config_name=f"distill-{teacher_path.stem}", precision="fp32")
    # 2. resume, data (the teacher's features), then the student
    resume_path = resolve_resume(opts.resume, run_dir)
    ckpt = resume_checkpoint(resume_path, cfg) if resume_path else None
    loaders = load_run_data(topts, cfg, ctx, device, vec_noise_std=0.0)
    check_reference(loaders.data.features, teacher_meta.get("features"), str(teacher_path))
    seed_everything(t.seed)
    model = GradSVC.from_config(cfg)
    load_acoustic_state(model, ckpt["model"] if ckpt else teacher.state_dict(),
                        resume_path or teacher_path)
    model.requires_grad_(False)
    model.decoder.estimator.requires_grad_(True)
    model.to(device)
    objective = DistillObjective(cfg, teacher_meta.get("features") or loaders.data.features,
                                 teacher.decoder.to(device), teacher_path)
    objective.attach(model)
    meta_run = {"config_source": topts.config_name, "teacher": str(teacher_path),
                "teacher_source": teacher_meta.get("source"), "lr": t.learning_rate,
                "precision": "fp32", "world_size": ctx.world_size, "device": device.type,
                "freeze": [], "init_from": None, "overrides": {}}
    total = opts.max_steps if opts.max_steps is not None else \
        t.full_epochs * len(loaders.sampler)
    logger = TrainLogger(run_dir, enabled=ctx.is_main, console=opts.console, total_steps=total,
                         log_every=opts.log_every)
    run = TrainRun(opts=topts, train=t, ctx=ctx, runtime=Runtime(device, Precision("fp32")),
                   run_dir=run_dir, objective=objective, model=model,
                   optimizer=optim.build_optimizer(model, t, t.learning_rate),
                   base_lr=t.learning_rate, loader=loaders.loader, sampler=loaders.sampler,
                   steps_per_epoch=len(loaders.sampler), valid_every=0, logger=logger,
                   meta_run=meta_run,
                   data_order={"items": len(loaders.data.train.items),
                               "batch_size": t.batch_size, "world_size": ctx.world_size,
                               "seed": t.seed})
    if ckpt:
        restore(run, ckpt, resume_path)
    if ctx.is_main:
        write_run_files(run, cfg, None, resume_path, loaders.data)
    return run
