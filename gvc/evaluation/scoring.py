"""Scoring pairs of recordings: reconstruction (copy-synthesis) and conversion.

`Analyser` turns one file into what the scores need, with the project's own extractors: F0 from
`pitch.make_extractor` on 16 kHz audio, the log-mel of `vocoder.mel` on 32 kHz audio and, for
conversions, a d-vector from a `speaker` encoder. `score_reconstruction` and `score_conversion`
score every pair and keep going past a bad file: its reason lands in `EvalResult.failures`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gvc.evaluation import metrics
from gvc.evaluation.pairs import Pair

log = logging.getLogger(__name__)

PITCH_RATE = 16000
MEL_RATE = 32000

#: Score columns of each mode, in table / CSV order. The CSV and JSON add `file`, `ref` (or
#: `source`) and `gen` in front; these names are a stable interface for scripts.
RECONSTRUCTION_SCORES = ("f0_rmse_cents", "fpc", "vuv_f1", "vuv_error", "mcd_db", "mel_l1",
                         "duration_diff_s", "voiced_frames")
CONVERSION_SCORES = ("f0_rmse_cents", "fpc", "vuv_f1", "vuv_error", "spk_sim", "src_spk_sim",
                     "spk_sim_gain", "duration_diff_s", "voiced_frames")


@dataclass(frozen=True)
class Analysis:
    """What the scores need from one recording.

    Attributes:
        f0: [T_f0] F0 in Hz at 100 fps, 0 = unvoiced (the project's pitch grid).
        mel: [n_mels, T_mel] log-mel of `vocoder.mel`, or None when not needed.
        seconds: duration of the file.
        wav_16k: [L] float32 16 kHz samples (kept for the speaker encoder).
    """

    f0: np.ndarray
    mel: np.ndarray | None
    seconds: float
    wav_16k: np.ndarray


class Analyser:
    """Reads a file and extracts F0 (and the mel when `with_mel`) with the project's code."""

    def __init__(self, f0_method: str = "praat", *, device: str = "cpu",
                 with_mel: bool = True) -> None:
        from pitch import F0Method, make_extractor

        # Full-precision Praat F0 (no 0.1 Hz rounding): the rounding is a training-file format.
        self.pitch = make_extractor(F0Method(f0_method), device=device, decimals=None)
        self.pitch.setup()
        self.with_mel = with_mel

    def __call__(self, path: Path) -> Analysis:
        """Analyse one file.

        Raises:
            AudioError: unreadable, empty or non-finite audio.
        """
        from gvc.audio import read_audio, resample

        audio, sr = read_audio(path)
        wav16 = resample(audio, sr, PITCH_RATE)
        mel = None
        if self.with_mel:
            import torch

            from vocoder.mel import mel_spectrogram

            wav32 = resample(audio, sr, MEL_RATE)
            mel = mel_spectrogram(torch.from_numpy(np.ascontiguousarray(wav32))).numpy()
        return Analysis(self.pitch.extract(wav16), mel, len(audio) / sr, wav16)


@dataclass
class EvalResult:
    """Scores of one run.

    Attributes:
        mode: "reconstruction" or "conversion".
        scores: the score columns of the mode, in order.
        rows: one dict per scored pair: `file`, the reference column, `gen`, then the scores.
        failures: (path, reason) of every file that was not scored (unpaired or unreadable).
        settings: how the scores were made (F0 method, encoder, shift, ...), for the JSON.
        tracks: key -> (reference F0 as compared, generated F0), kept for `--plot`.
    """

    mode: str
    scores: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    tracks: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def ref_column(self) -> str:
        """`ref` for reconstruction, `source` for conversion."""
        return "source" if self.mode == "conversion" else "ref"

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column of a row, in CSV order."""
        return ("file", self.ref_column, "gen", *self.scores)

    @property
    def ok(self) -> bool:
        """True when every file was paired and scored."""
        return not self.failures


def _run(result: EvalResult, pairs: Sequence[Pair],
         score: Callable[[Pair], tuple[dict[str, float], np.ndarray, np.ndarray]]) -> EvalResult:
    from prepare.engine import describe_error

    for pair in pairs:
        try:
            values, ref_f0, gen_f0 = score(pair)
        except Exception as exc:  # noqa: BLE001 - reported per file, the others still scored
            result.failures.append((_blame(exc, pair), describe_error(exc)))
            log.debug("%s failed", pair.key, exc_info=exc)
            continue
        result.rows.append({"file": pair.key, result.ref_column: str(pair.ref),
                            "gen": str(pair.gen), **values})
        result.tracks[pair.key] = (ref_f0, gen_f0)
    return result


def _blame(exc: BaseException, pair: Pair) -> Path:
    """The file an error message names (the generated one when neither is named)."""
    return pair.ref if str(pair.ref) in str(exc) else pair.gen


def _pitch_values(ref_f0: np.ndarray, gen_f0: np.ndarray, ref: Analysis,
                  gen: Analysis) -> dict[str, float]:
    f0 = metrics.f0_scores(ref_f0, gen_f0)
    return {"f0_rmse_cents": f0.f0_rmse_cents, "fpc": f0.fpc, "vuv_f1": f0.vuv_f1,
            "vuv_error": f0.vuv_error, "duration_diff_s": gen.seconds - ref.seconds,
            "voiced_frames": f0.voiced_frames}


def score_reconstruction(pairs: Sequence[Pair], f0_method: str = "praat", *,
                         device: str = "cpu") -> EvalResult:
    """Score generated files against references of the same singing (copy-synthesis).

    Per pair: F0 RMSE (cents) and FPC on frames voiced in both, V/UV F1 and error rate, MCD (dB,
    DTW-aligned), log-mel L1 and the duration difference (gen - ref, seconds).
    """
    analyse = Analyser(f0_method, device=device)

    def score(pair: Pair) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
        ref, gen = analyse(pair.ref), analyse(pair.gen)
        values = _pitch_values(ref.f0, gen.f0, ref, gen)
        values["mcd_db"] = metrics.mcd_db(ref.mel, gen.mel)
        values["mel_l1"] = metrics.mel_l1(ref.mel, gen.mel)
        return {k: values[k] for k in RECONSTRUCTION_SCORES}, ref.f0, gen.f0

    result = EvalResult("reconstruction", RECONSTRUCTION_SCORES,
                        settings={"f0_method": f0_method, "alignment": "time (cut to shorter)",
                                  "mcd_alignment": "dtw"})
    return _run(result, pairs, score)


def score_conversion(pairs: Sequence[Pair], target: np.ndarray, encoder: Any,
                     shift: float = 0.0, f0_method: str = "praat", *,
                     device: str = "cpu") -> EvalResult:
    """Score conversions against their sources and the target singer.

    Per pair: the output's F0 against the source's F0 shifted by `shift` semitones (RMSE in
    cents, FPC, V/UV), and the cosine similarity to the target d-vector `target` [256] of the
    output (`spk_sim`) and of the source (`src_spk_sim`); `spk_sim_gain` is their difference,
    how far the timbre moved towards the target. `encoder` is a `speaker.SpeakerEncoder` of the
    same family that made `target`.
    """
    analyse = Analyser(f0_method, device=device, with_mel=False)

    def score(pair: Pair) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
        src, gen = analyse(pair.ref), analyse(pair.gen)
        src_f0 = metrics.shift_f0(src.f0, shift)
        values = _pitch_values(src_f0, gen.f0, src, gen)
        values["spk_sim"] = metrics.cosine(encoder.embed(gen.wav_16k), target)
        values["src_spk_sim"] = metrics.cosine(encoder.embed(src.wav_16k), target)
        values["spk_sim_gain"] = values["spk_sim"] - values["src_spk_sim"]
        return {k: values[k] for k in CONVERSION_SCORES}, src_f0, gen.f0

    result = EvalResult("conversion", CONVERSION_SCORES,
                        settings={"f0_method": f0_method, "shift": shift,
                                  "speaker_encoder": getattr(encoder, "name", "?"),
                                  "alignment": "time (cut to shorter)"})
    return _run(result, pairs, score)
