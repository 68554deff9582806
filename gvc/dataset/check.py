"""`gvc check`: per-singer statistics of a data tree and every problem, each with its fix.

Length conventions (Grad-SVC `prepare/preprocess_f0.py` and `preprocess_hubert.py`): for d
seconds of audio the mel has ~100 d frames, the pitch track ~3 frames more, and the HuBERT units
half the mel rate. Training drops utterances shorter than 250 frames (2.5 s) after truncating to
the common length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gvc.layout import DataTree, Feature, Utterance
from prepare.meta import read_meta

FEATURES = (Feature.MEL, Feature.PITCH, Feature.HUBERT, Feature.SPEAKER)
FIX = {
    Feature.WAVES_16K: "gvc resample",
    Feature.WAVES_32K: "gvc resample",
    Feature.MEL: "gvc extract-mel",
    Feature.PITCH: "gvc extract-f0",
    Feature.HUBERT: "gvc extract-hubert",
    Feature.SPEAKER: "gvc extract-speaker",
}
PIT_MINUS_MEL = (1, 5)  # expected pitch-track surplus over the mel, in frames (nominally 3)
VEC_SLACK = 2  # |2 * units - mel| allowed, in mel frames


@dataclass(frozen=True)
class Problem:
    """One finding: `blocking` ones make `gvc check` exit 1."""

    where: str
    what: str
    fix: str
    blocking: bool = True


@dataclass
class SingerStats:
    """Per-singer summary."""

    files: int = 0
    seconds: list[float] = field(default_factory=list)
    voiced: list[float] = field(default_factory=list)


@dataclass
class CheckResult:
    """Everything `check_tree` found."""

    singers: dict[str, SingerStats] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No blocking problem."""
        return not any(p.blocking for p in self.problems)


def _load(feature: Feature, path: Path) -> np.ndarray:
    if feature is Feature.MEL:
        import torch

        return torch.load(path, map_location="cpu", weights_only=True).numpy()
    return np.load(path, allow_pickle=False)


def _expect_shape(feature: Feature, arr: np.ndarray) -> str | None:
    ok = {
        Feature.MEL: arr.ndim == 2 and arr.shape[0] == 100,
        Feature.PITCH: arr.ndim == 1,
        Feature.HUBERT: arr.ndim == 2 and arr.shape[1] == 256,
        Feature.SPEAKER: arr.shape == (256,),
    }[feature]
    want = {
        Feature.MEL: "[100, T]",
        Feature.PITCH: "[T]",
        Feature.HUBERT: "[T, 256]",
        Feature.SPEAKER: "[256]",
    }
    return None if ok else f"shape {list(arr.shape)}, expected {want[feature]}"


def check_utterance(
    tree: DataTree, utt: Utterance, min_frames: int, stats: SingerStats
) -> list[Problem]:
    """Problems of one utterance; fills in its singer's statistics."""
    problems: list[Problem] = []
    arrays: dict[Feature, np.ndarray] = {}
    for feature in FEATURES:
        path = tree.path(feature, utt)
        if not path.is_file():
            problems.append(
                Problem(utt.key, f"no {feature.value} file ({path})", f"run `{FIX[feature]}`")
            )
            continue
        try:
            arr = _load(feature, path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported
            problems.append(
                Problem(
                    str(path),
                    f"unreadable ({type(exc).__name__})",
                    f"delete it and run `{FIX[feature]}`",
                )
            )
            continue
        if not np.isfinite(arr).all():
            problems.append(
                Problem(str(path), "contains NaN or Inf", f"delete it and run `{FIX[feature]}`")
            )
            continue
        bad = _expect_shape(feature, arr)
        if bad:
            problems.append(Problem(str(path), bad, f"delete it and run `{FIX[feature]}`"))
            continue
        arrays[feature] = arr
    mel, pit, vec = arrays.get(Feature.MEL), arrays.get(Feature.PITCH), arrays.get(Feature.HUBERT)
    if mel is not None:
        stats.seconds.append(mel.shape[1] / 100)
    if pit is not None:
        stats.voiced.append(float(np.mean(pit > 0)) if len(pit) else 0.0)
    if mel is not None and pit is not None:
        d = len(pit) - mel.shape[1]
        if not PIT_MINUS_MEL[0] <= d <= PIT_MINUS_MEL[1]:
            problems.append(
                Problem(
                    utt.key,
                    f"pitch has {len(pit)} frames, mel {mel.shape[1]} (expected ~3 more)",
                    "re-extract both from the same resampled audio (--force)",
                )
            )
    if mel is not None and vec is not None and abs(2 * vec.shape[0] - mel.shape[1]) > VEC_SLACK:
        problems.append(
            Problem(
                utt.key,
                f"units have {vec.shape[0]} frames for a mel of {mel.shape[1]} (expected half)",
                "re-extract both from the same resampled audio (--force)",
            )
        )
    if mel is not None and pit is not None and vec is not None:
        usable = min(mel.shape[1], len(pit), 2 * vec.shape[0] - 2)
        if usable < min_frames:
            problems.append(
                Problem(
                    utt.key,
                    f"{usable / 100:.2f} s usable, shorter than the {min_frames / 100:.1f} s "
                    f"training crop",
                    "training skips it; merge short clips or remove it",
                    blocking=False,
                )
            )
    return problems


def check_metadata(tree: DataTree) -> list[Problem]:
    """Compare the feature folders' metadata with each other and with the mel gvc computes."""
    from prepare.mel import mel_settings

    problems: list[Problem] = []
    metas = {f: read_meta(tree.folder(f)) for f in Feature}
    for f, m in metas.items():
        if m is None and tree.folder(f).is_dir():
            problems.append(
                Problem(
                    str(tree.folder(f)),
                    "no .gvc-feature.json (made outside gvc?): settings cannot be verified",
                    f"re-run `{FIX[f]} --force` to be sure",
                    blocking=False,
                )
            )
    mel = metas[Feature.MEL]
    if mel is not None and mel.get("settings") != mel_settings():
        problems.append(
            Problem(
                str(tree.folder(Feature.MEL)),
                f"mel made with other settings {mel.get('settings')}",
                "run `gvc extract-mel --force`",
            )
        )
    w16, w32 = metas[Feature.WAVES_16K], metas[Feature.WAVES_32K]
    if w16 and w32:
        strip = lambda m: {k: v for k, v in m.get("settings", {}).items() if k != "sr"}  # noqa: E731
        if strip(w16) != strip(w32):
            problems.append(
                Problem(
                    str(tree.root),
                    "waves-16k and waves-32k were resampled with different settings",
                    "run `gvc resample --force`",
                )
            )
    spk, singer = metas[Feature.SPEAKER], read_meta(tree.singer_folder)
    if spk and singer and spk.get("extractor") != singer.get("extractor"):
        problems.append(
            Problem(
                str(tree.singer_folder),
                f"singer means made by {singer.get('extractor')}, utterances by "
                f"{spk.get('extractor')}",
                "run `gvc extract-speaker --force`",
            )
        )
    return problems


def check_tree(tree: DataTree = DataTree(), min_frames: int = 250) -> CheckResult:
    """Check every utterance found in any feature folder of `tree`."""
    result = CheckResult()
    utts = sorted({u for f in (Feature.WAVES_32K, *FEATURES) for u in tree.utterances(f)})
    if not utts:
        result.problems.append(
            Problem(
                str(tree.root),
                "no utterances found",
                "run `gvc resample` and the extract steps first",
            )
        )
        return result
    for utt in utts:
        stats = result.singers.setdefault(utt.singer, SingerStats())
        stats.files += 1
        result.problems.extend(check_utterance(tree, utt, min_frames, stats))
    result.problems.extend(check_metadata(tree))
    return result
