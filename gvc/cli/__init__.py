"""The `gvc` command line: thin Typer commands over library functions.

Commands parse options, resolve defaults and call the library in-process. A `GvcError` becomes one
red line and exit code 2; a batch with failed inputs exits 1; success exits 0. Heavy libraries are
imported inside the commands so that `gvc --help` stays fast.
"""

from __future__ import annotations

import sys
import threading

import typer

from gvc import __version__
from gvc.cli import dataset as _dataset
from gvc.cli import demo as _demo
from gvc.cli import distill as _distill
from gvc.cli import eval as _eval
from gvc.cli import export as _export
from gvc.cli import infer as _infer
from gvc.cli import prepare as _prepare
from gvc.cli import train as _train
from gvc.cli import vocoder as _vocoder

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
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Diffusion-based singing voice conversion (a tested rebuild of Grad-SVC)."""


_prepare.register(app)
_dataset.register(app)
_train.register(app)
_distill.register(app)
_export.register(app)
_infer.register(app)
_vocoder.register(app)
_demo.register(app)
_eval.register(app)


def _click_exception_type() -> type[Exception]:
    """The `ClickException` class of the click that typer actually runs on.

    Older typer releases (0.12.5 tested) run on the installed `click`; newer ones (0.29 tested)
    carry their own copy, `typer._click`, whose exceptions an `import click` does not recognise.
    `typer.BadParameter` is a usage error in every release, so its base class named
    `ClickException` is the right one either way.
    """
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    raise RuntimeError(
        "typer.BadParameter does not derive from a ClickException"
    )  # pragma: no cover


def _show_usage_error(exc: Exception) -> None:
    """Print a usage error as typer's own standalone mode does: usage line, hint and error box."""
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
    except ImportError:  # pragma: no cover - typer without rich
        exc.show()  # type: ignore[attr-defined]


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler stopping the job) ends the run like Ctrl-C: exit 130, not a kill."""
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point: run the app and map the outcome to gvc's exit codes.

    0 success, 1 some inputs failed, 2 a usage or configuration error (typer's usage box or one red
    `error:` line for a `GvcError`), 130 interrupted by SIGINT or SIGTERM.
    """
    import signal

    from gvc.errors import GvcError

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        rc = app(standalone_mode=False)
    except GvcError as exc:
        from gvc.cli.common import console

        console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:  # typer releases that raise it even in non-standalone mode
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):  # older typer turns Ctrl-C into Abort
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except _click_exception_type() as exc:
        _show_usage_error(exc)
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    if rc == 130:  # newer typer turns Ctrl-C into Exit(130) and returns the code
        print("interrupted", file=sys.stderr)
    sys.exit(rc if isinstance(rc, int) else 0)
