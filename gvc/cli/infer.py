"""`gvc infer`: convert a song (or a folder of songs) with a gvc model file, in one process."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from gvc.cli.common import Device, Force, Precision, Quiet, Verbose, console, finish, setup_logging
from gvc.errors import ConfigError

HUBERT_DEFAULT = Path("hubert_pretrain/hubert-soft-0d54a1f4.pt")
VOCODER_DEFAULT = Path("bigvgan_pretrain/nsf_bigvgan_pretrain_32K.pth")


class _StageBar:
    """Rich progress per chunk on a terminal; nothing otherwise (log lines say what happens)."""

    def __init__(self, enabled: bool) -> None:
        self.progress = None
        self.task = None
        self.label = ""
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     TimeRemainingColumn(), console=console, transient=True)

    def __enter__(self) -> _StageBar:
        if self.progress is not None:
            self.progress.start()
            self.task = self.progress.add_task("starting", total=1)
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def file(self, path: Path, index: int, total: int) -> None:
        """Called before each input of a folder."""
        self.label = f"[{index + 1}/{total}] {path.name}: "

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=f"{self.label}{stage}", completed=done,
                                 total=max(total, 1))


def infer(
    model: Annotated[Path, typer.Option(
        "--model",
        help="gvc model file (gvc export); an original Grad-SVC gvc.pth must be imported first "
        "with gvc export --from-grad-svc.")],
    spk: Annotated[Path, typer.Option(
        "--spk", help="Target singer: a [256] .spk.npy (e.g. data_gvc/singer/<singer>.spk.npy).")],
    wave: Annotated[Path, typer.Option(
        "--wave", help="Input audio file, or a folder of them (then --out is an output folder).")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o",
        help="Output .wav (default <stem>.gvc.wav next to the input) or folder; never the " "input."
        )] = None,
    vec: Annotated[Path | None, typer.Option(
        "--vec", help="Precomputed HuBERT-Soft units .vec.npy [T, 256] (skips HuBERT).")] = None,
    pit: Annotated[Path | None, typer.Option(
        "--pit", help="Precomputed F0: Grad-SVC pitch CSV or a .npy track (Hz, 100 fps); e.g. "
        "hand-edited.")] = None,
    shift: Annotated[str, typer.Option(
        "--shift",
        help="Transpose by N semitones (Hz x 2^(N/12), unvoiced stays 0), or 'auto': round(12 "
        "log2(target median F0 / source median F0)) from the singer profile.")] = "0",
    profile: Annotated[Path | None, typer.Option(
        "--profile", help="Singer profile for --shift auto (default: <singer>.profile.json next to "
        "<singer>.spk.npy).")] = None,
    sampler: Annotated[str | None, typer.Option(
        "--sampler", help="A sampler of the model's decoder family (default: the model's "
        "infer.sampler); --list-samplers shows them.")] = None,
    steps: Annotated[int | None, typer.Option(
        "--steps", help="Sampler steps (default: the model's infer.steps: 20 for Grad-SVC V2, 10 "
        "for V3); network calls = steps x the sampler's NFE per step.")] = None,
    sampler_opt: Annotated[list[str] | None, typer.Option(
        "--sampler-opt", help="Extra sampler keyword, KEY=VALUE (repeat or comma-separate), e.g. "
        "grid=time-uniform for dpm-solver-*, grid=sway or t_start=0.5 for flow solvers."
        )] = None,
    temperature: Annotated[float | None, typer.Option(
        "--temperature", "--rature",
        help="Start-noise scale (Grad-SVC's --rature; default: the model's infer.temperature, "
        "1.015). Score models DIVIDE: x_T = mu + N(0, I) / T; flow models MULTIPLY: x_0 = "
        "N(0, I) * T.")] = None,
    cfg_strength: Annotated[float | None, typer.Option(
        "--cfg-strength",
        help="Classifier-free guidance w: v = v_cond + w (v_cond - v_uncond), 0 = off (default: "
        "the model's infer.cfg_strength). Only for flow models trained with condition dropout; "
        "about doubles the acoustic model's time.")] = None,
    list_samplers: Annotated[bool, typer.Option(
        "--list-samplers", is_eager=True, callback=lambda v: _list_samplers(v),
        help="List every decoder family with its samplers and exit.")] = False,
    seed: Annotated[int | None, typer.Option(
        "--seed",
        help="Seed of all sampling noise (default: the model's infer.seed, else 1234); same "
        "seed, same output.")] = None,
    f0_method: Annotated[str | None, typer.Option(
        "--f0-method",
        help="Pitch method for the source (default: the model's training method; a different "
        "one warns).")] = None,
    hubert_model: Annotated[
        Path,
        typer.Option("--hubert-model", help="HuBERT-Soft checkpoint (bshall/hubert v0.1 release)."),
    ] = HUBERT_DEFAULT,
    vocoder: Annotated[str, typer.Option(
        "--vocoder", help="nsf-bigvgan (Grad-SVC's), diffwave (a gvc train-vocoder export) or "
        "griffinlim (weight-free preview).")] = "nsf-bigvgan",
    vocoder_ckpt: Annotated[Path | None, typer.Option(
        "--vocoder-ckpt", help=f"Vocoder weights (nsf-bigvgan default {VOCODER_DEFAULT}; "
        "diffwave: the exported file).")] = None,
    vocoder_steps: Annotated[int | None, typer.Option(
        "--vocoder-steps", min=1, help="DiffWave: 6 (the paper's fast schedule, default) or 50 "
        "(the full reverse process).")] = None,
    vocoder_config: Annotated[Path | None, typer.Option(
        "--vocoder-config", help="NSF-BigVGAN yaml (default: read the width from the checkpoint)."
        )] = None,
    chunk_seconds: Annotated[float | None, typer.Option(
        "--chunk-seconds",
        help="Longest piece the acoustic model converts at once (default: the model's "
        "infer.chunk_frames, 24 s); cuts are moved to quiet frames.")] = None,
    context_seconds: Annotated[float | None, typer.Option(
        "--context-seconds",
        help="Context computed on each side of a piece and discarded (default: the model's "
        "infer.context_frames).")] = None,
    crossfade_seconds: Annotated[float | None, typer.Option(
        "--crossfade-seconds",
        help="Crossfade at each cut (default 0.1 s, at most twice the context).")] = None,
    save_pitch_wav: Annotated[bool, typer.Option(
        "--save-pitch-wav",
        help="Also write <stem>.pitch.wav, the NSF excitation of the shifted F0 (nsf-bigvgan "
        "only).")] = False,
    save_mel: Annotated[bool, typer.Option(
        "--save-mel",
        help="Also write <stem>.mel.pt (log-mel [100, T]) and <stem>.mel.png (mel with the F0 "
        "curve).")] = False,
    recursive: Annotated[bool, typer.Option(
        "--recursive", "-r",
        help="Folder mode: convert sub-folders too (the tree is mirrored into --out).")] = False,
    allow_mismatch: Annotated[bool, typer.Option(
        "--allow-mismatch",
        help="Warn instead of failing when feature extractors or feature lengths disagree with "
        "the model or the audio.")] = False,
    force: Force = False,
    device: Device = "auto",
    precision: Precision = "fp32",
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Sing as the --spk singer (32 kHz WAV): HuBERT units + F0 -> acoustic model -> vocoder.

    Long songs are converted in pieces cut at quiet frames and crossfaded (memory stays flat).
    A folder --wave converts each audio file in it; existing outputs are kept unless --force.
    Failures are listed at the end (exit 1).
    """
    from gvc.decoders.registry import parse_sampler_options
    from gvc.device import resolve_runtime
    from gvc.inference import Converter, OutputOptions, parse_shift, resolve_output
    from gvc.inference.batch import convert_folder, plan_folder, write_conversion
    from gvc.inference.shift import AUTO, target_median
    from vocoder.registry import get_spec

    setup_logging(quiet, verbose)
    shift_value = parse_shift(shift)
    if save_pitch_wav and not get_spec(vocoder).capabilities.excitation:
        raise ConfigError(f"--save-pitch-wav writes the NSF excitation: --vocoder {vocoder} has "
                          "none (nsf-bigvgan has)")
    folder = wave.is_dir()
    if folder:
        if vec is not None or pit is not None:
            raise ConfigError("--vec/--pit belong to one input file; a folder --wave computes them")
        pairs = plan_folder(wave, out, recursive)
    else:
        if not wave.is_file():
            raise ConfigError(f"--wave {wave}: no such file or folder")
        out_path = resolve_output(wave, out)
    if shift_value == AUTO:
        target_median(spk, profile)  # fail now, not after the features are computed
    runtime = resolve_runtime(device, precision)
    converter = Converter.load(model, hubert_path=hubert_model, load_content=vec is None,
                               vocoder=vocoder, vocoder_ckpt=vocoder_ckpt,
                               vocoder_config=vocoder_config, vocoder_steps=vocoder_steps,
                               f0_method=f0_method,
                               runtime=runtime, allow_mismatch=allow_mismatch)
    decode = converter.decode_settings(sampler, steps, temperature, seed,
                                       parse_sampler_options(sampler_opt or []), cfg_strength)
    chunking = converter.chunk_settings(chunk_seconds, context_seconds, crossfade_seconds)
    spk_vec = converter.speaker(spk)
    options = OutputOptions(save_pitch_wav=save_pitch_wav, save_mel=save_mel)
    bar = _StageBar(console.is_terminal and not quiet)
    if folder:
        with bar:
            report = convert_folder(converter, pairs, spk_vec, spk_path=spk, decode=decode,
                                    chunking=chunking, shift=shift_value, profile=profile,
                                    force=force, options=options, on_file=bar.file,
                                    progress=bar, verbose=verbose)
        finish(report)
        return
    converter.check_files(vec, pit)
    with bar:
        conv = converter.convert(wave, spk_vec, spk_path=spk, vec=vec, pit=pit,
                                 shift=shift_value, profile=profile, decode=decode,
                                 chunking=chunking, progress=bar)
    if out_path.exists():
        logging.getLogger(__name__).info("replacing %s", out_path)
    written = write_conversion(conv, out_path, converter, decode, options)
    work = sum(conv.timings.values())
    typer.echo(f"shift: {conv.shift.describe()}")
    opts = "".join(f" {k}={v}" for k, v in decode.options.items())
    if decode.cfg_strength:
        opts += f" cfg={decode.cfg_strength:g}"
    typer.echo(f"wrote {written[0]} ({conv.seconds:.1f} s of audio, {decode.sampler}{opts} x"
               f"{decode.steps}, temperature {decode.temperature:g}, seed {decode.seed}, "
               f"{conv.chunks} chunk(s), {work:.1f} s of compute = real-time factor "
               f"{work / conv.seconds:.2f})")
    for extra in written[1:]:
        typer.echo(f"wrote {extra}")


def _list_samplers(value: bool) -> None:
    """`--list-samplers`: every decoder family, its samplers and its temperature rule."""
    if not value:
        return
    from rich.table import Table

    from gvc.decoders.base import decoder_family, decoder_names
    from gvc.decoders.registry import get_sampler, sampler_names

    table = Table(title="decoder families and samplers", header_style="bold")
    for column in ("decoder", "sampler", "NFE/step", "noise", "what"):
        table.add_column(column)
    for name in decoder_names():
        family = decoder_family(name)
        for s in sampler_names(name):
            spec = get_sampler(s, name)
            mark = " (default)" if s == family.default_sampler else ""
            table.add_row(name, s + mark, str(spec.nfe_per_step),
                          "stochastic" if spec.stochastic else "deterministic", spec.description)
    console.print(table)
    for name in decoder_names():
        console.print(f"temperature, {decoder_family(name).temperature_help}")
    raise typer.Exit(0)


def register(app: typer.Typer) -> None:
    """Add `infer` to `app`."""
    app.command("infer")(infer)
