"""Helpers shared by tests: running the CLI and writing odd audio files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf


def run_gvc(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m gvc ARGS` in `cwd` with output captured (stdout is not a terminal)."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gvc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def tone(seconds: float, sr: int, hz: float = 220.0, amp: float = 0.5) -> np.ndarray:
    """A plain sine [L] float32."""
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write(path: Path, audio: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    """Write audio, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sr, subtype=subtype)
    return path


def harmonic(
    seconds: float, sr: int, hz: float = 220.0, amp: float = 0.5, partials: int = 8
) -> np.ndarray:
    """A steady harmonic tone (1/k amplitudes) [L] float32: what every F0 method can track."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, partials + 1))
    return (amp * x / np.abs(x).max()).astype(np.float32)
