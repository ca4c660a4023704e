"""Process-group setup for ``torchrun`` and device selection; the only place that reads LOCAL_RANK."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(use_cuda: bool) -> DistInfo:
    """Join the process group when launched by torchrun (NCCL on GPUs, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info


def select_device(gpu_ids: list[int], info: DistInfo) -> torch.device:
    """``--gpu_ids -1`` (or no CUDA) means CPU; under torchrun each process takes GPU ``LOCAL_RANK``."""
    if not gpu_ids:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        print(
            f"warning: --gpu_ids {','.join(map(str, gpu_ids))} asked for CUDA, which is not available; using the CPU"
        )
        return torch.device("cpu")
    index = gpu_ids[info.local_rank % len(gpu_ids)] if info.enabled else gpu_ids[0]
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def broadcast_module(module: torch.nn.Module) -> None:
    """Give every process rank 0's parameters and buffers, so all replicas start identical."""
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)



def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
