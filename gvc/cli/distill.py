"""`gvc distill`: consistency distillation of a gvc model file into a one-step student."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gvc.cli.common import Device, Quiet, Verbose, console, finish_run, setup_logging
from gvc.layout import DEFAULT_DATA


def distill(
    teacher: Annotated[Path, typer.Option(
        "--teacher",
        help="The model file to distil (gvc export output, imported Grad-SVC files included; "
             "score, flow or edm decoder).")],
    data: Annotated[Path, typer.Option(
        "--data",
        help="Data root (the data_gvc/ tree) made with the teacher's features; "
             "the index is built from it when absent.")] = DEFAULT_DATA,
    run_dir: Annotated[Path | None, typer.Option(
        "--run-dir",
        help="Run folder: checkpoints, TensorBoard, resolved config. Default: "
             "logs/distill-<teacher name>.")] = None,
    files: Annotated[Path | None, typer.Option(
        "--files",
        help="Folder of train.txt/valid.txt. Default: the teacher config's "
             "train.train_files/valid_files.")] = None,
    valid: Annotated[int, typer.Option(
        "--valid", min=0,
        help="Validation utterances when the index is built here.")] = 10,
    resume: Annotated[str, typer.Option(
        "--resume",
        help="auto (latest checkpoint in the run folder, if any), none, or a checkpoint"
             " path.")] = "auto",
    max_steps: Annotated[int | None, typer.Option(
        "--max-steps", min=0,
        help="Stop after this many optimizer steps in total; 0 writes the untrained "
             "student.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate (default 1e-4).")] = None,
    grid_points: Annotated[int | None, typer.Option(
        "--grid-points", min=2,
        help="N points of the discretised teacher ODE (default 40; CoMoSVC 25).")] = None,
    teacher_solver: Annotated[str | None, typer.Option(
        "--teacher-solver",
        help="heun (default, 2 teacher NFE per step) or euler.")] = None,
    target_ema: Annotated[float | None, typer.Option(
        "--target-ema",
        help="EMA rate of the target network (default 0.95).")] = None,
    export_ema: Annotated[float | None, typer.Option(
        "--export-ema",
        help="EMA rate of the exported slow copy (default 0.999).")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", min=1,
        help="Default: the teacher config's train.batch_size.")] = None,
    device: Device = "auto",
    log_every: Annotated[int, typer.Option(
        "--log-every", min=1,
        help="Steps between TensorBoard scalars / log lines.")] = 10,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Distil a model into a consistency student (encoder frozen); export it with gvc export.

    The student keeps the teacher's time variable and start noise, so --temperature and --seed
    mean what they meant for the teacher; Ctrl-C saves a checkpoint and stops.
    """
    from gvc.training.distill import DistillOptions
    from gvc.training.distill import distill as run_distill

    setup_logging(quiet, verbose)
    opts = DistillOptions(
        teacher=teacher, data=data, run_dir=run_dir,
        train_files=files / "train.txt" if files else None,
        valid_files=files / "valid.txt" if files else None, valid_count=valid, resume=resume,
        lr=lr, max_steps=max_steps, grid_points=grid_points, teacher_solver=teacher_solver,
        target_ema=target_ema, export_ema=export_ema, batch_size=batch_size, device=device,
        log_every=log_every, console=console)
    result = run_distill(opts)
    finish_run(result, "student.gvc.pth")


def register(app: typer.Typer) -> None:
    """Add `distill` to `app`."""
    app.command("distill")(distill)
