"""Prepare commands: `resample`, `extract-mel`, `extract-f0`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gvc.cli.common import (
    Device,
    Force,
    Jobs,
    Precision,
    Quiet,
    Shard,
    Verbose,
    VerboseLong,
    finish,
    setup_logging,
)
from gvc.errors import ConfigError
from gvc.layout import DEFAULT_DATA, DEFAULT_RAW, Feature
from pitch import F0Method

F0_METHODS = tuple(m.value for m in F0Method)


def resample(
    wav: Annotated[Path, typer.Option(
        "--wav", "-w", help="Input tree: <wav>/<singer>/<utt>.<wav|flac|ogg|mp3|...>."
        )] = DEFAULT_RAW,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder for a single rate (Grad-SVC style, needs --sr)."
        )] = None,
    sr: Annotated[int | None, typer.Option(
        "--sr", "-s", help="Write only this rate (16000 or 32000).")] = None,
    data: Annotated[Path, typer.Option(
        "--data", help="Data root holding waves-16k/ and waves-32k/.")] = DEFAULT_DATA,
    loudness: Annotated[float | None, typer.Option(
        "--loudness",
        help="Normalise to this integrated loudness in LUFS (e.g. -18) instead of peak 0.6."
        )] = None,
    max_seconds: Annotated[float | None, typer.Option(
        "--max-seconds",
        help="Split recordings longer than this at silences (Diff-SVC advises <= 15).")] = None,
    jobs: Jobs = 1,
    force: Force = False,
    shard: Shard = "1/1",
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Resample recordings to 16 kHz and 32 kHz mono int16 WAVs (peak 0.6, as Grad-SVC)."""
    from prepare.discover import Shard as ShardSpec
    from prepare.steps import resample as run

    setup_logging(quiet, verbose)
    if out is not None and sr is None:
        raise ConfigError("--out needs --sr (16000 or 32000): one output folder holds one rate")
    if sr is not None:
        outputs = {sr: out if out is not None else data / f"waves-{sr // 1000}k"}
    else:
        outputs = {16000: data / Feature.WAVES_16K.value, 32000: data / Feature.WAVES_32K.value}
    finish(
        run(
            wav,
            outputs,
            loudness=loudness,
            max_seconds=max_seconds,
            jobs=jobs,
            force=force,
            shard=ShardSpec.parse(shard),
        )
    )


def extract_mel(
    wav: Annotated[
        Path, typer.Option("--wav", "-w", help="Folder of 32 kHz waves: <wav>/<singer>/<utt>.wav.")
    ] = DEFAULT_DATA / Feature.WAVES_32K.value,
    spe: Annotated[
        Path, typer.Option("--spe", "-s", help="Output mel folder (Grad-SVC's -s).")
    ] = DEFAULT_DATA / Feature.MEL.value,
    wave: Annotated[Path | None, typer.Option(
        "--wave", help="Single-file mode: one audio file.")] = None,
    mel: Annotated[Path | None, typer.Option(
        "--mel", help="Single-file mode: output .mel.pt.")] = None,
    jobs: Jobs = 1,
    force: Force = False,
    shard: Shard = "1/1",
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Compute the 32 kHz log-mel [100, T] of every wave (Grad-SVC / NSF-BigVGAN definition)."""
    from prepare.discover import Shard as ShardSpec

    setup_logging(quiet, verbose)
    if wave is not None or mel is not None:
        if wave is None or mel is None:
            raise ConfigError("single-file mode needs both --wave and --mel")
        from prepare.mel import write_mel

        seconds = write_mel(wave, mel)
        typer.echo(f"wrote {mel} ({seconds:.1f} s of audio)")
        return
    from prepare.steps import extract_mel as run

    finish(run(wav, spe, jobs=jobs, force=force, shard=ShardSpec.parse(shard)))


def extract_f0(
    wav: Annotated[
        Path, typer.Option("--wav", "-w", help="Folder of 16 kHz waves: <wav>/<singer>/<utt>.wav.")
    ] = DEFAULT_DATA / Feature.WAVES_16K.value,
    pit: Annotated[
        Path, typer.Option("--pit", "-p", help="Output pitch folder (Grad-SVC's -p).")
    ] = DEFAULT_DATA / Feature.PITCH.value,
    method: Annotated[str, typer.Option(
        "--method", "-m", help=f"F0 method: {', '.join(F0_METHODS)}.")] = "praat",
    wave: Annotated[Path | None, typer.Option(
        "--wave", help="Single-file mode: one audio file (any rate).")] = None,
    csv: Annotated[Path | None, typer.Option(
        "--csv", help="Single-file mode: write Grad-SVC's pitch CSV.")] = None,
    npy: Annotated[Path | None, typer.Option(
        "--npy", help="Single-file mode: write the track as .npy.")] = None,
    jobs: Jobs = 1,
    force: Force = False,
    shard: Shard = "1/1",
    device: Device = "cpu",
    precision: Precision = "fp32",
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Extract F0 (Hz, 100 fps, 0 = unvoiced): Praat (default, as Grad-SVC trains), CREPE, WORLD."""
    from prepare.discover import Shard as ShardSpec

    setup_logging(quiet, verbose)
    if method not in F0_METHODS:
        raise ConfigError(f"--method {method!r} is not one of {', '.join(F0_METHODS)}")
    if device != "cpu":
        from gvc.device import resolve_device

        device = str(resolve_device(device))
    if wave is not None:
        if csv is None and npy is None:
            raise ConfigError("single-file mode needs --csv and/or --npy to say where to write")
        from prepare.f0 import write_f0

        f0 = write_f0(wave, method=method, csv=csv, npy=npy, device=device)
        voiced = f0[f0 > 0]
        median = (
            f"median {float(sorted(voiced)[len(voiced) // 2]):.1f} Hz"
            if len(voiced)
            else "no voiced frames"
        )
        typer.echo(
            f"wrote {', '.join(str(p) for p in (csv, npy) if p)} ({len(f0)} frames, {median})"
        )
        return
    from prepare.steps import extract_f0 as run

    finish(
        run(
            wav,
            pit,
            method=method,
            jobs=jobs,
            force=force,
            shard=ShardSpec.parse(shard),
            device=device,
            precision=precision,
        )
    )


def register(app: typer.Typer) -> None:
    """Add the prepare commands to `app`."""
    app.command("resample")(resample)
    app.command("extract-mel")(extract_mel)
    app.command("extract-f0")(extract_f0)
    register_features(app)


def extract_hubert(
    wav: Annotated[
        Path, typer.Option("--wav", "-w", help="Folder of 16 kHz waves: <wav>/<singer>/<utt>.wav.")
    ] = DEFAULT_DATA / Feature.WAVES_16K.value,
    vec: Annotated[Path | None, typer.Option(
        "--vec", "-v",
        help="Where units go: the output folder (default data_gvc/hubert), or the .vec.npy "
        "file with --wave.")] = None,
    wave: Annotated[Path | None, typer.Option(
        "--wave", help="Single-file mode: one audio file (any rate).")] = None,
    model: Annotated[
        Path, typer.Option("--model", help="HuBERT-Soft checkpoint (bshall/hubert v0.1 release).")
    ] = Path("hubert_pretrain/hubert-soft-0d54a1f4.pt"),
    batch: Annotated[int, typer.Option("--batch", min=1, help="Files per model batch.")] = 8,
    jobs: Jobs = 2,
    force: Force = False,
    shard: Shard = "1/1",
    device: Device = "auto",
    precision: Precision = "fp32",
    quiet: Quiet = False,
    verbose: VerboseLong = False,
) -> None:
    """Extract HuBERT-Soft content units [T, 256] at 50 fps (Grad-SVC's -w/-v flags work).

    `-v` means the output here (as in Grad-SVC); use --verbose for debug logging. `--jobs` sets
    the torch threads of the one model process.
    """
    import torch

    from gvc.device import resolve_runtime
    from prepare.discover import Shard as ShardSpec

    setup_logging(quiet, verbose)
    runtime = resolve_runtime(device, precision)
    torch.set_num_threads(jobs)
    if wave is not None:
        if vec is None:
            raise ConfigError("single-file mode needs --vec for the output .vec.npy")
        from prepare.content import write_units

        units = write_units(wave, vec, model=model, device=str(runtime.device), precision=precision)
        typer.echo(f"wrote {vec} ({units.shape[0]} frames x {units.shape[1]})")
        return
    from prepare.steps import extract_hubert as run

    out = vec if vec is not None else DEFAULT_DATA / Feature.HUBERT.value
    finish(
        run(
            wav,
            out,
            model=model,
            device=str(runtime.device),
            precision=precision,
            batch_files=batch,
            force=force,
            shard=ShardSpec.parse(shard),
        )
    )


def extract_speaker(
    wav: Annotated[
        Path, typer.Option("--wav", "-w", help="Folder of 16 kHz waves: <wav>/<singer>/<utt>.wav.")
    ] = DEFAULT_DATA / Feature.WAVES_16K.value,
    spk: Annotated[Path | None, typer.Option(
        "--spk", "-s",
        help="Where embeddings go: the output folder (default data_gvc/speaker), or a .spk.npy "
        "file with --wave/--average.")] = None,
    singer: Annotated[Path, typer.Option(
        "--singer", help="Folder of per-singer means and profiles.")] = DEFAULT_DATA / "singer",
    pit: Annotated[Path, typer.Option(
        "--pit", "-p", help="Pitch folder used for the singer profiles (skipped when absent)."
        )] = DEFAULT_DATA / Feature.PITCH.value,
    encoder: Annotated[str, typer.Option(
        "--encoder", "-e",
        help="resemblyzer (weights in the package, offline) or lstm (Grad-SVC's; needs "
        "speaker_pretrain/).")] = "resemblyzer",
    model_dir: Annotated[Path | None, typer.Option(
        "--model-dir", help="lstm: folder with best_model.pth.tar and config.json "
        "(default speaker_pretrain/).")] = None,
    wave: Annotated[Path | None, typer.Option(
        "--wave", help="Single-file mode: one audio file.")] = None,
    average: Annotated[
        Path | None,
        typer.Option("--average", help="Average a folder of .spk.npy into the --spk file."),
    ] = None,
    jobs: Jobs = 1,
    force: Force = False,
    shard: Shard = "1/1",
    device: Device = "cpu",
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Extract speaker d-vectors [256] per utterance, then each singer's mean and profile."""
    from gvc.device import resolve_device
    from prepare.discover import Shard as ShardSpec

    setup_logging(quiet, verbose)
    dev = str(resolve_device(device))
    if average is not None:
        if spk is None:
            raise ConfigError("--average needs --spk for the output .spk.npy")
        from gvc.fileio import save_npy
        from speaker import average_folder

        mean = average_folder(average)
        save_npy(spk, mean)
        typer.echo(
            f"wrote {spk} (mean of {len(list(average.glob('*.spk.npy')))} embeddings, norm "
            f"{float((mean**2).sum() ** 0.5):.3f})"
        )
        return
    if wave is not None:
        if spk is None:
            raise ConfigError("single-file mode needs --spk for the output .spk.npy")
        from prepare.speaker import write_embedding

        write_embedding(wave, spk, encoder=encoder, model_dir=model_dir, device=dev)
        typer.echo(f"wrote {spk} ({encoder} embedding)")
        return
    from prepare.steps import extract_speaker as run

    out = spk if spk is not None else DEFAULT_DATA / Feature.SPEAKER.value
    finish(
        run(
            wav,
            out,
            singer,
            encoder=encoder,
            model_dir=model_dir,
            pitch=pit,
            jobs=jobs,
            device=dev,
            force=force,
            shard=ShardSpec.parse(shard),
        )
    )


def register_features(app: typer.Typer) -> None:
    """Add the neural feature commands to `app`."""
    app.command("extract-hubert")(extract_hubert)
    app.command("extract-speaker")(extract_speaker)
