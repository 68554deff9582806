"""`gvc demo`: the quickstart on a generated corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gvc.cli.common import Jobs, Quiet, Verbose, setup_logging


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo writes.")] = Path("demo"),
    jobs: Jobs = 2,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run the pipeline on a small generated multi-singer corpus (no downloads needed)."""
    from gvc.demo import run_demo

    setup_logging(quiet, verbose)
    if not run_demo(out, jobs=jobs):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the demo command to `app`."""
    app.command("demo")(demo)
