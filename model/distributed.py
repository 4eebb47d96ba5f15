"""DDP plumbing for training under torchrun: one process per device, gloo on CPU, nccl on CUDA.

Outside torchrun (no WORLD_SIZE > 1 in the environment) everything here is a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import overload

import torch
import torch.distributed as dist

from model.errors import ModelError


@dataclass
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


@overload
def device_name(name: str) -> str: ...


@overload
def device_name(name: None) -> None: ...


def device_name(name: str | None) -> str | None:
    """A device setting as a device name: 'auto' becomes 'cuda' when torch sees a GPU, else 'cpu';
    other names (and None) pass through."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The torch device of a device setting ('cpu', 'cuda', 'cuda:N' or 'auto'); bad names are a ModelError."""
    name = device_name(name) or name
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ModelError(f"device={name!r}: expected 'cpu' or 'cuda'")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelError(f"device={name!r}: CUDA is not available on this machine")
        if name == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(name)


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs natively here (a CUDA device with bf16, or a CPU oneDNN supports)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def setup(name: str) -> DistContext:
    """The process's place in a torchrun world (a no-op one outside torchrun) on device `name`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=resolve_device(name))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(name, local_rank)
    here = False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        here = True
    return DistContext(rank=rank, world=world, local_rank=local_rank, device=device, initialized_here=here)


def cleanup(ctx: DistContext) -> None:
    if ctx.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def _max_over_ranks(ctx: DistContext, value, dtype: torch.dtype):
    t = torch.tensor([value], dtype=dtype, device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def any_flag(ctx: DistContext, flag: int) -> int:
    """The maximum of ``flag`` over all ranks (so every rank stops at the same iteration)."""
    return int(_max_over_ranks(ctx, flag, torch.int64)) if ctx.enabled else flag


def agree_max(ctx: DistContext, value: float) -> float:
    """The maximum of ``value`` over all ranks (so a time-driven schedule is the same on every rank)."""
    return float(_max_over_ranks(ctx, value, torch.float64)) if ctx.enabled else value


def gather_objects(ctx: DistContext, obj) -> list:
    """Every rank's ``obj`` (a list indexed by rank); [obj] outside DDP."""
    if not ctx.enabled:
        return [obj]
    out = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out
