"""The one device and precision policy, resolved at run time.

`--device auto|cpu|cuda[:N]` and `--precision fp32|bf16|fp16` become a `Runtime`; model code
never picks a GPU by itself and takes its device from its inputs. Schedules, STFTs and F0 maths stay
in fp32 regardless of the autocast precision.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from gvc.errors import ConfigError

if TYPE_CHECKING:
    import torch


class Precision(str, Enum):
    """Autocast precision for neural inference and training."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


@dataclass(frozen=True)
class Runtime:
    """A resolved device plus precision; `autocast()` is the only mixed-precision switch."""

    device: torch.device
    precision: Precision = Precision.FP32

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype under autocast (fp32 when autocast is off)."""
        import torch

        return {
            Precision.FP32: torch.float32,
            Precision.BF16: torch.bfloat16,
            Precision.FP16: torch.float16,
        }[self.precision]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for the chosen precision; a no-op for fp32."""
        import torch

        if self.precision is Precision.FP32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn `auto|cpu|cuda|cuda:N` into a device; `auto` picks CUDA when present."""
    import torch

    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {spec}: CUDA is not available on this machine; use --device cpu or auto"
            )
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
        return dev
    raise ConfigError(f"--device {spec!r} is not one of auto, cpu, cuda, cuda:N")


def resolve_runtime(device: str = "auto", precision: str = "fp32") -> Runtime:
    """Resolve both flags; half precision on CPU falls back to nothing silently: it is an error."""
    dev = resolve_device(device)
    try:
        prec = Precision(precision)
    except ValueError as exc:
        raise ConfigError(f"--precision {precision!r} is not one of fp32, bf16, fp16") from exc
    if dev.type == "cpu" and prec is Precision.FP16:
        raise ConfigError("--precision fp16 needs a CUDA device; use fp32 or bf16 on CPU")
    return Runtime(dev, prec)
