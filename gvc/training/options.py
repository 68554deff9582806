"""What `train` takes and returns, and its one error type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gvc.errors import TrainingDiverged

if TYPE_CHECKING:
    from gvc.config import Config
    from vocoder.diffwave.config import VocoderConfig

__all__ = ["RunOptions", "StepRecord", "TrainOptions", "TrainResult", "TrainingDiverged"]


@dataclass(kw_only=True)
class RunOptions:
    """What every training run takes besides its model (`gvc train`, `gvc distill`).

    Attributes:
        data: data tree root, used to build the index when absent.
        run_dir: checkpoints, TensorBoard and the resolved config.
        train_files / valid_files: index files (default: the config's `train.*_files`).
        valid_count: validation utterances when the index is built here.
        resume: `auto` (latest checkpoint in run_dir, if any), `none`, or a checkpoint path.
        max_steps: stop after this many optimizer steps in total.
        device: `auto|cpu|cuda[:N]`.
        log_every: scalar/log-line interval in steps.
        console: Rich console for tables and the progress bar (None: logging only).
        callbacks: called with a `StepRecord` after every step, on every rank.
    """

    data: Path = Path("data_gvc")
    run_dir: Path | None = None
    train_files: Path | None = None
    valid_files: Path | None = None
    valid_count: int = 10
    resume: str = "auto"
    max_steps: int | None = None
    device: str = "auto"
    log_every: int = 10
    console: Any = None
    callbacks: list[Callable[[StepRecord], None]] = field(default_factory=list)


@dataclass(kw_only=True)
class TrainOptions(RunOptions):
    """Everything `gvc train` passes to `train` (CLI flags; the rest comes from `config`), keyword
    arguments only; `RunOptions` lists the shared ones (run_dir defaults to `logs/<config_name>`).

    Attributes:
        config: the loaded config. config_name: its name (default run folder `logs/<name>`).
        init_from: weights to fine-tune from (gvc or Grad-SVC file), loaded strictly.
        freeze: modules to freeze (`finetune` = Grad-SVC's set); default none.
        lr: learning rate (default `train.learning_rate`, or the resumed run's).
        precision: `fp32|bf16` (default `train.precision`).
        valid_every: validation interval in steps (default every `train.test_step` epochs).
    """

    config: Config | VocoderConfig  # VocoderConfig: gvc train-vocoder
    config_name: str = "run"
    init_from: Path | None = None
    freeze: tuple[str, ...] = ()
    lr: float | None = None
    precision: str | None = None
    valid_every: int | None = None


@dataclass
class StepRecord:
    """One finished optimizer step.

    Attributes:
        step: optimizer steps done, this one included; epoch: the 0-based epoch it belongs to.
        joint: whether the full objective was on (False in a warm-up phase).
        losses: the objective's named losses and their `total`, averaged over processes.
        lr: the learning rate used; grad_norms: pre-clip gradient norm per clip group.
    """

    step: int
    epoch: int
    joint: bool
    losses: dict[str, float]
    lr: float
    grad_norms: dict[str, float]

    def metrics(self) -> dict[str, float]:
        """Flat scalars for logging: losses, `<group>_grad_norm`, `lr`."""
        return {**self.losses, **{f"{k}_grad_norm": v for k, v in self.grad_norms.items()},
                "lr": self.lr}


@dataclass
class TrainResult:
    """How a run ended: `finished` (all epochs), `max_steps`, or `interrupted` (signal)."""

    run_dir: Path
    step: int
    epoch: int
    reason: str
    checkpoint: Path | None
