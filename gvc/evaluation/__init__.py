"""`gvc eval`: objective scores of copy-synthesis and conversions.

`pairs` matches reference and generated files, `metrics` holds the scores (pure functions),
`scoring` runs the project's extractors over each pair, `report` prints and writes the results.
"""

from __future__ import annotations

from gvc.evaluation.pairs import Pair, Pairing, pair_files
from gvc.evaluation.scoring import (
    CONVERSION_SCORES,
    RECONSTRUCTION_SCORES,
    EvalResult,
    score_conversion,
    score_reconstruction,
)

__all__ = [
    "CONVERSION_SCORES",
    "RECONSTRUCTION_SCORES",
    "EvalResult",
    "Pair",
    "Pairing",
    "pair_files",
    "score_conversion",
    "score_reconstruction",
]
