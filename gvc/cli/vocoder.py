"""`gvc vocode` (copy-synthesis with any registered vocoder, see `vocoder.copysynth`) and
`gvc train-vocoder` (a DiffWave run on the generic training loop, see `vocoder.diffwave.train`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gvc.cli.common import (
    Device,
    Force,
    Jobs,
    LogEvery,
    Precision,
    Quiet,
    Resume,
    TrainPrecision,
    Verbose,
    finish,
    finish_run,
    setup_logging,
)
from gvc.errors import ConfigError
from gvc.layout import DEFAULT_DATA


def vocode(
    vocoder: Annotated[str, typer.Option(
        "--vocoder",
        help="A registered vocoder: nsf-bigvgan, diffwave or griffinlim.")] = "nsf-bigvgan",
    vocoder_ckpt: Annotated[Path | None, typer.Option(
        "--vocoder-ckpt",
        help="Vocoder weights (nsf-bigvgan: default "
             "bigvgan_pretrain/nsf_bigvgan_pretrain_32K.pth; diffwave: a gvc export "
             "file).")] = None,
    vocoder_config: Annotated[Path | None, typer.Option(
        "--vocoder-config",
        help="NSF-BigVGAN yaml (default: read the width from the checkpoint).")] = None,
    vocoder_steps: Annotated[int | None, typer.Option(
        "--vocoder-steps", min=1,
        help="DiffWave: 6 (the paper's fast schedule, default) or 50 (full reverse "
             "process).")] = None,
    mel: Annotated[Path | None, typer.Option(
        "--mel",
        help="A .mel.pt file, or a folder of them (searched recursively).")] = None,
    wave: Annotated[Path | None, typer.Option(
        "--wave",
        help="An audio file or folder: its mel is computed and resynthesised.")] = None,
    data: Annotated[Path | None, typer.Option(
        "--data",
        help="A data_gvc/ tree: vocode its mel/ (pitch from pitch/).")] = None,
    files: Annotated[Path | None, typer.Option(
        "--files",
        help="With --data: only the items of this index, e.g. files/valid.txt.")] = None,
    pit: Annotated[Path | None, typer.Option(
        "--pit",
        help="With one --mel file: its F0 (.pit.npy or pitch CSV), for vocoders that need"
             " F0.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o",
        help="Output .wav for one input; output folder for a folder or --data (default "
             "vocoded/).")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", min=0,
        help="Seed of the vocoder's noise; same seed, same audio.")] = 1234,
    jobs: Jobs = 1,
    force: Force = False,
    device: Device = "cpu",
    precision: Precision = "fp32",
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Copy-synthesis: render audio from ground-truth mels (stored, from audio, or a data tree's).

    Existing outputs newer than their input are skipped unless --force; failures are listed at
    the end (exit 1).
    """
    from gvc.device import resolve_device
    from prepare.engine import run_task
    from vocoder.copysynth import VocoderChoice, VocodeTask, plan_data, plan_mels, plan_waves
    from vocoder.registry import checkpoint_for, get_spec

    setup_logging(quiet, verbose)
    if sum(x is not None for x in (mel, wave, data)) != 1:
        raise ConfigError("give exactly one input: --mel FILE|DIR, --wave FILE|DIR or --data DIR")
    if files is not None and data is None:
        raise ConfigError("--files selects items of a data tree: it needs --data")
    if pit is not None and mel is None:
        raise ConfigError("--pit goes with one --mel file")
    spec = get_spec(vocoder)
    ckpt = checkpoint_for(spec, vocoder_ckpt)
    if spec.capabilities.weights and not ckpt.is_file():
        spec.load(ckpt, vocoder_config, None)  # raises the loader's message (where to get it)
    dev = str(resolve_device(device))
    choice = VocoderChoice(spec.name, ckpt, vocoder_config, vocoder_steps, dev, precision, seed)
    in_process = dev.startswith("cuda") or jobs <= 1
    loaded = choice.load()  # fail now on a bad file, steps or precision, not once per input
    problems = []
    if mel is not None:
        sources, plan = plan_mels(mel, out, pit)
    elif wave is not None:
        sources, plan = plan_waves(wave, out if out is not None or wave.is_file() else
                                   Path("vocoded"))
    else:
        sources, plan, problems = plan_data(data, out or Path("vocoded"), files)
    task = VocodeTask(choice, plan, spec.capabilities.needs_f0, in_process,
                      loaded if in_process else None)
    finish(run_task(task, sources, problems, jobs=jobs, force=force))


def train_vocoder(
    config: Annotated[str, typer.Option(
        "--config", "-c",
        help="diffwave (Amphion's size), tiny-diffwave (CPU experiments) or a YAML "
             "file with model/train/mel blocks.")] = "diffwave",
    data: Annotated[Path, typer.Option(
        "--data",
        help="Data root: waves-32k/ and mel/ are used.")] = DEFAULT_DATA,
    run_dir: Annotated[Path | None, typer.Option(
        "--run-dir",
        help="Run folder: checkpoints, TensorBoard (with validation audio), resolved "
             "config. Default: logs/<config name>.")] = None,
    files: Annotated[Path | None, typer.Option(
        "--files",
        help="Folder of train.txt/valid.txt (default: the config's "
             "train.train_files/valid_files; without an index every mel trains and "
             "nothing is held out).")] = None,
    resume: Resume = "auto",
    lr: Annotated[float | None, typer.Option(
        "--lr",
        help="Learning rate. Default: train.learning_rate.")] = None,
    max_steps: Annotated[int | None, typer.Option(
        "--max-steps", min=0,
        help="Stop after this many optimizer steps in total (default train.max_steps).")] = None,
    device: Device = "auto",
    precision: TrainPrecision = None,
    log_every: LogEvery = 10,
    valid_every: Annotated[int | None, typer.Option(
        "--valid-every", min=1,
        help="Steps between validations (loss, copy-synthesis audio and mel L1). Default:"
             " train.valid_every.")] = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Train a DiffWave vocoder on a data tree's 32 kHz waves and mels; Ctrl-C saves and stops.

    Several GPUs: torchrun --nproc_per_node N -m gvc train-vocoder ... (rank 0 logs and saves).
    Export with gvc export --checkpoint RUN_DIR --out voc.pth, then use --vocoder diffwave
    --vocoder-ckpt voc.pth.
    """
    from gvc.cli.common import console
    from gvc.training import TrainOptions
    from vocoder.diffwave.config import load_vocoder_config
    from vocoder.diffwave.train import train_vocoder as run_training

    rank = int(os.environ.get("RANK", "0"))
    setup_logging(quiet or rank != 0, verbose)
    cfg = load_vocoder_config(config)
    name = Path(config).stem if Path(config).suffix in (".yaml", ".yml") else config
    opts = TrainOptions(
        config=cfg, config_name=name, data=data, run_dir=run_dir,
        train_files=files / "train.txt" if files else None,
        valid_files=files / "valid.txt" if files else None, resume=resume, lr=lr,
        max_steps=max_steps, device=device, precision=precision, log_every=log_every,
        valid_every=valid_every, console=console if rank == 0 else None)
    result = run_training(opts)
    if rank != 0:
        return
    finish_run(result, "diffwave.pth")


def register(app: typer.Typer) -> None:
    """Add `vocode` and `train-vocoder` to `app`."""
    app.command("vocode")(vocode)
    app.command("train-vocoder")(train_vocoder)
