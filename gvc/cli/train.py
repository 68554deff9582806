"""`gvc train`: train or fine-tune the acoustic model (one process, or several under torchrun)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gvc.cli.common import (
    Config,
    Device,
    LogEvery,
    Quiet,
    Resume,
    TrainPrecision,
    Verbose,
    console,
    finish_run,
    setup_logging,
)
from gvc.layout import DEFAULT_DATA


def train(
    config: Config = "base",
    data: Annotated[Path, typer.Option(
        "--data", help="Data root (the data_gvc/ tree); the index is built from it when absent."
        )] = DEFAULT_DATA,
    run_dir: Annotated[Path | None, typer.Option(
        "--run-dir",
        help="Run folder: checkpoints, TensorBoard, resolved config. Default: logs/<config "
        "name>.")] = None,
    files: Annotated[Path | None, typer.Option(
        "--files", help="Folder of train.txt/valid.txt. Default: the config's "
        "train.train_files/valid_files.")] = None,
    valid: Annotated[
        int,
        typer.Option("--valid", min=0, help="Validation utterances when the index is built here."),
    ] = 10,
    resume: Resume = "auto",
    init_from: Annotated[Path | None, typer.Option(
        "--init-from", help="Fine-tune from these weights (an exported gvc.pth or Grad-SVC's "
        "gvc.pretrain.pth); strict.")] = None,
    freeze: Annotated[list[str] | None, typer.Option(
        "--freeze", help="Modules to freeze (repeat or comma-separate): pit_emb, spk_emb, "
        "encoder[.prenet|.speaker|.encoder|.proj_m], decoder; 'finetune' = Grad-SVC's "
        "set. Default: none.")] = None,
    lr: Annotated[float | None, typer.Option(
        "--lr", help="Learning rate. Default: train.learning_rate (Grad-SVC fine-tuned with 2e-5)."
        )] = None,
    max_steps: Annotated[int | None, typer.Option(
        "--max-steps", min=0, help="Stop after this many optimizer steps in total (tests, demos)."
        )] = None,
    device: Device = "auto",
    precision: TrainPrecision = None,
    log_every: LogEvery = 10,
    valid_every: Annotated[int | None, typer.Option(
        "--valid-every", min=1,
        help="Steps between validations. Default: every train.test_step epochs.")] = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Train the Grad-SVC acoustic model on a data tree; Ctrl-C saves a checkpoint and stops.

    Several GPUs or nodes: torchrun --nproc_per_node N -m gvc train ... (rank 0 logs and saves).
    """
    from gvc.config import load_config
    from gvc.training import TrainOptions
    from gvc.training import train as run_training

    rank = int(os.environ.get("RANK", "0"))
    setup_logging(quiet or rank != 0, verbose)
    cfg = load_config(config)
    name = Path(config).stem if Path(config).suffix in (".yaml", ".yml") else config
    opts = TrainOptions(
        config=cfg, config_name=name, data=data, run_dir=run_dir,
        train_files=files / "train.txt" if files else None,
        valid_files=files / "valid.txt" if files else None,
        valid_count=valid, resume=resume, init_from=init_from, freeze=tuple(freeze or ()),
        lr=lr, max_steps=max_steps, device=device, precision=precision, log_every=log_every,
        valid_every=valid_every, console=console if rank == 0 else None)
    result = run_training(opts)
    if rank != 0:
        return
    finish_run(result, "gvc.pth")


def register(app: typer.Typer) -> None:
    """Add `train` to `app`."""
    app.command("train")(train)
