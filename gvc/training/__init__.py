"""Training of the Grad-SVC acoustic model (`gvc train`).

* `loop`: `train(TrainOptions) -> TrainResult` and the step machinery.
* `options`: `TrainOptions`, `TrainResult`, `StepRecord`, `TrainingDiverged`.
* `runner`: run set-up (index, data and checkpoint checks, model, optimizer, loaders).
* `data` / `sampler`: Grad-SVC's dataset semantics; seeded, resumable, DDP-aware batch order.
* `features`: feature-folder metadata checks; `setup`: index, resume and config resolution.
* `state`: `TrainState`, phase rule, RNG state; `optim`: optimizer, LR schedule, freezing, clipping.
* `checkpoint`: atomic `ckpt-<step>.pt`, rotation, latest; `finetune`: strict `--init-from`.
* `distributed`: torchrun/DDP; `logging`: TensorBoard, progress, `metrics.jsonl`;
  `validate`: validation loss and images; `signals`: graceful Ctrl-C/SIGTERM.
"""

from gvc.training.loop import train
from gvc.training.options import StepRecord, TrainingDiverged, TrainOptions, TrainResult
from gvc.training.state import TrainState

__all__ = ["StepRecord", "TrainOptions", "TrainResult", "TrainState", "TrainingDiverged", "train"]
