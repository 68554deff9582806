"""`--init-from`: start training from published or exported weights, strictly.

Grad-SVC loaded `train.pretrain` silently whenever the file existed, forced lr 2e-5 and froze
modules. Here the file, the learning rate (`--lr`) and the frozen modules (`--freeze`) are explicit
options; loading fails on any missing, unexpected or mis-shaped key, and on a gvc file made for
another architecture (V2 and V3 have identical shapes, so only the metadata can tell).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gvc.errors import CheckpointError

if TYPE_CHECKING:
    from rich.table import Table

    from gvc.config import Config
    from gvc.models import GradSVC

log = logging.getLogger(__name__)

GROUPS = ("pit_emb", "spk_emb", "encoder.prenet", "encoder.speaker", "encoder.encoder",
          "encoder.proj_m", "decoder")
_NOT_SHAPE = ("prenet_stats",)  # grad keys that do not change shapes or the trained function


@dataclass
class InitReport:
    """What `init_from` loaded."""

    path: Path
    rows: list[tuple[str, int, int]] = field(default_factory=list)  # (module, tensors, params)
    meta: dict[str, Any] | None = None  # the file's gvc metadata (None: an original Grad-SVC file)

    @property
    def features(self) -> dict[str, Any] | None:
        """The `features` record the weights were trained on, if the file says."""
        return (self.meta or {}).get("features") or None


def _group(key: str) -> str:
    return next((g for g in GROUPS if key == g or key.startswith(g + ".")), key.split(".")[0])


def init_from(model: GradSVC, path: Path | str, cfg: Config) -> InitReport:
    """Load weights from `path` into `model` (built from `cfg`) strictly.

    Raises:
        CheckpointError: unreadable file; gvc metadata naming another architecture, decoder or
            size than `cfg`; any key or shape mismatch.
    """
    from gvc.config import config_from_dict
    from gvc.errors import ConfigError
    from gvc.models import load_acoustic_state, read_checkpoint

    ckpt = read_checkpoint(path)
    meta = ckpt.get("gvc") if isinstance(ckpt.get("gvc"), dict) else None
    if meta is not None and isinstance(meta.get("config"), dict):
        try:
            theirs = config_from_dict(meta["config"], f"{path} (embedded config)").grad
        except ConfigError as exc:
            raise CheckpointError(str(exc)) from exc
        diff = [f"grad.{k}: file {getattr(theirs, k)!r} vs config {getattr(cfg.grad, k)!r}"
                for k in vars(cfg.grad) if k not in _NOT_SHAPE
                and getattr(theirs, k) != getattr(cfg.grad, k)]
        if diff:
            raise CheckpointError(
                f"{path} was trained with another model than this config describes "
                f"({'; '.join(diff[:4])}); fine-tune with the config it was trained with")
        if theirs.prenet_stats != cfg.grad.prenet_stats:
            log.warning("%s was trained with grad.prenet_stats=%s; continuing with %s", path,
                        theirs.prenet_stats, cfg.grad.prenet_stats)
    elif meta is None:
        log.warning("%s has no gvc metadata (an original Grad-SVC file): its architecture is "
                    "taken from the config (grad.version=%s); V2 and V3 files look alike",
                    path, cfg.grad.version)
    load_acoustic_state(model, ckpt["model"], path)
    counts: dict[str, list[int]] = {}
    for key, value in ckpt["model"].items():
        c = counts.setdefault(_group(key), [0, 0])
        c[0] += 1
        c[1] += value.numel()
    rows = [(g, *counts[g]) for g in GROUPS if g in counts]
    rows += [(g, *c) for g, c in counts.items() if g not in GROUPS]
    return InitReport(Path(path), rows, meta)


def init_table(report: InitReport, frozen: list[str], lr: float) -> Table:
    """A Rich table of what was loaded and what will train."""
    from rich.markup import escape
    from rich.table import Table

    arch = (report.meta or {}).get("architecture", "Grad-SVC file, no gvc metadata")
    table = Table(title=escape(f"initialised from {report.path} ({arch}), lr {lr:g}"),
                  header_style="bold")
    for col, justify in (("module", "left"), ("tensors", "right"), ("parameters", "right"),
                         ("training", "left")):
        table.add_column(col, justify=justify)
    for name, tensors, params in report.rows:
        is_frozen = any(name == f or name.startswith(f + ".") for f in frozen)
        table.add_row(name, str(tensors), f"{params:,}", "frozen" if is_frozen else "yes")
    total_t = sum(r[1] for r in report.rows)
    total_p = sum(r[2] for r in report.rows)
    table.add_row("[bold]all[/bold]", str(total_t), f"{total_p:,}", "")
    return table
