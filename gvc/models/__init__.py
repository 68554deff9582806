"""Grad-SVC's acoustic model with its original parameter names.

* `acoustic`: `GradSVC` (embeddings + encoder + U-Net decoder), losses, inference.
* `encoder` / `attention`: prenet (V1/V2), GRL speaker classifier, relative/RoPE transformer.
* `unet`: the Grad-TTS `GradLogPEstimator2d` network every decoder family drives.
* `embeddings`: `f0_to_coarse`, masks, length helpers; `ssim`: the SSIM loss.
* `checkpoint`: strict loading (`read_checkpoint`, `load_acoustic_state`).
"""

from gvc.models.acoustic import LOSS_NAMES, AcousticOutput, EncoderState, GradSVC
from gvc.models.checkpoint import load_acoustic_state, read_checkpoint
from gvc.models.embeddings import f0_to_coarse, fix_len_compatibility

__all__ = [
    "LOSS_NAMES",
    "AcousticOutput",
    "EncoderState",
    "GradSVC",
    "f0_to_coarse",
    "fix_len_compatibility",
    "load_acoustic_state",
    "read_checkpoint",
]
