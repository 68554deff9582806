"""CREPE F0 through torchcrepe (its `full` and `tiny` weights ship inside the pip package)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pitch.base import SAMPLE_RATE, PitchExtractor, frame_times, resample_track


@dataclass(frozen=True)
class CrepeSettings:
    """torchcrepe options; defaults follow whisper-vits-svc's CREPE preprocessing."""

    model: str = "full"  # "full" or "tiny"
    fmin: float = 50.0
    fmax: float = 1000.0
    #: frames whose (median-smoothed) periodicity is below this are unvoiced
    periodicity_threshold: float = 0.5
    #: median filter width (frames) on periodicity; 0 disables
    periodicity_median: int = 7
    #: smoothing of the voiced F0: "mean", "median" or "none"
    smoothing: str = "mean"
    smoothing_width: int = 5
    batch_size: int = 512


class CrepePitch(PitchExtractor):
    """torchcrepe at hop 160 (10 ms) with periodicity-based voicing and optional smoothing.

    Runs on `device` ("cpu" or "cuda[:N]"); on CUDA `precision` may be bf16/fp16 for the network
    (the decoding of the pitch posterior stays in fp32).
    """

    def __init__(
        self,
        settings: CrepeSettings = CrepeSettings(),
        device: str = "cpu",
        precision: str = "fp32",
    ):
        if settings.model not in ("full", "tiny"):
            raise ValueError(f"unknown CREPE model {settings.model!r}; use full or tiny")
        if settings.smoothing not in ("mean", "median", "none"):
            raise ValueError(f"unknown smoothing {settings.smoothing!r}; use mean, median or none")
        self.cfg = settings
        self.device = device
        self.precision = precision
        self.name = "crepe" if settings.model == "full" else "crepe-tiny"

    def settings(self) -> dict[str, Any]:
        return asdict(self.cfg)

    def extract(self, wav_16k: np.ndarray) -> np.ndarray:
        import torch
        import torchcrepe

        x = np.asarray(wav_16k, dtype=np.float32)
        target = frame_times(len(x))
        if len(x) < 1024:
            return np.zeros(len(target))
        audio = torch.from_numpy(x)[None].to(self.device)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        autocast = (
            torch.autocast(device_type=audio.device.type, dtype=dtype)
            if dtype is not None and audio.device.type == "cuda"
            else torch.autocast(device_type="cpu", enabled=False)
        )
        with torch.inference_mode(), autocast:
            f0, period = torchcrepe.predict(
                audio,
                SAMPLE_RATE,
                hop_length=160,
                fmin=self.cfg.fmin,
                fmax=self.cfg.fmax,
                model=self.cfg.model,
                decoder=torchcrepe.decode.viterbi,
                return_periodicity=True,
                batch_size=self.cfg.batch_size,
                device=audio.device,
                pad=True,
            )
        f0, period = f0.float(), period.float()
        if self.cfg.periodicity_median > 1:
            period = torchcrepe.filter.median(period, self.cfg.periodicity_median)
        if self.cfg.smoothing == "mean":
            f0 = torchcrepe.filter.mean(f0, self.cfg.smoothing_width)
        elif self.cfg.smoothing == "median":
            f0 = torchcrepe.filter.median(f0, self.cfg.smoothing_width)
        f0[period < self.cfg.periodicity_threshold] = 0.0
        track = f0[0].cpu().numpy().astype(np.float64)
        track = np.nan_to_num(track, nan=0.0)
        times = np.arange(len(track)) * 0.01  # centred frames (pad=True): frame k at k * hop
        return resample_track(track, times, target)
