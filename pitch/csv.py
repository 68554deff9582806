"""Grad-SVC's hand-editable pitch CSV: one line per 10 ms frame, `<m>m <s>s <ms>,<Hz>`.

Lines look like `0m 1s  20,220` (milliseconds right-aligned in a field of 3). Grad-SVC writes
whole Hz (truncated) and cannot read decimals back; `write_csv(..., decimals=N)` may keep
decimals and `read_csv` accepts both, so an edited `220.5` no longer crashes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gvc.errors import GvcError
from gvc.fileio import save_text


def format_csv(f0: np.ndarray, decimals: int = 0) -> str:
    """CSV text of an F0 track (Hz, 100 fps). `decimals=0` truncates to int as Grad-SVC does."""
    lines = []
    for i, hz in enumerate(np.asarray(f0, dtype=np.float64)):
        ms_total = 10 * i
        minute, rest = divmod(ms_total, 60000)
        sec, ms = divmod(rest, 1000)
        value = str(int(hz)) if decimals == 0 else f"{hz:.{decimals}f}"
        lines.append(f"{minute}m {sec}s {ms:3d},{value}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_csv(path: Path, f0: np.ndarray, decimals: int = 0) -> None:
    """Write the CSV atomically."""
    save_text(Path(path), format_csv(f0, decimals))


def read_csv(path: Path) -> np.ndarray:
    """Read a pitch CSV (integer or decimal Hz, last comma-separated field) -> [N] float64 Hz."""
    path = Path(path)
    values = []
    for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        field = line.rsplit(",", 1)[-1].strip()
        try:
            hz = float(field)
        except ValueError:
            raise GvcError(
                f"{path}:{n}: {field!r} is not a frequency in Hz; fix that line"
            ) from None
        if not np.isfinite(hz) or hz < 0:
            raise GvcError(f"{path}:{n}: {field!r} must be a finite, non-negative Hz value")
        values.append(hz)
    return np.asarray(values, dtype=np.float64)
