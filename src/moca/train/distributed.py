"""Process-group setup for data-parallel training, from torchrun's or the Kubeflow training operator's env.

Both launchers describe the job through the same variables: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and (torchrun
only) LOCAL_RANK. A PyTorchJob that starts one process per pod sets no LOCAL_RANK, so it defaults to 0.

Why not `DistributedDataParallel`: one optimiser step runs the model several times (anchor, positive, negative)
before one backward, which DDP's reducer only supports with `static_graph` tricks, and the trainable set is a few
adapter tensors. So gradients of the trainable parameters are averaged with one flattened all-reduce per optimiser
step, which is what DDP computes, and the frozen backbone is simply replicated (every rank loads the same weights).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from moca.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from exc


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group described by the environment (a no-op context for a single process)."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world_size:
        raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={world_size}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    torch_device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(torch_device)
    if world_size > 1 and not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(name):
                raise ConfigError(f"WORLD_SIZE={world_size} but {name} is not set (launch with torchrun or a "
                                  "PyTorchJob)")
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
    return DistContext(rank, world_size, local_rank, torch_device)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat_(flat: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def average_gradients_(ctx: DistContext, params: Iterable[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over ranks (one all-reduce for all of them)."""
    if not ctx.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = _flat(grads)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= ctx.world_size
    _unflat_(flat, grads)


def broadcast_parameters_(ctx: DistContext, params: Iterable[torch.nn.Parameter]) -> None:
    """Start every rank from rank 0's trainable weights (guards against any rank-dependent initialisation)."""
    if not ctx.enabled:
        return
    tensors = [p.data for p in params]
    flat = _flat(tensors)
    dist.broadcast(flat, src=0)
    _unflat_(flat, tensors)


def mean_over_ranks(ctx: DistContext, value: float) -> float:
    if not ctx.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / ctx.world_size


def gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (used to store per-rank RNG states in rank 0's checkpoint)."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()
