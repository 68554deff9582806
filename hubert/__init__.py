"""Content encoders: HuBERT-Soft speech units [T, 256] at 50 frames/s from 16 kHz audio.

Public API:
    ContentEncoder: the interface (`units`, `units_batch`, `describe`).
    HubertSoft / load_content_encoder: bshall's HuBERT-Soft loaded from its published file.
    WindowConfig: window and batch settings for long files.
    save_random_checkpoint: a random-weight model in the published layout (demo, benchmarks).
"""

from hubert.base import ContentEncoder
from hubert.checkpoint import DEFAULT_CHECKPOINT, save_random_checkpoint
from hubert.soft import HubertSoft, load_content_encoder
from hubert.windows import WindowConfig

__all__ = [
    "DEFAULT_CHECKPOINT",
    "ContentEncoder",
    "HubertSoft",
    "WindowConfig",
    "load_content_encoder",
    "save_random_checkpoint",
]
