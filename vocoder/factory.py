"""`load_vocoder`: build a vocoder by name (kept for its import path; see `vocoder.registry`)."""

from __future__ import annotations

from vocoder.registry import load_vocoder, names

VOCODERS = names()

__all__ = ["VOCODERS", "load_vocoder"]
