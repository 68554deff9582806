"""Check the feature folders a training index uses against the config and each other.

Each feature folder records its extractor and settings in `.gvc-feature.json` (`prepare.meta`).
Before any compute the trainer refuses: a mel folder made with another mel definition than the
config's `data:` block; an index that mixes folders made by different extractors; features that
differ from those of the model being fine-tuned or resumed. Folders without metadata (made by
Grad-SVC) are accepted with a warning, since their settings cannot be verified.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gvc.errors import FeatureMismatch
from gvc.export.meta import feature_mismatches, features_record, mel_mismatches
from prepare.meta import read_meta

if TYPE_CHECKING:
    from gvc.config import Config

log = logging.getLogger(__name__)

# position of each feature in an index entry (mel|vec|pit|spk)
_POSITION = {"mel": 0, "content": 1, "pitch": 2, "speaker": 3}
_FIX = {"mel": "gvc extract-mel", "content": "gvc extract-hubert", "pitch": "gvc extract-f0",
        "speaker": "gvc extract-speaker"}


def _comparable(meta: dict[str, Any] | None) -> str:
    import json

    pair = (None, None) if meta is None else (meta.get("extractor"), meta.get("settings"))
    return json.dumps(pair, sort_keys=True, default=str)


def folder_metas(entries: Iterable[tuple[Path, ...]]) -> dict[str, dict[Path, dict | None]]:
    """Feature name -> {feature folder -> its metadata (None if unrecorded)}.

    The folder of `data_gvc/pitch/<singer>/<utt>.pit.npy` is `data_gvc/pitch`.
    """
    folders: dict[str, set[Path]] = {name: set() for name in _POSITION}
    for entry in entries:
        for name, pos in _POSITION.items():
            folders[name].add(Path(entry[pos]).parent.parent)
    return {name: {f: read_meta(f) for f in sorted(fs)} for name, fs in folders.items()}


def check_features(entries: list[tuple[Path, ...]], cfg: Config) -> dict[str, Any]:
    """Validate the feature metadata of an index and return its `features` record.

    Args:
        entries: index entries (mel, vec, pit, spk paths) of the training and validation lists.
        cfg: the run's config (its `data:` block must equal the mel folder's settings).

    Raises:
        FeatureMismatch: any disagreement, with the folder, both values and the fix.
    """
    metas = folder_metas(entries)
    chosen: dict[str, dict | None] = {}
    for name, by_folder in metas.items():
        kinds = {_comparable(m) for m in by_folder.values()}
        if len(kinds) > 1:
            described = "; ".join(f"{f}: {m.get('extractor') if m else 'unrecorded'} "
                                  f"{m.get('settings') if m else ''}".rstrip()
                                  for f, m in by_folder.items())
            raise FeatureMismatch(
                f"the index mixes {name} folders made with different settings ({described}); "
                f"re-run `{_FIX[name]} --force` so that all are made the same way")
        unrecorded = [str(f) for f, m in by_folder.items() if m is None]
        if unrecorded:
            log.warning("%s has no .gvc-feature.json (made by Grad-SVC?): its settings cannot be "
                        "verified", ", ".join(unrecorded))
        chosen[name] = next(iter(by_folder.values()), None)
    for folder, meta in metas["mel"].items():
        if meta is not None and isinstance(meta.get("settings"), dict):
            diff = mel_mismatches(cfg.data, meta["settings"])
            if diff:
                raise FeatureMismatch(
                    f"{folder} was made with another mel than the config's data: block "
                    f"({'; '.join(diff)}); re-run `gvc extract-mel --force` or train with the "
                    "config the mels were made for")
    return features_record(cfg, chosen)


def check_reference(record: dict[str, Any], reference: dict[str, Any] | None,
                    reference_name: str) -> None:
    """Refuse features that differ from those a checkpoint was trained on.

    Args:
        record: the run's `features` record (from `check_features`).
        reference: the `features` record of the checkpoint being fine-tuned or resumed (None:
            unknown, nothing to compare).
        reference_name: that checkpoint's path, for the message.

    Raises:
        FeatureMismatch: extractor names, settings or mel definitions differ.
    """
    if not reference:
        return
    diff = feature_mismatches(reference, record)
    if diff:
        raise FeatureMismatch(
            f"the training features differ from those {reference_name} was trained on "
            f"({'; '.join(diff)}); re-extract them with the model's settings, or start a new "
            "run without it")
