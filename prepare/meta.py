"""Feature-folder metadata: which extractor, with which settings, made a folder.

Each output folder holds `.gvc-feature.json`. Running a step with other settings over an existing
folder is refused (mixing two pitch extractors in one training set is a silent quality bug) unless
the user passes `--force`, which recomputes everything under the new settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gvc import __version__
from gvc.errors import FeatureMismatch
from gvc.fileio import save_json

META_NAME = ".gvc-feature.json"
FORMAT_VERSION = 1


def describe(feature: str, extractor: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The metadata record of a feature folder."""
    return {
        "format": FORMAT_VERSION,
        "feature": feature,
        "extractor": extractor,
        "settings": settings,
    }


def read_meta(folder: Path) -> dict[str, Any] | None:
    """The metadata of `folder`, or None when it has none (new, or made by Grad-SVC)."""
    path = Path(folder) / META_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FeatureMismatch(
            f"{path}: unreadable feature metadata ({exc}); delete it and re-run with --force"
        ) from exc


def _comparable(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta.get(k) for k in ("feature", "extractor", "settings")}


def claim_folder(folder: Path, meta: dict[str, Any], force: bool, command: str) -> None:
    """Check `folder` against `meta` and record it.

    Raises:
        FeatureMismatch: the folder was made with other settings and `force` is off.
    """
    old = read_meta(folder)
    if old is not None and _comparable(old) != _comparable(meta) and not force:
        raise FeatureMismatch(
            f"{folder} was made by {old.get('extractor')} {old.get('settings')}, not "
            f"{meta['extractor']} {meta['settings']}; re-run `{command}` with --force to recompute "
            "it all, or write to another folder"
        )
    if old is None or _comparable(old) != _comparable(meta):
        Path(folder).mkdir(parents=True, exist_ok=True)
        save_json(Path(folder) / META_NAME, {**meta, "gvc_version": __version__})
