"""`gvc extract-speaker`: per-utterance d-vectors, per-singer means and singer profiles.

Per utterance: `speaker/<singer>/<utt>.spk.npy` (float32 [256]). Per singer: the plain mean
`singer/<singer>.spk.npy` (as Grad-SVC computes it, never written back over the utterances) and
`singer/<singer>.profile.json` (amount of data, median F0 and range from the pitch files).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from gvc.audio import load_audio
from gvc.errors import AudioError
from gvc.fileio import save_npy
from gvc.layout import Feature, feature_path
from prepare.discover import Source
from prepare.engine import Task

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000
ENCODERS = ("resemblyzer", "lstm")


def speaker_settings(encoder: str, model_dir: Path | None) -> dict:
    """Folder metadata: encoder and, for `lstm`, which weights (name and size; a stat only)."""
    if encoder != "lstm":
        return {"encoder": encoder}
    from speaker.checkpoint import DEFAULT_DIR

    ckpt = Path(model_dir or DEFAULT_DIR) / "best_model.pth.tar"
    return {
        "encoder": encoder,
        "checkpoint": ckpt.name,
        "bytes": ckpt.stat().st_size if ckpt.is_file() else None,
    }


class SpeakerTask(Task):
    """One d-vector per 16 kHz wave."""

    name = "extract-speaker"

    def __init__(
        self,
        out_root: Path,
        encoder: str,
        model_dir: Path | None,
        device: str = "cpu",
        in_process_batch: int = 0,
    ):
        self.out_root = Path(out_root)
        self.encoder = encoder
        self.model_dir = model_dir
        self.device = device
        self.batch_size = in_process_batch
        self._model = None

    def outputs(self, src: Source) -> tuple[Path, ...]:
        return (feature_path(self.out_root, Feature.SPEAKER, src.utt),)

    def preload(self) -> None:
        import torch  # noqa: F401

    def setup(self) -> None:
        if self._model is None:
            from gvc.device import resolve_runtime
            from speaker import load_speaker_encoder

            self._model = load_speaker_encoder(
                self.encoder, self.model_dir, resolve_runtime(self.device)
            )

    def run(self, src: Source) -> float:
        self.setup()
        audio = load_audio(src.path, SAMPLE_RATE)
        if len(audio) < SAMPLE_RATE // 10:
            raise AudioError(f"{src.path}: shorter than 0.1 s, too short for a speaker embedding")
        save_npy(self.outputs(src)[0], np.asarray(self._model.embed(audio), dtype=np.float32))
        return len(audio) / SAMPLE_RATE


def write_singer_means(
    spk_root: Path,
    singer_root: Path,
    *,
    pitch_root: Path | None = None,
    waves_root: Path | None = None,
) -> list[str]:
    """Mean d-vector and profile of every singer folder under `spk_root`; files whose content is
    unchanged are not rewritten. Returns the singers written."""
    from speaker import build_profile, profile_path, singer_mean

    written = []
    for folder in sorted(
        p for p in Path(spk_root).iterdir() if p.is_dir() and not p.name.startswith(".")
    ):
        files = sorted(f for f in folder.glob("*.spk.npy") if not f.name.startswith("."))
        if not files:
            continue
        mean = singer_mean([np.load(f) for f in files])
        names = [f.name[: -len(".spk.npy")] for f in files]
        seconds = 0.0
        if waves_root is not None:
            for n in names:
                wav = Path(waves_root) / folder.name / f"{n}.wav"
                if wav.is_file():
                    seconds += sf.info(str(wav)).duration
        pitches = []
        if pitch_root is not None:
            pitches = [
                np.load(p)
                for n in names
                if (p := Path(pitch_root) / folder.name / f"{n}.pit.npy").is_file()
            ]
        profile = build_profile(len(files), seconds, pitches)
        out = Path(singer_root) / f"{folder.name}.spk.npy"
        if not (out.is_file() and np.array_equal(np.load(out), mean)):
            save_npy(out, mean)
            written.append(folder.name)
        prof = profile_path(Path(singer_root), folder.name)
        if not prof.is_file() or prof.read_text("utf-8") != _profile_text(profile):
            profile.save(prof)
    return written


def _profile_text(profile) -> str:
    import dataclasses
    import json

    return json.dumps(dataclasses.asdict(profile), indent=2, sort_keys=True) + "\n"


def write_embedding(
    wave: Path, out: Path, *, encoder: str, model_dir: Path | None = None, device: str = "cpu"
) -> np.ndarray:
    """Single-file mode: the d-vector of `wave` saved to `out`."""
    task = SpeakerTask(out.parent, encoder, model_dir, device)
    task.setup()
    audio = load_audio(wave, SAMPLE_RATE)
    emb = np.asarray(task._model.embed(audio), dtype=np.float32)
    save_npy(out, emb)
    return emb
