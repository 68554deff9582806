"""Progress display and the end-of-run summary of a batch step."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

log = logging.getLogger(__name__)


@dataclass
class Report:
    """Outcome of one batch step."""

    step: str
    done: int = 0
    skipped: int = 0
    failures: list[tuple[Path, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def failed(self) -> int:
        """Number of inputs that failed."""
        return len(self.failures)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio processed per second of wall time (0 when nothing ran)."""
        return (
            self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 and self.done else 0.0
        )

    def render(self, console: Console) -> None:
        """Print the summary table and one line per failure."""
        table = Table(title=f"{self.step} summary", show_header=True, header_style="bold")
        for col in ("done", "skipped", "failed", "audio", "wall", "x real time"):
            table.add_column(col, justify="right")
        table.add_row(
            str(self.done),
            str(self.skipped),
            f"[red]{self.failed}[/red]" if self.failed else "0",
            f"{self.audio_seconds:.1f} s",
            f"{self.wall_seconds:.1f} s",
            f"{self.realtime_factor:.1f}x" if self.done else "-",
        )
        console.print(table)
        for path, reason in self.failures:
            console.print(f"[red]failed[/red] {path}: {reason}", highlight=False, soft_wrap=True)


class ProgressSink:
    """One progress display across all workers: a live bar on a terminal, log lines otherwise."""

    def __init__(self, console: Console, description: str, total: int, live: bool | None = None):
        self.total = total
        self.count = 0
        self.description = description
        self.live = console.is_terminal if live is None else live
        self._start = time.monotonic()
        self._last_log = self._start
        self._next_pct = 10
        self._progress: Progress | None = None
        if self.live and total:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self._task = self._progress.add_task(description, total=total, rate="")

    def __enter__(self) -> ProgressSink:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self) -> None:
        """Count one finished input (done or failed)."""
        self.count += 1
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.count / elapsed
        if self._progress is not None:
            self._progress.update(self._task, advance=1, rate=f"{rate:.1f} files/s")
            return
        pct = 100 * self.count // max(self.total, 1)
        now = time.monotonic()
        if pct >= self._next_pct or now - self._last_log >= 30 or self.count == self.total:
            eta = (self.total - self.count) / rate if rate > 0 else 0.0
            log.info(
                "%s: %d/%d files (%d%%), %.1f files/s, ETA %.0fs",
                self.description, self.count, self.total, pct, rate, eta,
            )
            self._next_pct = (pct // 10 + 1) * 10
            self._last_log = now
