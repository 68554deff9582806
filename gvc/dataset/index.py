"""Grad-SVC's training index: one utterance per line, `mel|vec|pit|spk` paths joined by `|`.

    data_gvc/mel/alice/a.mel.pt|data_gvc/hubert/alice/a.vec.npy|data_gvc/pitch/alice/a.pit.npy|data_gvc/speaker/alice/a.spk.npy

Unlike Grad-SVC's `preprocess_train.py` (unseeded shuffle, the first 10 to validation), the split
is seeded and the validation items are spread over the singers round-robin.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from gvc.errors import DataLayoutError
from gvc.fileio import save_text
from gvc.layout import DataTree, Feature, Utterance

INDEX_FEATURES = (Feature.MEL, Feature.HUBERT, Feature.PITCH, Feature.SPEAKER)
DEFAULT_FILES = Path("files")


@dataclass
class IndexResult:
    """What `build_index` wrote and what it had to leave out."""

    train: list[Utterance] = field(default_factory=list)
    valid: list[Utterance] = field(default_factory=list)
    missing: list[tuple[Utterance, list[str]]] = field(default_factory=list)
    train_path: Path = DEFAULT_FILES / "train.txt"
    valid_path: Path = DEFAULT_FILES / "valid.txt"


def index_line(tree: DataTree, utt: Utterance) -> str:
    """The `mel|vec|pit|spk` line of one utterance (POSIX separators)."""
    return "|".join(tree.path(f, utt).as_posix() for f in INDEX_FEATURES)


def parse_line(line: str) -> tuple[Path, Path, Path, Path]:
    """Split an index line into its four paths, as Grad-SVC's loader does."""
    parts = line.rstrip("\n").split("|")
    if len(parts) != 4:
        raise DataLayoutError(
            f"index line has {len(parts)} fields, expected 4 (mel|vec|pit|spk): {line!r}"
        )
    mel, vec, pit, spk = (Path(p) for p in parts)
    return mel, vec, pit, spk


def read_index(path: Path) -> list[tuple[Path, Path, Path, Path]]:
    """All entries of an index file (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise DataLayoutError(f"{path}: index not found; build it with `gvc index`")
    return [parse_line(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def split_valid(
    utts: list[Utterance], count: int, seed: int
) -> tuple[list[Utterance], list[Utterance]]:
    """Seeded split: `count` validation items taken round-robin across singers."""
    rng = random.Random(seed)
    by_singer: dict[str, list[Utterance]] = {}
    for u in utts:
        by_singer.setdefault(u.singer, []).append(u)
    pools = [rng.sample(v, len(v)) for _, v in sorted(by_singer.items())]
    valid: list[Utterance] = []
    while len(valid) < min(count, len(utts) - 1) and any(pools):
        for pool in pools:
            # keep at least one training utterance per singer
            if len(pool) > 1 and len(valid) < count:
                valid.append(pool.pop())
        if all(len(p) <= 1 for p in pools):
            break
    chosen = set(valid)
    train = [u for u in utts if u not in chosen]
    rng.shuffle(train)
    return train, sorted(valid)


def build_index(
    tree: DataTree = DataTree(),
    out_dir: Path = DEFAULT_FILES,
    *,
    valid_count: int = 10,
    seed: int = 37,
) -> IndexResult:
    """Write `out_dir/train.txt` and `out_dir/valid.txt` for every utterance of `tree` that has
    all four features (the utterances are those of `waves-32k`, as in Grad-SVC).

    Raises:
        DataLayoutError: no utterance has all four features.
    """
    result = IndexResult(
        train_path=Path(out_dir) / "train.txt", valid_path=Path(out_dir) / "valid.txt"
    )
    complete = []
    for utt in tree.utterances(Feature.WAVES_32K):
        absent = [f.value for f in INDEX_FEATURES if not tree.path(f, utt).is_file()]
        if absent:
            result.missing.append((utt, absent))
        else:
            complete.append(utt)
    if not complete:
        raise DataLayoutError(
            f"{tree.root}: no utterance has all of mel, hubert, pitch and speaker features; "
            "run gvc resample, extract-mel, extract-f0, extract-hubert and extract-speaker first"
        )
    result.train, result.valid = split_valid(complete, valid_count, seed)
    save_text(result.train_path, "".join(index_line(tree, u) + "\n" for u in result.train))
    save_text(result.valid_path, "".join(index_line(tree, u) + "\n" for u in result.valid))
    return result
