"""Atomic file writing: a temp file in the destination folder, then a rename.

A run killed at any moment (even SIGKILL) leaves either the old file or the complete new one,
never a truncated file: the temp file is flushed to disk (fsync) before the rename, so a power
cut cannot leave an empty file under the final name either. Temp names start with a dot, so folder
walkers ignore leftovers, and they carry the writer's process id, so the next run can remove the
ones whose writer is gone (`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_TEMP_NAME = re.compile(r"^\..+\.tmp-(\d+)$")


def temp_path_for(path: Path) -> Path:
    """A hidden, process-unique temp name in the same folder as `path`."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (signal 0 checks, sends nothing)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    # A killed worker whose parent died too can linger as a zombie (in containers nobody may reap
    # it): it still answers signal 0 but will never write again.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def remove_stale_temps(folders: Iterable[Path], step: str) -> list[Path]:
    """Delete the temp files in `folders` (not recursive) whose writing process is gone; log it.

    A run killed mid-write (SIGKILL, out of memory) leaves its hidden temp file behind; the rename
    never happened, so the file is garbage. Temps of live processes (a concurrent shard) stay.
    Call it at the start of a run (`step` names the run in the warning); returns the removed paths.
    """
    removed: list[Path] = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            m = _TEMP_NAME.match(entry.name)
            if m is None or not entry.is_file(follow_symlinks=False) or _process_alive(int(m[1])):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    if removed:
        logging.getLogger(__name__).warning(
            "%s: removed %d temp file(s) left by an interrupted run (e.g. %s)",
            step, len(removed), removed[0])
    return removed


def _fsync(path: Path) -> None:
    """Flush a file's data (or a folder's entries) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path to write to; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        yield tmp
        _fsync(tmp)  # the data first, so the rename can never expose an unwritten file
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # the rename itself (not every filesystem allows it)
            _fsync(path.parent)
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
