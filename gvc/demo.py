"""The quickstart demo: a generated multi-singer corpus run through the pipeline.

Everything happens under one output folder; nothing is downloaded. The steps that need
real weights are reported as such.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console

from gvc.synth import write_corpus
from gvc.layout import DataTree, Feature
from prepare import steps

log = logging.getLogger(__name__)


def run_demo(out: Path, *, singers: int = 3, utterances: int = 6, seconds: float = 4.0, jobs: int = 2, console: Console | None = None) -> bool:
    """Generate a corpus in `out/data_raw` and prepare it into `out/data_gvc`; True when all ok."""
    console = console or Console()
    out = Path(out)
    raw = out / "data_raw"
    if not raw.is_dir():
        log.info("writing a synthetic corpus: %d singers x %d clips x %.0f s -> %s", singers, utterances, seconds, raw)
        write_corpus(raw, singers=singers, utterances=utterances, seconds=seconds)
    tree = DataTree(out / "data_gvc")
    reports = [
        steps.resample(raw, {16000: tree.folder(Feature.WAVES_16K), 32000: tree.folder(Feature.WAVES_32K)}, jobs=jobs, console=console),
        steps.extract_mel(tree.folder(Feature.WAVES_32K), tree.folder(Feature.MEL), jobs=jobs, console=console),
        steps.extract_f0(tree.folder(Feature.WAVES_16K), tree.folder(Feature.PITCH), jobs=jobs, console=console),
    ]
    for r in reports:
        r.render(console)
    return all(r.ok for r in reports)
