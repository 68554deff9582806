"""Multi-process training under `torchrun` (PyTorch DDP); a no-op for a single process.

`torchrun --nproc_per_node N -m gvc train ...` sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT; `init_distributed` reads them, joins the process group (NCCL on CUDA, gloo on CPU)
and gives each process its device (`cuda:LOCAL_RANK`). Rank 0 alone logs and writes checkpoints.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from gvc.device import resolve_device
from gvc.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # True when `init_distributed` created the process group

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def init_distributed(device: str = "auto") -> tuple[DistContext, torch.device]:
    """Join the torchrun job described by the environment, if any, and pick this rank's device.

    Args:
        device: the `--device` flag (`auto`, `cpu`, `cuda`, `cuda:N`); under torchrun a CUDA
            choice becomes `cuda:LOCAL_RANK`.

    Returns:
        (context, device).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), resolve_device(device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA "
                              "device(s); start at most that many processes per node")
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo",
                                init_method="env://", rank=rank, world_size=world,
                                device_id=dev if dev.type == "cuda" else None)
    return DistContext(rank, world, local, owns), dev


def shutdown(ctx: DistContext) -> None:
    """Leave the process group if `init_distributed` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum a small tensor over all processes (identity for one process)."""
    if ctx.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op for one process)."""
    if ctx.distributed:
        dist.barrier()


def wrap(loss_module: nn.Module, ctx: DistContext, device: torch.device,
         joint: bool) -> nn.Module:
    """The module that computes the losses, inside DDP when several processes run.

    In a warm-up phase (`joint` False) part of the model gets no gradient, so DDP must look
    for unused parameters; in the joint phase every trainable parameter is used.
    """
    if not ctx.distributed:
        return loss_module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(loss_module, device_ids=ids, find_unused_parameters=not joint)
