"""What a kind of training gives the generic loop: the `Objective` role and the acoustic one.

The loop (`gvc.training.loop`) knows optimizer steps, checkpoints, signals, DDP and logging; an
`Objective` knows the model: how a batch becomes named losses, which parameter groups are
clipped apart, the phase schedule, validation, checkpoint metadata, and what to do after each
optimizer step (e.g. update an EMA copy). Acoustic-model training (`gvc train`) is
`AcousticObjective`; other trainings (a vocoder, a distilled student) are other objectives
run by the same loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from gvc.config import Config
    from gvc.training.loop import TrainRun
    from gvc.training.state import TrainState


class Objective(ABC):
    """The model-specific half of a training run (see the module docstring)."""

    @abstractmethod
    def loss_module(self, model: nn.Module) -> nn.Module:
        """A module whose `forward(batch, joint, generator)` returns `{name: scalar loss}`.

        The loop sums the values into the total it back-propagates, wraps the module in DDP
        when several processes run, and logs every name. The names must be the same at every
        step (a loss that is off in a phase is returned as 0). `batch` is already on the device.
        """

    def joint(self, state: TrainState) -> bool:
        """Whether the full objective is on at `state` (False: a warm-up phase that leaves some
        parameters without gradients). The phase must be a function of the position alone."""
        return True

    @abstractmethod
    def clip_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters in groups whose gradient norms are clipped (and logged) apart."""

    @abstractmethod
    def checkpoint_meta(self, run: TrainRun) -> dict[str, Any]:
        """The `gvc` metadata entry of a training checkpoint of this run."""

    def validate(self, run: TrainRun, joint: bool) -> None:
        """Validation on rank 0 (losses and media to the logger); nothing by default."""
        return None

    def after_step(self, run: TrainRun) -> None:
        """Called after every optimizer step on every rank (e.g. an EMA update)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Extra training state saved in checkpoints (e.g. EMA weights); none by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved (nothing by default)."""
        return None


class AcousticLossModule(nn.Module):
    """`GradSVC.compute_loss` as `forward`, so DDP can wrap it (keys stay under `model.`)."""

    def __init__(self, model: nn.Module, segment_frames: int, mu_noise_std: float) -> None:
        super().__init__()
        self.model = model
        self.segment_frames, self.mu_noise_std = segment_frames, mu_noise_std

    def forward(self, batch: Any, joint: bool,
                generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """See `GradSVC.compute_loss` (`batch`: a `gvc.training.data.Batch` on the device)."""
        return self.model.compute_loss(batch.vec, batch.pit, batch.spk, batch.mel, batch.lengths,
                                       segment_frames=self.segment_frames, skip_diff=not joint,
                                       mu_noise_std=self.mu_noise_std, generator=generator)


class AcousticObjective(Objective):
    """Grad-SVC acoustic-model training: encoder-only epochs, then the decoder objective.

    Epochs `0 .. fast_epochs - 1` train the encoder only (prior + SSIM + speaker-reversal
    losses, the decoder is not run); from epoch `fast_epochs` on the decoder family's loss joins.

    Args:
        cfg: the run's resolved config; features: its `features` metadata record.
        valid_batches: validation batches (rank 0; None: no validation loss).
        valid_samples: items synthesised for the validation images (rank 0).
    """

    def __init__(self, cfg: Config, features: dict[str, Any], valid_batches: Any = None,
                 valid_samples: list[Any] | None = None) -> None:
        self.cfg, self.features = cfg, features
        self.valid_batches, self.valid_samples = valid_batches, valid_samples or []

    def loss_module(self, model: nn.Module) -> nn.Module:
        t = self.cfg.train
        return AcousticLossModule(model, t.segment_frames, t.mu_noise_std)

    def joint(self, state: TrainState) -> bool:
        return state.joint(self.cfg.train.fast_epochs)

    def clip_groups(self, model: nn.Module) -> dict[str, list[nn.Parameter]]:
        """`enc` (embeddings and encoder) and `dec` (the decoder), as Grad-SVC clips them."""
        groups: dict[str, list[nn.Parameter]] = {"enc": [], "dec": []}
        for name, p in model.named_parameters():
            if p.requires_grad:
                groups["dec" if name.startswith("decoder.") else "enc"].append(p)
        return groups

    def checkpoint_meta(self, run: TrainRun) -> dict[str, Any]:
        from gvc.export.meta import build_meta

        return build_meta(self.cfg, self.features, kind="training",
                          source={"kind": "gvc-training"}, run=run.meta_run)

    def validate(self, run: TrainRun, joint: bool) -> None:
        from gvc.training.validate import validation_images, validation_loss

        if self.valid_batches is None:
            return
        seed = self.cfg.train.seed + 1
        metrics = validation_loss(run.model, self.valid_batches, self.cfg, run.runtime, seed)
        run.logger.validation(run.state.step, metrics)
        images = validation_images(run.model, self.valid_samples, self.cfg, run.runtime, joint,
                                   seed)
        run.logger.images(run.state.step, images)
