"""Copy-synthesis (`gvc vocode`): render audio from ground-truth mels with any vocoder.

Three inputs, one batch: stored mels (`--mel FILE|DIR` of `.mel.pt`), audio whose mel is
computed here (`--wave FILE|DIR`: resynthesis), or a data tree's mels (`--data data_gvc`,
optionally only the items of an index such as `files/valid.txt`). Every input becomes a
`prepare.engine` source, so the prepare commands' conventions hold: outputs newer than their
input are skipped unless `--force`, each WAV is written atomically, `-j` runs worker processes,
a bad input fails alone with a one-line reason, and the report's exit code is 0 or 1.

Vocoders whose output depends on F0 (`capabilities.needs_f0`: NSF-BigVGAN) get the data tree's
pitch file, Praat F0 of the audio in `--wave` mode, or `--pit` with a single mel file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gvc.errors import ConfigError, DataLayoutError, FeatureMismatch
from gvc.layout import DataTree, Feature, Utterance, strip_suffix
from prepare.discover import Problem, Source
from prepare.engine import Task

log = logging.getLogger(__name__)

MEL_SUFFIX = Feature.MEL.suffix  # ".mel.pt"


def read_mel(path: Path, n_mels: int):
    """Load a stored log-mel and check it.

    Returns:
        [n_mels, T] float32 CPU tensor.

    Raises:
        FeatureMismatch: unreadable, not a [n_mels, T] float tensor, or NaN/Inf values; the
            message names the file and the fix.
    """
    import torch

    path = Path(path)
    try:
        mel = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a mel file"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FeatureMismatch(f"{path}: not a readable .mel.pt ({reason}); recompute it with "
                              "gvc extract-mel") from exc
    if not isinstance(mel, torch.Tensor) or not mel.is_floating_point() or mel.dim() != 2:
        what = tuple(mel.shape) if isinstance(mel, torch.Tensor) else type(mel).__name__
        raise FeatureMismatch(f"{path}: expected a float log-mel [{n_mels}, T], found {what}; "
                              "recompute it with gvc extract-mel")
    if mel.shape[0] != n_mels:
        raise FeatureMismatch(f"{path}: the mel has {mel.shape[0]} bands, the vocoder needs "
                              f"{n_mels}; recompute it with gvc extract-mel")
    if mel.shape[1] == 0:
        raise FeatureMismatch(f"{path}: the mel has no frames; remove the file")
    if not torch.isfinite(mel).all():
        raise FeatureMismatch(f"{path}: the mel contains NaN or Inf values; recompute it with "
                              "gvc extract-mel")
    return mel.float().contiguous()


@dataclass(frozen=True)
class VocoderChoice:
    """Which vocoder to load in each process, and how to run it."""

    name: str
    ckpt: Path | None = None
    config: Path | None = None
    steps: int | None = None
    device: str = "cpu"
    precision: str = "fp32"
    seed: int = 1234

    def load(self):
        """Build the vocoder (weights read here; call once per process)."""
        from gvc.device import resolve_runtime
        from vocoder.registry import load_vocoder

        voc = load_vocoder(self.name, self.ckpt, self.config,
                           resolve_runtime(self.device, self.precision))
        if self.steps is not None:
            voc.set_steps(self.steps)
        return voc


@dataclass(frozen=True)
class Job:
    """One input: where its mel comes from, its optional F0 file, and the output WAV."""

    kind: str  # "mel" (a stored mel) or "wave" (audio: mel computed here)
    out: Path
    pit: Path | None = None


class VocodeTask(Task):
    """One WAV per input mel or audio file."""

    name = "vocode"

    def __init__(self, choice: VocoderChoice, jobs: dict[Path, Job], needs_f0: bool,
                 in_process: bool, vocoder=None) -> None:
        self.choice, self.jobs, self.needs_f0 = choice, jobs, needs_f0
        self.batch_size = 1 if in_process else 0  # in-process (GPU, -j 1): no workers
        self._vocoder = vocoder  # already loaded (in-process only: workers load their own)

    def outputs(self, src: Source) -> tuple[Path, ...]:
        return (self.jobs[src.path].out,)

    def preload(self) -> None:
        import torch  # noqa: F401 - imported once before forking workers

    def setup(self) -> None:
        if self._vocoder is None:
            self._vocoder = self.choice.load()

    def run(self, src: Source) -> float:
        from gvc.audio import write_wav_float
        from gvc.inference.synthesis import run_vocoder

        self.setup()
        voc = self._vocoder
        job = self.jobs[src.path]
        if job.kind == "wave":
            from prepare.mel import compute_mel

            mel, _ = compute_mel(src.path)
        else:
            mel = read_mel(src.path, voc.n_mels)
        f0 = self._f0(src.path, job, mel.shape[-1])
        audio = run_vocoder(voc, mel, f0, self.choice.seed)
        if not np.isfinite(audio).all():
            raise FeatureMismatch(f"{src.path}: the vocoder produced NaN/Inf samples; check the "
                                  "vocoder file")
        write_wav_float(job.out, audio, voc.sample_rate)
        return len(audio) / voc.sample_rate

    def _f0(self, path: Path, job: Job, frames: int) -> np.ndarray:
        """[frames] Hz: zeros for vocoders that ignore F0, else the file's or Praat's track."""
        if not self.needs_f0:
            return np.zeros(frames)
        if job.pit is not None:
            from gvc.inference.features import read_pitch

            f0 = read_pitch(job.pit)
        elif job.kind == "wave":
            from gvc.inference.features import compute_pitch, load_source
            from pitch import make_extractor

            extractor = make_extractor("praat")
            extractor.setup()
            f0 = compute_pitch(extractor, load_source(path))
        else:
            raise FeatureMismatch(f"{path}: the {self.choice.name} vocoder needs F0 and no "
                                  "pitch file was found; pass --pit or use --data with pitch/")
        if len(f0) < frames - 3:  # Grad-SVC's grid is ~3 frames longer; far shorter is wrong
            raise FeatureMismatch(f"{job.pit or path}: {len(f0)} F0 frames for a {frames}-frame "
                                  "mel; re-extract the pitch")
        out = np.zeros(frames)
        out[: min(frames, len(f0))] = f0[:frames]
        return out


def _mel_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(f"*{MEL_SUFFIX}")
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


def plan_mels(mel: Path, out: Path | None, pit: Path | None) -> tuple[list[Source], dict]:
    """Sources and jobs of `--mel FILE|DIR` (output `<stem>.wav` beside a file by default,
    a mirrored tree under `out` for a folder).

    Raises:
        ConfigError: missing input, no mel files, `--pit` with a folder, `out` = input folder.
    """
    mel = Path(mel)
    if mel.is_file():
        stem = mel.name[: -len(MEL_SUFFIX)] if mel.name.endswith(MEL_SUFFIX) else mel.stem
        dst = Path(out) if out is not None else mel.with_name(f"{stem}.wav")
        return [Source(Utterance("", stem), mel)], {mel: Job("mel", dst, pit)}
    if not mel.is_dir():
        raise ConfigError(f"--mel {mel}: no such file or folder")
    if pit is not None:
        raise ConfigError("--pit belongs to one --mel file; a folder uses --data for pitch")
    if out is None or Path(out).resolve() == mel.resolve():
        raise ConfigError(f"--mel {mel} is a folder: pass --out OUTPUT_FOLDER (not the input)")
    files = _mel_files(mel)
    if not files:
        raise ConfigError(f"no {MEL_SUFFIX} files under {mel}")
    sources, jobs = [], {}
    for path in files:
        rel = path.relative_to(mel)
        stem = path.name[: -len(MEL_SUFFIX)]
        sources.append(Source(Utterance(rel.parent.as_posix(), stem), path))
        jobs[path] = Job("mel", Path(out) / rel.parent / f"{stem}.wav")
    return sources, jobs


def plan_waves(wave: Path, out: Path | None) -> tuple[list[Source], dict]:
    """Sources and jobs of `--wave FILE|DIR` (resynthesis; `<stem>.vocoded.wav` beside a file
    by default, a mirrored tree under `out` for a folder)."""
    from gvc.inference.batch import plan_folder

    wave = Path(wave)
    if wave.is_file():
        dst = Path(out) if out is not None else wave.with_name(f"{wave.stem}.vocoded.wav")
        if dst.resolve() == wave.resolve():
            raise ConfigError(f"--out {dst} is the input file; choose another path")
        return [Source(Utterance("", wave.stem), wave)], {wave: Job("wave", dst)}
    if not wave.is_dir():
        raise ConfigError(f"--wave {wave}: no such file or folder")
    pairs = plan_folder(wave, out, recursive=True)
    sources = [Source(Utterance(src.parent.as_posix(), src.stem), src) for src, _ in pairs]
    return sources, {src: Job("wave", dst) for src, dst in pairs}


def plan_data(data: Path, out: Path, files: Path | None) -> tuple[list[Source], dict, list]:
    """Sources and jobs of a data tree's mels (`out/<singer>/<utt>.wav`), all of them or those
    of an index file; F0 from the tree's pitch folder.

    Returns:
        (sources, jobs, problems: index entries whose mel file is missing).

    Raises:
        DataLayoutError: no mel folder / empty index.
    """
    tree = DataTree(Path(data))
    problems: list[Problem] = []
    if files is not None:
        from gvc.dataset.index import read_index

        entries = [(m, p) for m, _, p, _ in read_index(files)]
        if not entries:
            raise DataLayoutError(f"{files}: the index lists no utterances")
    else:
        utts = tree.utterances(Feature.MEL)
        if not utts:
            raise DataLayoutError(f"{tree.folder(Feature.MEL)}: no mels; run gvc extract-mel "
                                  "first")
        entries = [(tree.path(Feature.MEL, u), tree.path(Feature.PITCH, u)) for u in utts]
    sources, jobs = [], {}
    for mel, pit in entries:
        if not mel.is_file():
            problems.append(Problem(mel, "mel file missing; run gvc extract-mel"))
            continue
        utt = Utterance(mel.parent.name, strip_suffix(mel, Feature.MEL))
        sources.append(Source(utt, mel))
        jobs[mel] = Job("mel", Path(out) / utt.singer / f"{utt.name}.wav",
                        pit if pit.is_file() else None)
    return sources, jobs, problems
