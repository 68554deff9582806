"""F0 extractors (Hz at 100 fps, 0 = unvoiced) and the pitch CSV format."""

from __future__ import annotations

from enum import Enum

from pitch.base import PitchExtractor, frame_count, frame_times
from pitch.csv import format_csv, read_csv, write_csv


class F0Method(str, Enum):
    """Every pitch method; the value is the CLI name."""

    PRAAT = "praat"
    CREPE = "crepe"
    CREPE_TINY = "crepe-tiny"
    HARVEST = "harvest"
    DIO = "dio"


def make_extractor(
    method: F0Method | str,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    decimals: int | None = 1,
) -> PitchExtractor:
    """Build the extractor for `method` with its default settings.

    `decimals` applies to Praat only: 1 (0.1 Hz) for training features, None for inference.
    """
    method = F0Method(method)
    if method is F0Method.PRAAT:
        from pitch.praat import PraatPitch, PraatSettings

        return PraatPitch(PraatSettings(decimals=decimals))
    if method in (F0Method.CREPE, F0Method.CREPE_TINY):
        from pitch.crepe import CrepePitch, CrepeSettings

        model = "full" if method is F0Method.CREPE else "tiny"
        return CrepePitch(CrepeSettings(model=model), device=device, precision=precision)
    from pitch.world import DioPitch, HarvestPitch

    return HarvestPitch() if method is F0Method.HARVEST else DioPitch()


__all__ = [
    "F0Method",
    "PitchExtractor",
    "format_csv",
    "frame_count",
    "frame_times",
    "make_extractor",
    "read_csv",
    "write_csv",
]
