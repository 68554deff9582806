"""Where the YAML presets live, in a source checkout and in an installed wheel.

The wheel build maps the repository's `configs/` folder to `gvc/_presets`; a source checkout
(editable install or plain clone) reads `configs/` next to the `gvc` package.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from gvc.errors import ConfigError

PRESET_SUFFIX = ".yaml"


def presets_dir() -> Path:
    """Return the folder that holds the preset YAML files.

    Returns:
        `gvc/_presets` inside an installed wheel, else `<repo>/configs`.

    Raises:
        ConfigError: neither folder exists (a broken install).
    """
    packaged = Path(str(resources.files("gvc") / "_presets"))
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "configs"
    if checkout.is_dir():
        return checkout
    raise ConfigError(
        f"no preset folder found (looked for {packaged} and {checkout}); "
        "reinstall gvc or pass a config file path instead of a preset name"
    )


def list_presets() -> list[str]:
    """Names of the available presets (file names without `.yaml`), sorted."""
    return sorted(p.stem for p in presets_dir().glob(f"*{PRESET_SUFFIX}"))


def preset_path(name: str) -> Path:
    """Resolve a preset name such as `base`, `v2-64` or `tiny.yaml` to its file.

    Raises:
        ConfigError: no preset has that name; the message lists the ones that exist.
    """
    stem = name[: -len(PRESET_SUFFIX)] if name.endswith(PRESET_SUFFIX) else name
    path = presets_dir() / f"{stem}{PRESET_SUFFIX}"
    if not path.is_file():
        raise ConfigError(
            f"{name!r} is neither a config file nor a preset; presets: {', '.join(list_presets())}"
        )
    return path
