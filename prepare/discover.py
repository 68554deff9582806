"""Finding the utterances of a `<root>/<singer>/<utt>.<ext>` tree."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from gvc.errors import ConfigError, DataLayoutError
from gvc.layout import Utterance

LAYOUT_HELP = (
    "expected one folder per singer: {root}/<singer>/<utterance>.wav "
    "(e.g. {root}/alice/song01.wav, {root}/bob/take3.flac)"
)


@dataclass(frozen=True)
class Source:
    """One input file and the utterance it stands for."""

    utt: Utterance
    path: Path


@dataclass(frozen=True)
class Problem:
    """An input that cannot be processed, with the reason (reported as a failure)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Shard:
    """`K/N`: this process handles the 1/N of utterances whose key hashes to K-1 (mod N).

    The assignment depends only on `<singer>/<utt>`, so N independent jobs split a corpus with no
    overlap and no coordination, and adding files does not move the others between shards.
    """

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, spec: str | None) -> Shard:
        """Parse `K/N` (1 <= K <= N); None means the whole corpus."""
        if spec is None or spec == "":
            return cls()
        try:
            k, n = (int(x) for x in spec.split("/"))
        except ValueError as exc:
            raise ConfigError(f"--shard {spec!r}: expected K/N, e.g. 1/4") from exc
        if not 1 <= k <= n:
            raise ConfigError(f"--shard {spec!r}: need 1 <= K <= N")
        return cls(k, n)

    def owns(self, utt: Utterance) -> bool:
        """Whether this shard processes `utt`."""
        return self.count == 1 or zlib.crc32(utt.key.encode("utf-8")) % self.count == self.index - 1


def discover(
    root: Path, suffixes: frozenset[str] | tuple[str, ...]
) -> tuple[list[Source], list[Problem]]:
    """Walk `root/<singer>/*` for files whose name ends with one of `suffixes` (case-insensitive).

    Hidden files and folders are ignored. Files directly under `root` or an empty tree raise
    `DataLayoutError`; an unreadable singer folder or two inputs that would write the same
    utterance are returned as problems so the rest of the batch still runs.

    Returns:
        (sources sorted by singer then name, problems).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataLayoutError(f"{root}: no such folder; {LAYOUT_HELP.format(root=root)}")
    sources: list[Source] = []
    problems: list[Problem] = []
    seen: dict[Utterance, Path] = {}
    loose = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            if _matches(entry.name, suffixes):
                loose.append(entry.name)
            continue
        if not entry.is_dir():
            continue
        try:
            files = sorted(os.scandir(entry.path), key=lambda e: e.name)
        except OSError as exc:
            problems.append(
                Problem(
                    Path(entry.path), f"folder cannot be read ({exc.strerror}); fix its permissions"
                )
            )
            continue
        for f in files:
            if f.name.startswith(".") or not f.is_file() or not _matches(f.name, suffixes):
                continue
            utt = Utterance(entry.name, _stem(f.name, suffixes))
            path = Path(f.path)
            if utt in seen:
                problems.append(
                    Problem(path, f"same utterance name as {seen[utt].name}; rename one of them")
                )
                continue
            seen[utt] = path
            sources.append(Source(utt, path))
    if loose:
        raise DataLayoutError(
            f"{root}: audio files directly under the root ({', '.join(loose[:3])}"
            f"{', ...' if len(loose) > 3 else ''}); {LAYOUT_HELP.format(root=root)}"
        )
    if not sources and not problems:
        raise DataLayoutError(f"{root}: no input files found; {LAYOUT_HELP.format(root=root)}")
    return sources, problems


def _matches(name: str, suffixes) -> bool:
    low = name.lower()
    return any(low.endswith(s) for s in suffixes)


def _stem(name: str, suffixes) -> str:
    low = name.lower()
    for s in sorted(suffixes, key=len, reverse=True):
        if low.endswith(s):
            return name[: -len(s)]
    return name
