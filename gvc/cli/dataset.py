"""Dataset commands: `index` (training lists) and `check` (statistics and problems)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gvc.cli.common import Quiet, Verbose, console, setup_logging
from gvc.layout import DEFAULT_DATA

Data = Annotated[Path, typer.Option("--data", help="Data root (the data_gvc/ tree).")]


def index(
    data: Data = DEFAULT_DATA,
    files: Annotated[Path, typer.Option(
        "--files", help="Folder for train.txt and valid.txt.")] = Path("files"),
    valid: Annotated[int, typer.Option(
        "--valid", min=0, help="Validation utterances, spread over singers.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the train/validation split.")] = 37,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Write Grad-SVC's training lists (mel|vec|pit|spk per line) for every complete utterance."""
    from gvc.dataset.index import build_index
    from gvc.layout import DataTree

    setup_logging(quiet, verbose)
    res = build_index(DataTree(data), files, valid_count=valid, seed=seed)
    for utt, absent in res.missing:
        console.print(
            f"[yellow]skipped[/yellow] {utt.key}: no {', '.join(absent)}", highlight=False
        )
    console.print(
        f"wrote {res.train_path} ({len(res.train)} utterances) and {res.valid_path} "
        f"({len(res.valid)})"
    )


def check(
    data: Data = DEFAULT_DATA,
    min_seconds: Annotated[float, typer.Option(
        "--min-seconds", help="Training crop; shorter utterances are reported.")] = 2.5,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Per-singer statistics and every problem of a data tree with its fix; exit 1 if one blocks."""
    import numpy as np
    from rich.table import Table

    from gvc.dataset.check import check_tree
    from gvc.layout import DataTree

    setup_logging(quiet, verbose)
    res = check_tree(DataTree(data), min_frames=int(round(min_seconds * 100)))
    table = Table(title=f"{data}", header_style="bold")
    for col in ("singer", "files", "minutes", "min s", "median s", "max s", "voiced"):
        table.add_column(col, justify="left" if col == "singer" else "right")
    for singer, st in sorted(res.singers.items()):
        secs = np.array(st.seconds) if st.seconds else np.zeros(1)
        voiced = f"{100 * np.mean(st.voiced):.0f}%" if st.voiced else "-"
        table.add_row(
            singer,
            str(st.files),
            f"{secs.sum() / 60:.1f}",
            f"{secs.min():.1f}",
            f"{np.median(secs):.1f}",
            f"{secs.max():.1f}",
            voiced,
        )
    console.print(table)
    for p in res.problems:
        tag = "[red]error[/red]" if p.blocking else "[yellow]warning[/yellow]"
        console.print(f"{tag} {p.where}: {p.what} -> {p.fix}", highlight=False, soft_wrap=True)
    blocking = sum(p.blocking for p in res.problems)
    console.print(
        f"{len(res.problems)} problem(s), {blocking} blocking"
        if res.problems
        else "no problems found"
    )
    if not res.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the dataset commands to `app`."""
    app.command("index")(index)
    app.command("check")(check)
