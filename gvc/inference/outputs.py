"""Where conversion results go, and the optional intermediate files.

Single file: the output defaults to `<stem>.gvc.wav` next to the input (never a fixed name in the
working directory); an `--out` folder receives that name; an output that is the input itself is
refused. Intermediates sit next to the output and share its stem:

    <stem>.pitch.wav   NSF excitation of the shifted F0 (32 kHz), Grad-SVC's gvc_pitch.wav
    <stem>.mel.png     the converted log-mel with the F0 curve on top
    <stem>.mel.pt      the converted log-mel, float32 [100, T] (Grad-SVC's `.mel.pt` layout)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gvc.errors import ConfigError

OUTPUT_TAG = ".gvc"
WAV = ".wav"


def default_output(wave: Path) -> Path:
    """`<folder>/<stem>.gvc.wav` for input `<folder>/<stem>.<ext>`."""
    wave = Path(wave)
    return wave.with_name(f"{wave.stem}{OUTPUT_TAG}{WAV}")


def resolve_output(wave: Path, out: Path | None) -> Path:
    """The output file of a single-file conversion.

    Args:
        wave: the input audio file.
        out: `--out`: None (next to the input), an existing folder, or a file path (`.wav` is
            appended when it has another suffix).

    Raises:
        ConfigError: the output would be the input file.
    """
    wave = Path(wave)
    if out is None:
        path = default_output(wave)
    elif Path(out).is_dir():
        path = Path(out) / default_output(wave).name
    else:
        path = Path(out)
        if path.suffix.lower() != WAV:
            path = path.with_name(path.name + WAV)
    if path.resolve() == wave.resolve():
        raise ConfigError(f"--out {path} is the input file; refusing to overwrite the input "
                          "(choose another name or leave --out out for <stem>.gvc.wav)")
    return path


@dataclass(frozen=True)
class Intermediates:
    """Paths of the optional intermediate files of one output."""

    pitch_wav: Path
    mel_png: Path
    mel_pt: Path

    @classmethod
    def of(cls, output: Path) -> Intermediates:
        """Paths sharing the output's stem (`song.gvc.wav` -> `song.gvc.pitch.wav`, ...)."""
        output = Path(output)
        stem = output.name[: -len(output.suffix)] if output.suffix else output.name
        return cls(output.with_name(f"{stem}.pitch.wav"), output.with_name(f"{stem}.mel.png"),
                   output.with_name(f"{stem}.mel.pt"))


def save_mel_tensor(path: Path, mel) -> None:
    """Write a log-mel as a float32 [n_mels, T] tensor with `torch.save` (atomic)."""
    from gvc.fileio import save_torch

    save_torch(Path(path), mel.detach().to("cpu").float().contiguous())


def save_mel_png(path: Path, mel, f0: np.ndarray, title: str = "") -> None:
    """Plot the log-mel [n_mels, T] with the F0 track (Hz, right axis) and write a PNG (atomic).

    Uses matplotlib's non-interactive Agg canvas (no display needed). Wide songs are drawn on a
    figure at most 40 inches wide; the image is resampled, the F0 curve is exact.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from gvc.fileio import atomic_path

    data = mel.detach().to("cpu").float().numpy()
    frames = data.shape[-1]
    seconds = np.arange(frames) / 100.0
    fig = Figure(figsize=(min(40.0, max(8.0, frames / 200.0)), 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    extent = (0.0, frames / 100.0, -0.5, data.shape[0] - 0.5)
    image = ax.imshow(data, origin="lower", aspect="auto", interpolation="none", extent=extent)
    fig.colorbar(image, ax=ax, pad=0.08, label="log magnitude")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel band")
    ax2 = ax.twinx()
    f0 = np.asarray(f0, dtype=np.float64)[:frames]
    ax2.plot(seconds[: len(f0)], np.where(f0 > 0, f0, np.nan), color="white", linewidth=0.8)
    ax2.set_ylabel("F0 (Hz)")
    ax2.set_ylim(0, max(100.0, float(np.nanmax(np.where(f0 > 0, f0, np.nan))) * 1.2)
                 if np.any(f0 > 0) else 1000.0)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
