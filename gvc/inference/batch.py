"""Writing one conversion, and converting a whole folder (mirroring its tree).

Folder mode: every audio file of the input folder (`recursive` descends into sub-folders) is
converted to `<out>/<relative folder>/<stem>.wav`; outputs that exist are skipped unless
`force`; a file that fails is reported and the others go on; the result is a
`prepare.report.Report` (done, skipped, failures, audio seconds, wall time).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gvc.errors import ConfigError, GvcError
from gvc.fileio import remove_stale_temps
from gvc.inference.converter import Converter
from gvc.inference.outputs import Intermediates, save_mel_png, save_mel_tensor
from gvc.inference.settings import Conversion, DecodeSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputOptions:
    """Optional intermediate files written next to each output."""

    save_pitch_wav: bool = False  # <stem>.pitch.wav: NSF excitation (nsf-bigvgan only)
    save_mel: bool = False  # <stem>.mel.pt and <stem>.mel.png


def write_conversion(conv: Conversion, out: Path, converter: Converter, decode: DecodeSettings,
                     options: OutputOptions = OutputOptions()) -> list[Path]:
    """Write the converted audio (16-bit PCM WAV, atomic) and the requested intermediates.

    Returns:
        Every path written, the audio first.
    """
    from gvc.audio import write_wav_float

    out = Path(out)
    write_wav_float(out, conv.audio, conv.sample_rate)
    written = [out]
    extra = Intermediates.of(out)
    if options.save_pitch_wav:
        write_wav_float(extra.pitch_wav, converter.excitation(conv.f0, decode.seed),
                        conv.sample_rate)
        written.append(extra.pitch_wav)
    if options.save_mel:
        save_mel_tensor(extra.mel_pt, conv.mel)
        save_mel_png(extra.mel_png, conv.mel, conv.f0, title=out.name)
        written += [extra.mel_pt, extra.mel_png]
    return written


def list_inputs(folder: Path, recursive: bool) -> list[Path]:
    """Audio files of `folder` (sorted; hidden files skipped), descending when `recursive`."""
    from gvc.audio import is_audio_file

    folder = Path(folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and is_audio_file(p)
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def plan_folder(src: Path, out: Path | None, recursive: bool) -> list[tuple[Path, Path]]:
    """(input, output) pairs of a folder conversion.

    Raises:
        ConfigError: no `out`, `out` equal to the input folder (or inside it when recursive),
            no audio files, or two inputs that would write the same output.
    """
    src = Path(src)
    if out is None:
        raise ConfigError(f"--wave {src} is a folder: pass --out OUTPUT_FOLDER for the results")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; a folder --wave needs an output folder")
    s, o = src.resolve(), out.resolve()
    if o == s:
        raise ConfigError(f"--out {out} is the input folder; choose another folder so inputs "
                          "are never overwritten")
    if recursive and s in o.parents:
        raise ConfigError(f"--out {out} is inside the input folder and --recursive would read "
                          "the results back as inputs; choose a folder outside it")
    inputs = list_inputs(src, recursive)
    if not inputs:
        raise ConfigError(f"no audio files in {src}" + ("" if recursive else
                                                        " (use --recursive for sub-folders)"))
    pairs, seen = [], {}
    resolved_inputs = {p.resolve() for p in inputs}
    for path in inputs:
        rel = path.relative_to(src)
        dst = out / rel.parent / f"{rel.stem}.wav"
        if dst in seen:
            raise ConfigError(f"{path} and {seen[dst]} would both be written to {dst}; "
                              "rename one of them")
        if dst.resolve() in resolved_inputs:
            raise ConfigError(f"the output {dst} of {path} is itself an input file; choose "
                              "another --out")
        seen[dst] = path
        pairs.append((path, dst))
    return pairs


FileProgress = Callable[[Path, int, int], None]  # (input, index, total), before each file


def convert_folder(converter: Converter, pairs: list[tuple[Path, Path]], spk, *, spk_path: Path,
                   decode: DecodeSettings, chunking, shift: float | str = 0.0,
                   profile: Path | None = None, force: bool = False,
                   options: OutputOptions = OutputOptions(), on_file: FileProgress | None = None,
                   progress=None, verbose: bool = False):
    """Convert every (input, output) pair; failures are collected, not raised.

    Returns:
        A `prepare.report.Report` (step "infer").
    """
    from prepare.report import Report

    report = Report("infer")
    remove_stale_temps(sorted({dst.parent for _, dst in pairs}), "infer")
    start = time.perf_counter()
    for i, (src, dst) in enumerate(pairs):
        if dst.exists() and not force:
            report.skipped += 1
            log.debug("skip %s: %s exists (use --force to redo)", src, dst)
            continue
        if on_file:
            on_file(src, i, len(pairs))
        try:
            conv = converter.convert(src, spk, spk_path=spk_path, shift=shift, profile=profile,
                                     decode=decode, chunking=chunking, progress=progress)
            write_conversion(conv, dst, converter, decode, options)
        except (GvcError, ValueError, RuntimeError, OSError) as exc:
            report.failures.append((src, str(exc).splitlines()[0] if str(exc) else repr(exc)))
            log.error("failed %s: %s", src, exc, exc_info=verbose)
            continue
        report.done += 1
        report.audio_seconds += conv.seconds
        log.info("%s -> %s (%.1f s, shift %s)", src, dst, conv.seconds, conv.shift.describe())
    report.wall_seconds = time.perf_counter() - start
    return report
