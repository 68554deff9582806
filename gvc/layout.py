"""The `data_gvc/` tree: the one place that maps an utterance to its feature files.

The layout is Grad-SVC's, so a tree made by either program is usable by the other::

    data_gvc/waves-16k/<singer>/<utt>.wav     16 kHz int16 (pitch, content units, speaker)
    data_gvc/waves-32k/<singer>/<utt>.wav     32 kHz int16 (mel, vocoder domain)
    data_gvc/pitch/<singer>/<utt>.pit.npy     F0, Hz, 100 fps, float64
    data_gvc/mel/<singer>/<utt>.mel.pt        log-mel [100, T] float32
    data_gvc/hubert/<singer>/<utt>.vec.npy    HuBERT-Soft units [T, 256] float32, 50 fps
    data_gvc/speaker/<singer>/<utt>.spk.npy   d-vector [256] float32
    data_gvc/singer/<singer>.spk.npy          per-singer mean d-vector [256] float32
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

DEFAULT_RAW = Path("data_raw")
DEFAULT_DATA = Path("data_gvc")


class Feature(str, Enum):
    """A per-utterance feature kind; the value is its folder name under the data root."""

    WAVES_16K = "waves-16k"
    WAVES_32K = "waves-32k"
    PITCH = "pitch"
    MEL = "mel"
    HUBERT = "hubert"
    SPEAKER = "speaker"

    @property
    def suffix(self) -> str:
        """File-name suffix that follows the utterance name."""
        return _SUFFIX[self]


_SUFFIX = {
    Feature.WAVES_16K: ".wav",
    Feature.WAVES_32K: ".wav",
    Feature.PITCH: ".pit.npy",
    Feature.MEL: ".mel.pt",
    Feature.HUBERT: ".vec.npy",
    Feature.SPEAKER: ".spk.npy",
}

SINGER_FOLDER = "singer"
SINGER_SUFFIX = ".spk.npy"


@dataclass(frozen=True, order=True)
class Utterance:
    """One recording of one singer, identified by its singer folder and its stem."""

    singer: str
    name: str

    @property
    def key(self) -> str:
        """`<singer>/<name>`: stable across machines, used for sharding and messages."""
        return f"{self.singer}/{self.name}"


def feature_path(root: Path, feature: Feature, utt: Utterance) -> Path:
    """Path of one utterance's feature file inside a feature folder `root`.

    `root` is the feature folder itself (e.g. `data_gvc/pitch`), so that Grad-SVC's
    `-p some/other/folder` style flags work unchanged.
    """
    return Path(root) / utt.singer / f"{utt.name}{feature.suffix}"


def strip_suffix(path: Path, feature: Feature) -> str:
    """The utterance name of a feature file (`a.pit.npy` -> `a`)."""
    name = path.name
    if not name.endswith(feature.suffix):
        raise ValueError(f"{path} does not end with {feature.suffix}")
    return name[: -len(feature.suffix)]


@dataclass(frozen=True)
class DataTree:
    """A `data_gvc/` root with the standard feature folders below it."""

    root: Path = DEFAULT_DATA

    def folder(self, feature: Feature) -> Path:
        """The folder holding every utterance's file of one feature."""
        return Path(self.root) / feature.value

    def path(self, feature: Feature, utt: Utterance) -> Path:
        """The file of one feature of one utterance."""
        return feature_path(self.folder(feature), feature, utt)

    @property
    def singer_folder(self) -> Path:
        """Folder of the per-singer mean embeddings."""
        return Path(self.root) / SINGER_FOLDER

    def singer_path(self, singer: str) -> Path:
        """Per-singer mean d-vector file."""
        return self.singer_folder / f"{singer}{SINGER_SUFFIX}"

    def utterances(self, feature: Feature = Feature.WAVES_32K) -> list[Utterance]:
        """Every utterance that has a file of `feature`, sorted by singer then name."""
        folder = self.folder(feature)
        if not folder.is_dir():
            return []
        found = []
        for singer_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            if singer_dir.name.startswith("."):
                continue
            for f in sorted(singer_dir.iterdir()):
                if f.name.startswith(".") or not f.name.endswith(feature.suffix):
                    continue
                found.append(Utterance(singer_dir.name, strip_suffix(f, feature)))
        return found
