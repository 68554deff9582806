"""The quickstart demo: the whole pipeline on a generated multi-singer corpus, offline.

`run_demo(out)` writes everything under `out/`: a synthetic corpus, the prepared `data_gvc/` tree,
a few minutes of training of the tiny preset, the exported model, a held-out clip of one singer
converted to another, and a picture of both (mel and F0). Where the published weights are not on
this machine it uses a randomly initialised HuBERT-Soft in the published layout and the Griffin-Lim
fallback vocoder, and says so: the result then shows the plumbing, not the quality.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.panel import Panel

from gvc.layout import DataTree, Feature
from gvc.synth import sing, singer_voice, write_corpus
from prepare import steps

log = logging.getLogger(__name__)

REAL_HUBERT = Path("hubert_pretrain/hubert-soft-0d54a1f4.pt")
REAL_VOCODER = Path("bigvgan_pretrain/nsf_bigvgan_pretrain_32K.pth")
NEEDED_FOR_REAL = (
    f"{REAL_HUBERT} (bshall/hubert v0.1 release)",
    f"{REAL_VOCODER} (PlayVoice/NSF-BigVGAN release)",
    "speaker_pretrain/best_model.pth.tar + config.json (Grad-SVC README) for --encoder lstm",
    "grad_pretrain/gvc.pretrain.pth (Grad-SVC release) to fine-tune with gvc train --init-from",
)


@dataclass
class DemoSettings:
    """Size of the demo; the defaults take a few minutes on a 2-core CPU."""

    singers: int = 3
    utterances: int = 6
    seconds: float = 4.0
    train_steps: int = 400
    segment_frames: int = 100  # decoder crop (1 s): half the preset's, twice the steps per minute
    jobs: int = 2
    source_singer: int = 0
    target_singer: int = 1
    preset: str = "tiny"  # tiny (score decoder) or tiny-flow (rectified flow)

    @property
    def model_name(self) -> str:
        """The exported model's file name: gvc.pth for the default preset, else gvc-<preset>.pth."""
        return "gvc.pth" if self.preset == DemoSettings.preset else f"gvc-{self.preset}.pth"


@dataclass
class DemoResult:
    """What the demo produced."""

    ok: bool
    converted: Path | None = None
    picture: Path | None = None
    model: Path | None = None
    placeholders: list[str] = field(default_factory=list)
    interrupted: bool = False


def _prepare(out: Path, s: DemoSettings, hubert: Path, console: Console) -> tuple[DataTree, bool]:
    raw = out / "data_raw"
    if not raw.is_dir():
        log.info("writing a synthetic corpus: %d singers x %d clips x %.0f s -> %s", s.singers, s.utterances, s.seconds, raw)
        write_corpus(raw, singers=s.singers, utterances=s.utterances, seconds=s.seconds)
    tree = DataTree(out / "data_gvc")
    w16, w32 = tree.folder(Feature.WAVES_16K), tree.folder(Feature.WAVES_32K)
    reports = [
        steps.resample(raw, {16000: w16, 32000: w32}, jobs=s.jobs, console=console),
        steps.extract_mel(w32, tree.folder(Feature.MEL), jobs=s.jobs, console=console),
        steps.extract_f0(w16, tree.folder(Feature.PITCH), jobs=s.jobs, console=console),
        steps.extract_hubert(w16, tree.folder(Feature.HUBERT), model=hubert, console=console),
        steps.extract_speaker(w16, tree.folder(Feature.SPEAKER), tree.singer_folder, pitch=tree.folder(Feature.PITCH), jobs=s.jobs, console=console),
    ]
    for r in reports:
        r.render(console)
    return tree, all(r.ok for r in reports)


def _train_and_export(out: Path, tree: DataTree, s: DemoSettings, console: Console) -> Path | None:
    """Train the preset (resuming a previous demo run) and export it; None if interrupted."""
    from gvc.config import load_config
    from gvc.dataset.index import build_index
    from gvc.export.model_file import export_checkpoint
    from gvc.training import TrainOptions, train

    files = out / "files"
    build_index(tree, files, valid_count=s.singers, seed=37)
    # The tiny preset stops after 20 epochs; the demo trains by steps, so the epoch cap is lifted
    # (every epoch has at least one step) and --steps decides.
    cfg = load_config(s.preset, overrides={"train.full_epochs": max(s.train_steps, 20),
                                           "train.segment_frames": s.segment_frames})
    result = train(TrainOptions(
        config=cfg, config_name=s.preset, data=tree.root, run_dir=out / "logs" / s.preset,
        train_files=files / "train.txt", valid_files=files / "valid.txt", max_steps=s.train_steps,
        device="cpu", valid_every=50, console=console,
    ))
    if result.reason == "interrupted":
        console.print(f"[yellow]training interrupted at step {result.step} (saved {result.checkpoint}); "
                      "run the same command again to continue[/yellow]", highlight=False)
        return None
    if result.checkpoint is None:
        raise RuntimeError(f"training stopped without a checkpoint ({result.reason})")
    model = out / s.model_name
    export_checkpoint(result.checkpoint, model, force=True)
    return model


def _picture(path: Path, source: Path, conv, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from gvc.audio import load_audio
    from pitch import make_extractor
    from vocoder.mel import mel_spectrogram

    wav32 = load_audio(source, 32000)
    mel_in = mel_spectrogram(torch.from_numpy(wav32[: len(wav32) // 320 * 320])).numpy()
    f0_in = make_extractor("praat", decimals=None).extract(load_audio(source, 16000))
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), constrained_layout=True)
    for ax, mel, name in ((axes[0], mel_in, "input"), (axes[1], conv.mel.numpy(), "converted")):
        ax.imshow(mel, origin="lower", aspect="auto", interpolation="none", vmin=-11.5, vmax=2)
        ax.set_title(f"{name} log-mel")
        ax.set_ylabel("mel band")
    t_in = np.arange(len(f0_in)) / 100
    axes[2].plot(t_in, np.where(f0_in > 0, f0_in, np.nan), label="input F0 (Praat)")
    axes[2].plot(np.arange(len(conv.f0)) / 100, np.where(conv.f0 > 0, conv.f0, np.nan), label=f"F0 given to the model (shift {conv.shift.semitones:+g})")
    axes[2].set_xlabel("seconds")
    axes[2].set_ylabel("Hz")
    axes[2].legend(loc="upper right")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_demo(out: Path, settings: DemoSettings | None = None, console: Console | None = None) -> DemoResult:
    """Run the quickstart under `out`; returns what it wrote (ok False when a step failed)."""
    s = settings or DemoSettings()
    console = console or Console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    placeholders = []
    hubert = REAL_HUBERT
    if not hubert.is_file():
        from hubert import save_random_checkpoint

        hubert = out / "weights" / "hubert-soft-random.pt"
        if not hubert.is_file():
            save_random_checkpoint(hubert, num_layers=2)
        placeholders.append(f"content encoder: random 2-layer HuBERT-Soft ({hubert}), not {REAL_HUBERT}")
    vocoder = "nsf-bigvgan" if REAL_VOCODER.is_file() else "griffinlim"
    if vocoder == "griffinlim":
        placeholders.append(f"vocoder: Griffin-Lim preview (no {REAL_VOCODER})")

    tree, ok = _prepare(out, s, hubert, console)
    if not ok:
        console.print("[red]data preparation failed; see above[/red]")
        return DemoResult(False, placeholders=placeholders)
    model = _train_and_export(out, tree, s, console)
    if model is None:
        return DemoResult(False, placeholders=placeholders, interrupted=True)

    from gvc.audio import write_wav_float
    from gvc.inference.batch import write_conversion
    from gvc.inference.converter import Converter

    source = out / "heldout.wav"
    write_wav_float(source, sing(singer_voice(s.source_singer), 6.0, sr=44100, seed=987654), 44100)
    target = f"singer{s.target_singer:02d}"
    spk_path = tree.singer_path(target)
    converter = Converter.load(model, hubert_path=hubert, vocoder=vocoder)
    decode = converter.decode_settings()
    conv = converter.convert(source, converter.speaker(spk_path), spk_path=spk_path, shift="auto", decode=decode)
    converted = out / "heldout.gvc.wav"
    write_conversion(conv, converted, converter, decode)
    picture = out / "conversion.png"
    _picture(picture, source, conv, f"singer{s.source_singer:02d} -> {target}, {decode.sampler} {decode.steps} steps, {vocoder}")

    lines = [
        f"converted: {converted} (singer{s.source_singer:02d} sung as {target}, shift {conv.shift.semitones:+g} semitones)",
        f"picture:   {picture}",
        f"model:     {model}",
    ]
    if placeholders:
        lines += ["", "[yellow]This run used stand-ins, so the audio shows the plumbing, not the quality:[/yellow]"]
        lines += [f"  - {p}" for p in placeholders]
        lines += ["Real conversions need the published checkpoints:"] + [f"  - {n}" for n in NEEDED_FOR_REAL]
    console.print(Panel("\n".join(lines), title="gvc demo done", expand=False))
    return DemoResult(True, converted, picture, model, placeholders)
