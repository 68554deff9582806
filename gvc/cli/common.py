"""Options shared by every command (one meaning per name) and the console/logging set-up."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from gvc.presets import list_presets

Jobs = Annotated[
    int, typer.Option("--jobs", "-j", min=1, help="Worker processes for CPU-bound work.")
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Redo outputs that are up to date; replace folders made with other settings.",
    ),
]
Shard = Annotated[
    str,
    typer.Option(
        "--shard",
        metavar="K/N",
        help="Process only slice K of N of the corpus (1-based), for cron jobs or array tasks.",
    ),
]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
Precision = Annotated[
    str, typer.Option("--precision", help="fp32, bf16 or fp16 (fp16 on CUDA only).")
]
Config = Annotated[str, typer.Option(
    "--config", "-c", help=f"A YAML file or a preset name ({', '.join(list_presets())}).")]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Only warnings, errors and the summary.")
]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Debug logging, tracebacks of per-file failures.")
]
Resume = Annotated[str, typer.Option(
    "--resume",
    help="auto (latest checkpoint in the run folder, if any), none, or a checkpoint path.")]
TrainPrecision = Annotated[str | None, typer.Option(
    "--precision",
    help="fp32 or bf16 (autocast; bf16 wants a GPU). Default: train.precision.")]
LogEvery = Annotated[int, typer.Option(
    "--log-every", min=1, help="Steps between TensorBoard scalars / log lines.")]
VerboseLong = Annotated[
    bool, typer.Option("--verbose", help="Debug logging, tracebacks of per-file failures.")
]

console = Console()


def setup_logging(quiet: bool = False, verbose: bool = False) -> Console:
    """Install the one log handler: Rich on a terminal, plain timestamped lines otherwise (cron)."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    if console.is_terminal:
        handler: logging.Handler = RichHandler(
            console=console, show_path=False, rich_tracebacks=verbose
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(console.file)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    root.addHandler(handler)
    root.setLevel(level)
    return console


def finish(report) -> None:
    """Print a batch report and exit 1 when any input failed."""
    report.render(console)
    if not report.ok:
        raise typer.Exit(1)


def finish_run(result, out_name: str) -> None:
    """Say how a training run (`gvc train`, `train-vocoder`, `distill`) ended and how to export
    its checkpoint; exit 130 when a signal interrupted it."""
    console.print(f"{result.reason} at step {result.step} (epoch {result.epoch}); checkpoint: "
                  f"{result.checkpoint or 'no checkpoint'}", highlight=False)
    if result.checkpoint:
        console.print(f"export it with: gvc export --checkpoint {result.checkpoint} --out "
                      f"{out_name}", highlight=False)
    if result.reason == "interrupted":
        raise typer.Exit(130)
