"""Pairing the files of a reference side with those of a generated side.

A side is one audio file or a folder searched recursively. Files pair by their path relative to
the folder without the audio suffix (`alice/song.wav` <-> `alice/song.flac`); `gvc infer`'s
`.gvc` marker is ignored, so `song.gvc.wav` pairs with `song.wav`. What is still unmatched then
pairs by bare stem when the stem is unique on both sides (a flat folder of outputs against a tree
of sources). Everything left over is reported, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gvc.audio import is_audio_file
from gvc.errors import ConfigError

#: `gvc infer` names its output `<stem>.gvc.wav`.
GENERATED_MARK = ".gvc"


@dataclass(frozen=True)
class Pair:
    """One reference (or source) file and the generated file scored against it.

    Attributes:
        key: the name shown in tables and written to CSV/JSON (relative path, no suffix).
        ref: the reference or source recording.
        gen: the generated recording.
    """

    key: str
    ref: Path
    gen: Path


@dataclass
class Pairing:
    """Pairs in key order plus every file that found no partner (path, reason)."""

    pairs: list[Pair] = field(default_factory=list)
    unpaired: list[tuple[Path, str]] = field(default_factory=list)


def _key(path: Path, root: Path) -> str:
    rel = path.relative_to(root) if path != root else Path(path.name)
    name = rel.name[: -len(rel.suffix)] if rel.suffix else rel.name
    if name.endswith(GENERATED_MARK):
        name = name[: -len(GENERATED_MARK)]
    return (rel.parent / name).as_posix()


def list_side(path: Path, option: str) -> dict[str, Path]:
    """Audio files of one side by key.

    Raises:
        ConfigError: the path does not exist, or a folder holds no audio file.
    """
    path = Path(path)
    if path.is_file():
        return {_key(path, path): path}
    if not path.is_dir():
        raise ConfigError(f"{option} {path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.is_file() and is_audio_file(p))
    if not files:
        raise ConfigError(f"{option} {path}: the folder holds no audio file (wav, flac, ...)")
    return {_key(p, path): p for p in files}


def pair_files(ref: Path, gen: Path, ref_option: str = "--ref") -> Pairing:
    """Pair the audio files of `ref` (file or folder) with those of `gen`.

    Two single files always pair, whatever their names.

    Raises:
        ConfigError: a side does not exist or holds no audio.
    """
    refs, gens = list_side(ref, ref_option), list_side(gen, "--gen")
    if Path(ref).is_file() and Path(gen).is_file():
        (key, r), (g,) = next(iter(refs.items())), gens.values()
        return Pairing([Pair(key, r, g)])
    result = Pairing()
    for key in sorted(refs.keys() & gens.keys()):
        result.pairs.append(Pair(key, refs.pop(key), gens.pop(key)))
    by_stem_ref = _unique_stems(refs)
    by_stem_gen = _unique_stems(gens)
    for stem in sorted(by_stem_ref.keys() & by_stem_gen.keys()):
        key = by_stem_ref[stem]
        result.pairs.append(Pair(key, refs.pop(key), gens.pop(by_stem_gen[stem])))
    result.pairs.sort(key=lambda p: p.key)
    result.unpaired += [(p, f"no generated file for it under {gen}") for p in refs.values()]
    result.unpaired += [(p, f"no {ref_option} file for it under {ref}") for p in gens.values()]
    return result


def _unique_stems(side: dict[str, Path]) -> dict[str, str]:
    """Bare stem -> key, for the stems that occur once."""
    seen: dict[str, list[str]] = {}
    for key in side:
        seen.setdefault(key.rsplit("/", 1)[-1], []).append(key)
    return {stem: keys[0] for stem, keys in seen.items() if len(keys) == 1}
