"""One function per prepare step: walk the inputs, claim the output folders, run the engine."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from gvc.layout import DEFAULT_DATA, DEFAULT_RAW, Feature
from prepare import meta
from prepare.discover import Shard, discover
from prepare.engine import run_task
from prepare.report import Report

WAV_ONLY = (".wav",)


def resample(
    raw: Path = DEFAULT_RAW,
    outputs: dict[int, Path] | None = None,
    *,
    loudness: float | None = None,
    max_seconds: float | None = None,
    jobs: int = 1,
    force: bool = False,
    shard: Shard = Shard(),
    console: Console | None = None,
) -> Report:
    """Resample every recording of `raw/<singer>/` to each rate of `outputs` ({rate: folder}).

    Defaults write `data_gvc/waves-16k` and `data_gvc/waves-32k`.
    """
    from prepare.resample import INPUT_SUFFIXES, ResampleSettings, ResampleTask

    if outputs is None:
        outputs = {16000: DEFAULT_DATA / Feature.WAVES_16K.value, 32000: DEFAULT_DATA / Feature.WAVES_32K.value}
    settings = ResampleSettings(outputs=dict(outputs), loudness=loudness, max_seconds=max_seconds)
    sources, problems = discover(raw, INPUT_SUFFIXES)
    for rate, folder in outputs.items():
        record = meta.describe(f"waves-{rate // 1000}k", "resample", {**settings.describe(), "sr": rate})
        meta.claim_folder(folder, record, force, "gvc resample")
    return run_task(ResampleTask(settings), sources, problems, jobs=jobs, force=force, shard=shard, console=console)


def extract_mel(
    waves: Path = DEFAULT_DATA / Feature.WAVES_32K.value,
    out: Path = DEFAULT_DATA / Feature.MEL.value,
    *,
    jobs: int = 1,
    force: bool = False,
    shard: Shard = Shard(),
    console: Console | None = None,
) -> Report:
    """Log-mel `[100, T]` of every 32 kHz wave into `out/<singer>/<utt>.mel.pt`."""
    from prepare.mel import MelTask, mel_settings

    sources, problems = discover(waves, WAV_ONLY)
    meta.claim_folder(out, meta.describe("mel", "log-mel", mel_settings()), force, "gvc extract-mel")
    return run_task(MelTask(out), sources, problems, jobs=jobs, force=force, shard=shard, console=console)


def extract_f0(
    waves: Path = DEFAULT_DATA / Feature.WAVES_16K.value,
    out: Path = DEFAULT_DATA / Feature.PITCH.value,
    *,
    method: str = "praat",
    jobs: int = 1,
    force: bool = False,
    shard: Shard = Shard(),
    device: str = "cpu",
    precision: str = "fp32",
    console: Console | None = None,
) -> Report:
    """F0 of every 16 kHz wave into `out/<singer>/<utt>.pit.npy` (float64 Hz, 100 fps).

    CPU methods run over `jobs` processes; CREPE on a CUDA device runs in this process.
    """
    from pitch import make_extractor
    from prepare.f0 import F0Task

    extractor = make_extractor(method, device=device, precision=precision)
    sources, problems = discover(waves, WAV_ONLY)
    meta.claim_folder(out, meta.describe("pitch", extractor.name, extractor.settings()), force, "gvc extract-f0")
    on_gpu = device.startswith("cuda") and extractor.name.startswith("crepe")
    task = F0Task(out, extractor, in_process_batch=8 if on_gpu else 0)
    return run_task(task, sources, problems, jobs=jobs, force=force, shard=shard, console=console)
