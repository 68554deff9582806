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
        outputs = {
            16000: DEFAULT_DATA / Feature.WAVES_16K.value,
            32000: DEFAULT_DATA / Feature.WAVES_32K.value,
        }
    settings = ResampleSettings(outputs=dict(outputs), loudness=loudness, max_seconds=max_seconds)
    sources, problems = discover(raw, INPUT_SUFFIXES)
    for rate, folder in outputs.items():
        record = meta.describe(
            f"waves-{rate // 1000}k", "resample", {**settings.describe(), "sr": rate}
        )
        meta.claim_folder(folder, record, force, "gvc resample")
    return run_task(
        ResampleTask(settings),
        sources,
        problems,
        jobs=jobs,
        force=force,
        shard=shard,
        console=console,
    )


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
    meta.claim_folder(
        out, meta.describe("mel", "log-mel", mel_settings()), force, "gvc extract-mel"
    )
    return run_task(
        MelTask(out), sources, problems, jobs=jobs, force=force, shard=shard, console=console
    )


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
    meta.claim_folder(
        out, meta.describe("pitch", extractor.name, extractor.settings()), force, "gvc extract-f0"
    )
    on_gpu = device.startswith("cuda") and extractor.name.startswith("crepe")
    task = F0Task(out, extractor, in_process_batch=8 if on_gpu else 0)
    return run_task(task, sources, problems, jobs=jobs, force=force, shard=shard, console=console)


def extract_hubert(
    waves: Path = DEFAULT_DATA / Feature.WAVES_16K.value,
    out: Path = DEFAULT_DATA / Feature.HUBERT.value,
    *,
    model: Path | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    batch_files: int = 8,
    force: bool = False,
    shard: Shard = Shard(),
    console: Console | None = None,
) -> Report:
    """HuBERT-Soft units of every 16 kHz wave into `out/<singer>/<utt>.vec.npy` ([T, 256] float32).

    The model (default `hubert_pretrain/hubert-soft-0d54a1f4.pt`) loads only when some file needs
    it; a missing model file is a `CheckpointError` naming the path and where to get it.
    """
    from hubert import DEFAULT_CHECKPOINT
    from prepare.content import HubertTask, hubert_settings

    model = Path(model or DEFAULT_CHECKPOINT)
    sources, problems = discover(waves, WAV_ONLY)
    if not model.is_file():
        from hubert.checkpoint import load_net

        load_net(model)  # raises the CheckpointError with the download hint
    meta.claim_folder(
        out,
        meta.describe("hubert", "hubert-soft", hubert_settings(model)),
        force,
        "gvc extract-hubert",
    )
    task = HubertTask(out, model, device, precision, batch_files)
    return run_task(task, sources, problems, force=force, shard=shard, console=console)


def extract_speaker(
    waves: Path = DEFAULT_DATA / Feature.WAVES_16K.value,
    out: Path = DEFAULT_DATA / Feature.SPEAKER.value,
    singer_out: Path = DEFAULT_DATA / "singer",
    *,
    encoder: str = "resemblyzer",
    model_dir: Path | None = None,
    pitch: Path | None = DEFAULT_DATA / Feature.PITCH.value,
    jobs: int = 1,
    device: str = "cpu",
    force: bool = False,
    shard: Shard = Shard(),
    console: Console | None = None,
) -> Report:
    """d-vectors of every 16 kHz wave, then each singer's mean and profile (unsharded runs only:
    a shard cannot see the other shards' utterances; run once more without --shard to average)."""
    from gvc.errors import ConfigError
    from prepare.speaker import ENCODERS, SpeakerTask, speaker_settings, write_singer_means

    if encoder not in ENCODERS:
        raise ConfigError(f"--encoder {encoder!r} is not one of {', '.join(ENCODERS)}")
    sources, problems = discover(waves, WAV_ONLY)
    if encoder == "lstm":
        from speaker import load_speaker_encoder

        load_speaker_encoder("lstm", model_dir)  # fail before any work when the weights are missing
    record = meta.describe("speaker", encoder, speaker_settings(encoder, model_dir))
    meta.claim_folder(out, record, force, "gvc extract-speaker")
    on_gpu = device.startswith("cuda")
    task = SpeakerTask(out, encoder, model_dir, device, in_process_batch=16 if on_gpu else 0)
    report = run_task(task, sources, problems, jobs=jobs, force=force, shard=shard, console=console)
    if shard.count == 1 and Path(out).is_dir():
        meta.claim_folder(singer_out, {**record, "feature": "singer"}, force, "gvc extract-speaker")
        write_singer_means(
            out,
            singer_out,
            pitch_root=pitch if pitch and Path(pitch).is_dir() else None,
            waves_root=waves,
        )
    return report
