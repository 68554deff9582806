"""The `gvc` command line: thin Typer commands over library functions.

Commands parse options, resolve defaults and call the library in-process. A `GvcError` becomes one
red line and exit code 2; a batch with failed inputs exits 1; success exits 0. Heavy libraries are
imported inside the commands so that `gvc --help` stays fast.
"""

from __future__ import annotations

import sys

import typer

from gvc import __version__
from gvc.cli import dataset as _dataset
from gvc.cli import demo as _demo
from gvc.cli import distill as _distill
from gvc.cli import export as _export
from gvc.cli import infer as _infer
from gvc.cli import prepare as _prepare
from gvc.cli import train as _train

app = typer.Typer(
    name="gvc",
    help="Diffusion-based singing voice conversion (a tested rebuild of Grad-SVC).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gvc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Diffusion-based singing voice conversion (a tested rebuild of Grad-SVC)."""


_prepare.register(app)
_dataset.register(app)
_train.register(app)
_distill.register(app)
_export.register(app)
_infer.register(app)
_demo.register(app)


def main() -> None:
    """Console-script entry point: run the app, turning a GvcError into one line and exit 2."""
    from gvc.errors import GvcError

    try:
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except GvcError as exc:
        from gvc.cli.common import console

        console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise
