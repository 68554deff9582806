"""What a run reports: TensorBoard scalars, mel images and audio, console progress, `metrics.jsonl`.

Only rank 0 reports. TensorBoard tags keep Grad-SVC's names (`training/mel_loss` is the SSIM loss,
`training/prior_loss`, `training/diffusion_loss`, `training/{encoder,decoder}_grad_norm`) and add
`training/spk_loss`, `training/total_loss`, `training/lr` and `validation/*`. On a terminal the
console shows a Rich progress bar with steps/s and losses; otherwise (cron, CI, a pipe) a plain
log line every `log_every` steps.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SCALAR_TAGS = {
    "prior": "prior_loss",
    "ssim": "mel_loss",
    "spk": "spk_loss",
    "diff": "diffusion_loss",
    "total": "total_loss",
    "enc_grad_norm": "encoder_grad_norm",
    "dec_grad_norm": "decoder_grad_norm",
    "lr": "lr",
    "net_grad_norm": "grad_norm",
    "mel_l1": "copy_synthesis_mel_l1",
}


def mel_image(mel: np.ndarray, title: str) -> np.ndarray:
    """Render a log-mel [n_mels, T] as an RGB image [H, W, 3] uint8 (matplotlib, Agg, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3), dpi=80)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(mel, aspect="auto", origin="lower", interpolation="none")
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    ax.set_xlabel("frames (10 ms)")
    ax.set_ylabel("mel band")
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _fmt(metrics: dict[str, float],
         keys: tuple[str, ...] = ("total", "prior", "ssim", "spk", "diff", "mel_l1")) -> str:
    return " ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)


class TrainLogger:
    """Rank-0 reporting; every method is a no-op on other ranks.

    Args:
        run_dir: the run folder (TensorBoard events and `metrics.jsonl` go here).
        enabled: True on rank 0.
        console: Rich console for the progress bar (None: plain log lines only).
        total_steps: the step count the bar runs to.
        log_every: scalar / log-line interval in steps.
    """

    def __init__(self, run_dir: Path, *, enabled: bool, console: Any = None, total_steps: int,
                 log_every: int = 10) -> None:
        self.enabled, self.run_dir, self.log_every = enabled, Path(run_dir), max(1, log_every)
        self.writer = None
        self.progress = self.task = None
        self.shown_truth: set[str] = set()
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run_dir))
        if console is not None and console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]train[/bold] ep {task.fields[epoch]}"), BarColumn(),
                MofNCompleteColumn(), TextColumn("{task.fields[speed]:.2f} step/s"),
                TextColumn("{task.fields[losses]}"), TimeElapsedColumn(),
                console=console, transient=False)
            self.progress.start()
            self.task = self.progress.add_task("train", total=total_steps, epoch=0, speed=0.0,
                                               losses="")

    def start(self, step: int) -> None:
        """Position the bar at `step` (after a resume)."""
        if self.progress is not None:
            self.progress.update(self.task, completed=step)

    def step(self, step: int, epoch: int, metrics: dict[str, float], speed: float) -> None:
        """Report one optimizer step (`metrics`: losses, grad norms, lr)."""
        if not self.enabled:
            return
        if self.progress is not None:
            self.progress.update(self.task, completed=step, epoch=epoch + 1, speed=speed,
                                 losses=_fmt(metrics, ("total", "diff")))
        if step % self.log_every:
            return
        for key, value in metrics.items():
            if key in SCALAR_TAGS:
                self.writer.add_scalar(f"training/{SCALAR_TAGS[key]}", value, step)
        self._append({"step": step, "epoch": epoch + 1, **metrics})
        if self.progress is None:
            log.info("step %d epoch %d %s lr %.3g %.2f step/s", step, epoch + 1, _fmt(metrics),
                     metrics.get("lr", 0.0), speed)

    def validation(self, step: int, metrics: dict[str, float]) -> None:
        """Report validation losses."""
        if not self.enabled:
            return
        for key, value in metrics.items():
            if key in SCALAR_TAGS:
                self.writer.add_scalar(f"validation/{SCALAR_TAGS[key]}", value, step)
        self._append({"step": step, "validation": metrics})
        self.message(f"validation at step {step}: {_fmt(metrics)}")

    def images(self, step: int, images: list[dict[str, Any]]) -> None:
        """Log mel images: each dict has `name`, `truth`, `mu` and optionally `decoder` [F, T]."""
        if not self.enabled:
            return
        for i, item in enumerate(images):
            if item["name"] not in self.shown_truth:
                self.writer.add_image(f"image_{i}/ground_truth",
                                      mel_image(item["truth"], f"{item['name']} ground truth"),
                                      step, dataformats="HWC")
                self.shown_truth.add(item["name"])
            self.writer.add_image(f"image_{i}/generated_enc",
                                  mel_image(item["mu"], f"{item['name']} encoder mu, step {step}"),
                                  step, dataformats="HWC")
            if item.get("decoder") is not None:
                self.writer.add_image(
                    f"image_{i}/generated_dec",
                    mel_image(item["decoder"], f"{item['name']} decoder, step {step}"),
                    step, dataformats="HWC")
        self.writer.flush()

    def audio(self, step: int, clips: list[dict[str, Any]], sample_rate: int) -> None:
        """Log audio: each dict has `name`, `audio` (generated [L] float in [-1, 1]) and
        `truth` (the recording, logged once per name)."""
        if not self.enabled:
            return
        for i, clip in enumerate(clips):
            if clip["name"] not in self.shown_truth:
                self.writer.add_audio(f"audio_{i}/ground_truth", clip["truth"], step,
                                      sample_rate=sample_rate)
                self.shown_truth.add(clip["name"])
            self.writer.add_audio(f"audio_{i}/generated", clip["audio"], step,
                                  sample_rate=sample_rate)
        self.writer.flush()

    def message(self, text: str) -> None:
        """A line above the progress bar (or a log line)."""
        if not self.enabled:
            return
        if self.progress is not None:
            self.progress.console.print(text, highlight=False)
        else:
            log.info("%s", text)

    def _append(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def close(self) -> None:
        """Stop the bar and flush TensorBoard."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
