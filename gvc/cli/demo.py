"""`gvc demo`: the quickstart on a generated corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gvc.cli.common import Jobs, Quiet, Verbose, console, setup_logging


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo writes.")] = Path("demo"),
    steps: Annotated[int, typer.Option("--steps", min=1, help="Training steps of the tiny preset (about 1 s each on a 2-core CPU).")] = 400,
    preset: Annotated[str, typer.Option("--preset", help="tiny (score decoder, writes gvc.pth) or tiny-flow (rectified flow, writes gvc-tiny-flow.pth); the prepared corpus is shared.")] = "tiny",
    jobs: Jobs = 2,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run the whole pipeline on a generated multi-singer corpus: prepare, train, export, convert."""
    from gvc.demo import DemoSettings, run_demo

    setup_logging(quiet, verbose)
    if preset not in ("tiny", "tiny-flow"):
        from gvc.errors import ConfigError

        raise ConfigError(f"--preset {preset}: the demo trains tiny or tiny-flow (CPU-sized)")
    result = run_demo(out, DemoSettings(train_steps=steps, jobs=jobs, preset=preset),
                      console=console)
    if result.interrupted:
        raise typer.Exit(130)
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the demo command to `app`."""
    app.command("demo")(demo)
