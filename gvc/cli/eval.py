"""`gvc eval`: objective scores of copy-synthesis (`--ref`) or conversions (`--source`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from gvc.cli.common import Device, Quiet, Verbose, console, setup_logging
from gvc.errors import ConfigError

Gen = Annotated[Path, typer.Option(
    "--gen", help="Generated audio: a file or a folder (searched recursively).")]
Ref = Annotated[Path | None, typer.Option(
    "--ref", help="Reconstruction mode: the real recordings (file or folder).")]
Source = Annotated[Path | None, typer.Option(
    "--source", help="Conversion mode: the recordings converted (file or folder).")]
TargetSpk = Annotated[Path | None, typer.Option(
    "--target-spk", help="Conversion mode: the target singer's d-vector, e.g. "
    "data_gvc/singer/<singer>.spk.npy.")]
Shift = Annotated[float, typer.Option(
    "--shift", help="Conversion mode: semitones the conversion transposed by (gvc infer's "
    "--shift); the source F0 is shifted by as much.")]
F0Choice = Annotated[str, typer.Option(
    "--f0-method", help="Pitch method for both sides, one of extract-f0's --method names.")]
SpeakerEncoder = Annotated[str, typer.Option(
    "--speaker-encoder", help="resemblyzer or lstm: the encoder that made --target-spk.")]
SpeakerModelDir = Annotated[Path | None, typer.Option(
    "--speaker-model-dir", help="Weights folder of --speaker-encoder lstm "
    "(default speaker_pretrain/).")]
Csv = Annotated[Path | None, typer.Option(
    "--csv", help="Also write one CSV row per scored file here.")]
Json = Annotated[Path | None, typer.Option(
    "--json", help="Also write rows, summary, settings and failures as JSON here.")]
Plot = Annotated[Path | None, typer.Option(
    "--plot", help="Write an F0 overlay PNG per file into this folder.")]


def evaluate(
    gen: Gen,
    ref: Ref = None,
    source: Source = None,
    target_spk: TargetSpk = None,
    shift: Shift = 0.0,
    f0_method: F0Choice = "praat",
    speaker_encoder: SpeakerEncoder = "resemblyzer",
    speaker_model_dir: SpeakerModelDir = None,
    csv: Csv = None,
    json_out: Json = None,
    plot: Plot = None,
    device: Device = "cpu",
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Score generated singing: F0 RMSE (cents), FPC, V/UV F1, MCD, mel L1, speaker similarity.

    Files pair by relative path or stem (song.gvc.wav pairs with song.wav). With --ref: pitch,
    voicing, MCD and mel L1 against the real recording. With --source and --target-spk: the
    output's pitch against the source's (shifted by --shift) and the speaker similarity of output
    and source to the target. A file without a partner or that cannot be read is reported and the
    others are still scored (exit 1). The table gives each score's mean and 95 % interval; -v adds
    one row per file.
    """
    from gvc.evaluation import pair_files, score_conversion, score_reconstruction
    from gvc.evaluation.report import plot_f0, render, write_csv, write_json
    from pitch import F0Method

    setup_logging(quiet, verbose)
    for noisy in ("matplotlib", "PIL"):  # their debug lines (font search) would drown -v
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger().level))
    if (ref is None) == (source is None):
        raise ConfigError("give exactly one of --ref (reconstruction) or --source (conversion)")
    methods = [m.value for m in F0Method]
    if f0_method not in methods:
        raise ConfigError(f"--f0-method {f0_method!r} is not one of {', '.join(methods)}")
    if ref is not None and (target_spk is not None or shift):
        raise ConfigError("--target-spk and --shift belong to conversion mode: use --source")
    if source is not None and target_spk is None:
        raise ConfigError("--source needs --target-spk, the target singer's .spk.npy")
    pairing = pair_files(ref or source, gen, "--ref" if ref is not None else "--source")
    if ref is not None:
        result = score_reconstruction(pairing.pairs, f0_method, device=device)
    else:
        from gvc.device import resolve_runtime
        from speaker import load_embedding, load_speaker_encoder

        target = load_embedding(target_spk)
        encoder = load_speaker_encoder(speaker_encoder, speaker_model_dir,
                                       runtime=resolve_runtime(device))
        result = score_conversion(pairing.pairs, target, encoder, shift, f0_method, device=device)
    result.failures[:0] = pairing.unpaired
    render(result, console, per_file=verbose)
    if csv is not None:
        write_csv(result, csv)
        typer.echo(f"wrote {csv}")
    if json_out is not None:
        write_json(result, json_out)
        typer.echo(f"wrote {json_out}")
    if plot is not None:
        typer.echo(f"wrote {len(plot_f0(result, plot))} F0 plot(s) into {plot}")
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `eval` to `app`."""
    app.command("eval")(evaluate)
