"""Multi-process data parallelism: torchrun's environment, the process group,
DistributedDataParallel wrapping, and the collectives the engine needs.

Launch any training command with ``torchrun --nproc_per_node=N ...``: every
process reads RANK, WORLD_SIZE and LOCAL_RANK from the environment, joins the
group (NCCL on GPUs, gloo on CPUs), trains on its shard of every batch, and the
gradients are averaged, so N processes with ``--batch-size B`` train like one
with a batch of N*B.

DDP averages the gradients of losses computed from a wrapped module's forward,
during that backward. Parameters whose loss is computed outside any forward (a
learned codec's auxiliary quantile loss, ``OptimizerSpec(outside_forward=True)``)
get their gradients after DDP has finished, so the engine averages those itself
with ``all_reduce_grads``; their modules are wrapped with
``find_unused_parameters=True`` because the forward does not reach them.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "DistInfo",
    "init_distributed",
    "wrap_models",
    "all_reduce_grads",
    "sum_across_processes",
    "gather_objects",
    "barrier",
]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(device_type: str) -> DistInfo:
    """Join the torchrun job described by the environment (if any), or use the
    process group that is already initialised.

    A group this creates lives until the process exits: every later run in the
    process reuses it, because tearing a group down and creating another under
    the same torchrun store can race (a peer may read its neighbour's old,
    closed address).
    """
    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        return DistInfo(rank, dist.get_world_size(), _env_int("LOCAL_RANK", rank))
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo", rank=rank, world_size=world)
    atexit.register(_destroy_group)
    return DistInfo(rank, world, local_rank)


def _destroy_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _broadcast_tensors(tensors: Iterable[torch.Tensor]) -> None:
    for tensor in tensors:
        dist.broadcast(tensor.data, src=0)


def wrap_models(
    modules: dict[str, nn.Module],
    outside_forward: set[str],
    info: DistInfo,
    device: torch.device,
    find_unused_parameters: bool,
) -> dict[str, nn.Module]:
    """The modules to call for forward passes: DDP wrappers of the modules with
    trainable parameters when distributed, the modules themselves otherwise.

    ``outside_forward`` names the modules holding parameters that their forward
    does not reach (their gradients are the engine's to average). Modules left
    unwrapped are broadcast from rank 0 here, as DDP does for the others, so all
    processes start equal.
    """
    if not info.distributed:
        return dict(modules)
    wrapped = {}
    for name, module in modules.items():
        if not any(p.requires_grad for p in module.parameters()):
            _broadcast_tensors(list(module.parameters()) + list(module.buffers()))
            wrapped[name] = module
            continue
        wrapped[name] = DistributedDataParallel(
            module,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters or name in outside_forward,
        )
    return wrapped


def all_reduce_grads(params: Iterable[torch.Tensor], world_size: int) -> None:
    """Average the gradients of ``params`` over processes, in one flat message per dtype
    (parameters without a gradient are skipped: every process must skip the same ones)."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for p in params:
        if p.grad is not None:
            by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
    for grads in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def sum_across_processes(tensor: torch.Tensor, info: DistInfo, device: torch.device) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over processes (itself when alone), on the CPU."""
    if not info.distributed:
        return tensor
    comm = tensor.to(device) if dist.get_backend() == "nccl" else tensor.clone()
    dist.all_reduce(comm)
    return comm.cpu()


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """``obj`` from every process, in rank order."""
    if not info.distributed:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(info: DistInfo) -> None:
    """Wait for every process of the job (a no-op without torchrun)."""
    if info.distributed:
        dist.barrier()
