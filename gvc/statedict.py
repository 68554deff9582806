"""Strict state-dict comparison shared by every checkpoint loader (acoustic model, HuBERT, vocoder).

Loaders compare the keys and shapes a file holds with the ones the model expects before loading
anything, and turn the differences into one error line; this module states them the same way
everywhere: `2 missing: a, b; 1 unexpected: c; 1 shape mismatches: d (3, 4) vs model (3, 5)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_LISTED = 6


def listing(items: Sequence[str], limit: int = MAX_LISTED) -> str:
    """`a, b, c (+N more)`: the first `limit` items of a list for an error message."""
    head = ", ".join(items[:limit])
    more = len(items) - limit
    return head + (f" (+{more} more)" if more > 0 else "")


def layout_problems(expected: Mapping[str, Sequence[int]], found: Mapping[str, Any],
                    optional: Sequence[str] = ()) -> list[str]:
    """What keeps `found` from loading strictly into a model with the `expected` layout.

    Args:
        expected: parameter/buffer name -> shape the model needs.
        found: name -> tensor (anything with `.shape`) read from a file.
        optional: names the file may hold or not (checked by the caller, never "unexpected").

    Returns:
        Message parts, empty when every key is present, none is extra and every shape agrees.
    """
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected and k not in optional]
    mismatched = [f"{k} {tuple(found[k].shape)} vs model {tuple(shape)}"
                  for k, shape in expected.items()
                  if k in found and tuple(found[k].shape) != tuple(shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing: {listing(sorted(missing))}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected: {listing(sorted(unexpected))}")
    if mismatched:
        parts.append(f"{len(mismatched)} shape mismatches: {listing(sorted(mismatched))}")
    return parts
