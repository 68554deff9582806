"""Presenting an `EvalResult`: a console table, CSV, JSON and F0 overlay plots.

CSV has one row per scored file with the columns of `EvalResult.columns` (an undefined score is an
empty cell); JSON holds the same rows (undefined = null) plus the settings, a summary per score
(mean, 95 % interval, count) and the failures. Files are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from gvc.evaluation.metrics import Summary, summarise
from gvc.evaluation.scoring import EvalResult
from gvc.fileio import atomic_path, save_text

#: Units shown in the console table.
UNITS = {"f0_rmse_cents": "cents", "mcd_db": "dB", "mel_l1": "ln mel", "duration_diff_s": "s",
         "voiced_frames": "frames"}
#: Whether a higher value is better (shown in the table header as an arrow).
HIGHER_IS_BETTER = {"fpc": True, "vuv_f1": True, "spk_sim": True, "src_spk_sim": True,
                    "spk_sim_gain": True, "f0_rmse_cents": False, "vuv_error": False,
                    "mcd_db": False, "mel_l1": False}


def summaries(result: EvalResult) -> dict[str, Summary]:
    """Mean and 95 % interval of every score over the scored files."""
    return {s: summarise([row[s] for row in result.rows]) for s in result.scores}


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def render(result: EvalResult, console: Console, per_file: bool = False) -> None:
    """Print the per-file table (when `per_file`), the summary and one line per failure."""
    if per_file and result.rows:
        table = Table(title=f"gvc eval ({result.mode}): per file", header_style="bold")
        table.add_column("file")
        for s in result.scores:
            table.add_column(s, justify="right")
        for row in result.rows:
            table.add_row(row["file"], *(_fmt(row[s]) for s in result.scores))
        console.print(table)
    table = Table(title=f"gvc eval ({result.mode}): {len(result.rows)} file(s) scored, "
                        f"{len(result.failures)} failed", header_style="bold")
    for col, justify in (("score", "left"), ("unit", "left"), ("mean", "right"),
                         ("95% CI", "right"), ("n", "right")):
        table.add_column(col, justify=justify)
    for name, summ in summaries(result).items():
        arrow = {True: " (higher better)", False: " (lower better)"}.get(
            HIGHER_IS_BETTER.get(name), "")
        n = f"{summ.n}" + (f" ({summ.dropped} undefined)" if summ.dropped else "")
        table.add_row(name + arrow, UNITS.get(name, ""), _fmt(summ.mean),
                      "-" if not math.isfinite(summ.ci95) else f"±{summ.ci95:.3f}", n)
    console.print(table)
    for path, reason in result.failures:
        console.print(f"[red]failed[/red] {path}: {reason}", highlight=False, soft_wrap=True)


def _plain(value: Any) -> Any:
    """JSON-safe value: NaN/Inf -> None, numpy scalars -> Python."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_csv(result: EvalResult) -> str:
    """One header line, then one line per scored file (undefined scores are empty cells)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(result.columns), lineterminator="\n")
    writer.writeheader()
    for row in result.rows:
        writer.writerow({k: "" if _plain(v) is None else _plain(v) for k, v in row.items()})
    return buf.getvalue()


def to_json(result: EvalResult) -> dict[str, Any]:
    """The whole result as a JSON-ready dict (see the module docstring)."""
    return {
        "mode": result.mode,
        "columns": list(result.columns),
        "settings": {k: _plain(v) for k, v in result.settings.items()},
        "files": [{k: _plain(v) for k, v in row.items()} for row in result.rows],
        "summary": {name: {"mean": _plain(s.mean), "ci95": _plain(s.ci95), "n": s.n,
                           "undefined": s.dropped}
                    for name, s in summaries(result).items()},
        "failures": [{"file": str(p), "reason": r} for p, r in result.failures],
    }


def write_csv(result: EvalResult, path: Path) -> None:
    """Write `to_csv` atomically."""
    save_text(Path(path), to_csv(result))


def write_json(result: EvalResult, path: Path) -> None:
    """Write `to_json` atomically (NaN never appears: it is null)."""
    save_text(Path(path), json.dumps(to_json(result), indent=2, allow_nan=False) + "\n")


def plot_f0(result: EvalResult, folder: Path) -> list[Path]:
    """One PNG per scored file, `<folder>/<file key>.f0.png`: both F0 tracks over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref_label = "source F0" if result.mode == "conversion" else "reference F0"
    shift = result.settings.get("shift") or 0
    if shift:
        ref_label += f" shifted {shift:+g} st"
    written = []
    for row in result.rows:
        ref, gen = result.tracks[row["file"]]
        fig, ax = plt.subplots(figsize=(10, 3.5), constrained_layout=True)
        for track, label in ((ref, ref_label), (gen, "generated F0")):
            ax.plot(np.arange(len(track)) / 100.0, np.where(track > 0, track, np.nan), label=label)
        ax.set_xlabel("seconds")
        ax.set_ylabel("Hz")
        ax.set_title(f"{row['file']}: F0 RMSE {_fmt(row['f0_rmse_cents'], 1)} cents, "
                     f"FPC {_fmt(row['fpc'])}, V/UV F1 {_fmt(row['vuv_f1'])}")
        ax.legend(loc="upper right")
        out = Path(folder) / f"{row['file']}.f0.png"
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        plt.close(fig)
        written.append(out)
    return written
