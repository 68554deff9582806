"""Atomic file writing: a temp file in the destination folder, then a rename.

A run killed at any moment (even SIGKILL) leaves either the old file or the complete new one,
never a truncated file. Temp names start with a dot, so folder walkers ignore leftovers.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


def temp_path_for(path: Path) -> Path:
    """A hidden, process-unique temp name in the same folder as `path`."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path to write to; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Binary file handle whose content appears at `path` only once fully written."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        yield fh


def save_npy(path: Path, array: np.ndarray) -> None:
    """`np.save` atomically, keeping the exact file name (no `.npy` appended)."""
    with atomic_open(path) as fh:
        np.save(fh, array)


def save_torch(path: Path, obj: Any) -> None:
    """`torch.save` atomically."""
    import torch

    with atomic_open(path) as fh:
        torch.save(obj, fh)


def save_json(path: Path, obj: Any) -> None:
    """Pretty JSON, atomically."""
    with atomic_open(path) as fh:
        fh.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def save_text(path: Path, text: str) -> None:
    """UTF-8 text, atomically."""
    with atomic_open(path) as fh:
        fh.write(text.encode("utf-8"))
