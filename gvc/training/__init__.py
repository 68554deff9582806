"""Training (`gvc train`): a generic loop driven by a model-specific objective.

* `runner`: `train(TrainOptions) -> TrainResult` for the acoustic model, and its run set-up
  (index, data and checkpoint checks, model, optimizer, loaders).
* `loop`: `TrainRun` (everything a run holds) and the functions that train it, any objective.
* `objective`: the `Objective` role (named losses, clip groups, phases, validation, hooks) and
  `AcousticObjective`.
* `options`: `TrainOptions`, `TrainResult`, `StepRecord`.
* `data` / `sampler`: Grad-SVC's dataset semantics; seeded, resumable, DDP-aware batch order.
* `features`: feature-folder metadata checks; `setup`: index, resume and config resolution.
* `state`: `TrainState`, phase rule, RNG state; `optim`: optimizer, LR schedule, freezing, clipping.
* `checkpoint`: atomic `ckpt-<step>.pt`, rotation, latest; `finetune`: strict `--init-from`.
* `distributed`: torchrun/DDP; `logging`: TensorBoard, progress, `metrics.jsonl`;
  `validate`: validation loss and images; `signals`: graceful Ctrl-C/SIGTERM.
"""

from gvc.errors import TrainingDiverged
from gvc.training.options import StepRecord, TrainOptions, TrainResult
from gvc.training.runner import train
from gvc.training.state import TrainState

__all__ = ["StepRecord", "TrainOptions", "TrainResult", "TrainState", "TrainingDiverged", "train"]
