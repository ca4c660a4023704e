"""Process-group setup for ``torchrun``, device selection and the control collectives every rank agrees on.

This is the only place that reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK). Besides the
backend that averages gradients (NCCL on GPUs, gloo on CPU), every multi-process run gets a small gloo
"control" group on the host: the stop flag, barriers after checkpoint writes and the wait for rank 0's
evaluation go through it, so they never synchronise the GPU and they all honour ``--dist_timeout``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

_CONTROL: dict[str, object] = {"group": None, "timeout": 600.0, "vote": None}


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


class PeerLostError(RuntimeError):
    """Another process of the run died or stopped answering; this one stops instead of waiting forever."""


def add_distributed_options(parser: argparse.ArgumentParser) -> None:
    """Training options of multi-process runs and of the optimiser step (documented in docs/distributed.md)."""
    g = parser.add_argument_group("multi-process training (torchrun)")
    g.add_argument(
        "--dist_timeout",
        type=float,
        default=600.0,
        help="seconds a process waits for the others in a collective (gradients, barriers, rank 0's "
        "evaluation) before it stops with a message",
    )
    g.add_argument(
        "--sync_bn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="SyncBatchNorm in networks with BatchNorm: statistics over all processes' batches "
        "(default: on when several processes train)",
    )
    g.add_argument(
        "--grad_comm",
        default="fp32",
        choices=["fp32", "bf16"],
        help="precision of the gradient all-reduce (bf16 halves the traffic, at bf16 rounding of the sum)",
    )
    g.add_argument(
        "--bucket_mb", type=float, default=25.0, help="size of a gradient all-reduce bucket in MB"
    )
    g.add_argument(
        "--dist_debug",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="check at every optimiser step that all processes have gradients for the same parameters "
        "(default: at each optimiser's first step only)",
    )
    g.add_argument(
        "--grad_accum",
        type=int,
        default=1,
        help="split each batch of batch_size x grad_accum images into grad_accum micro-batches of "
        "batch_size and step once: the gradient of the whole batch with the memory of a micro-batch",
    )


def validate_training_options(opt, parser: argparse.ArgumentParser, model_class) -> None:
    """Parse-time checks of the options above (one line naming the option, via ``parser.error``)."""
    if not hasattr(opt, "grad_accum"):
        return
    message = several_gpus_error(opt.gpu_ids, launch_info())
    if message:
        parser.error(message)
    if opt.dist_timeout <= 0:
        parser.error(f"--dist_timeout: expected a positive number of seconds, got {opt.dist_timeout:g}")
    if opt.bucket_mb <= 0:
        parser.error(f"--bucket_mb: expected a positive size, got {opt.bucket_mb:g}")
    if opt.grad_accum < 1:
        parser.error(f"--grad_accum: expected an integer >= 1, got {opt.grad_accum}")
    blocker = model_class.grad_accum_blocker(opt) if opt.grad_accum > 1 else ""
    if blocker:
        parser.error(f"--grad_accum {opt.grad_accum} is not exact for --model {opt.model}: {blocker}")


def launch_info() -> DistInfo:
    """Rank, world size and local rank that torchrun put in the environment (one process without it)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))


def several_gpus_error(gpu_ids: list[int], info: DistInfo) -> str:
    """The message for ``--gpu_ids 0,1`` in a single process (each GPU needs a process of its own)."""
    if len(gpu_ids) <= 1 or info.enabled:
        return ""
    ids = ",".join(map(str, gpu_ids))
    return (
        f"--gpu_ids {ids}: one process trains on one GPU; for {len(gpu_ids)} GPUs launch "
        f"torchrun --nproc_per_node {len(gpu_ids)} train.py ... (with CUDA_VISIBLE_DEVICES={ids})"
    )


def select_device(gpu_ids: list[int], info: DistInfo, *, explicit: bool = True) -> torch.device:
    """``--gpu_ids -1`` (or no CUDA) means CPU; under torchrun process LOCAL_RANK takes ``cuda:LOCAL_RANK``.

    Under torchrun ``--gpu_ids`` only chooses GPU or CPU: which GPUs a node uses is CUDA_VISIBLE_DEVICES'
    job, and local ranks 0..N-1 take the visible devices 0..N-1 (taking ``gpu_ids[0]`` put every rank on
    cuda:0). In one process the first id is used. The CPU fallback is announced only for ids the user asked
    for (``explicit``): the default ``--gpu_ids 0`` means "a GPU if there is one", and a warning on every
    run of a CPU machine would teach people to ignore warnings.
    """
    if not gpu_ids:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if explicit and info.is_main:  # once per run, not once per process
            ids = ",".join(map(str, gpu_ids))
            print(f"warning: --gpu_ids {ids} asked for CUDA, which is not available; using the CPU")
        return torch.device("cpu")
    index = info.local_rank if info.enabled else gpu_ids[0]
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"process with local rank {info.local_rank} needs cuda:{index}, but only "
            f"{torch.cuda.device_count()} GPUs are visible: use --nproc_per_node <= the number of GPUs"
        )
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


#: what a rank waits for in :func:`init_distributed`
JOINING = "joining the other processes (a process that stopped before joining says why in its own output)"


def init_distributed(info: DistInfo, device: torch.device, timeout_s: float = 600.0) -> None:
    """Join the process group (NCCL bound to this rank's GPU, gloo on CPU) and make the gloo control group."""
    if not info.enabled:
        return
    timeout = timedelta(seconds=timeout_s)
    _CONTROL.update(timeout=float(timeout_s))  # named by the message of a failed join
    if not dist.is_initialized():  # a peer that stopped before joining (it refused the start): one line here
        if device.type == "cuda":
            guarded(
                lambda: dist.init_process_group(backend="nccl", timeout=timeout, device_id=device), JOINING
            )
        else:
            guarded(lambda: dist.init_process_group(backend="gloo", timeout=timeout), JOINING)
    group = dist.new_group(backend="gloo", timeout=timeout) if dist.get_backend() != "gloo" else None
    _CONTROL.update(group=group)


def agree_any(flag: bool, info: DistInfo) -> bool:
    """Whether any rank voted True one call ago; the same answer on every rank, at the same call.

    Called once per iteration with this rank's stop flag (a signal arrived). The 4-byte all-reduce runs on
    the host, in the background while the next iteration computes, and is waited for at the next call
    (measured with 2 gloo processes on a busy 2-core machine: 0.7-1.1 ms per blocking call in a tight loop;
    behind a 30-50 ms iteration the overlapped call made no difference above the timing noise). A stop thus
    takes effect one iteration after the signal, on every rank together.
    """
    if not info.enabled:
        return flag
    agreed = _finish_vote()
    vote = torch.tensor([int(flag)], dtype=torch.int32)
    work = guarded(
        lambda: dist.all_reduce(vote, op=dist.ReduceOp.MAX, group=_CONTROL["group"], async_op=True),
        "agreeing to stop",
    )
    _CONTROL["vote"] = (work, vote)
    return agreed


def _finish_vote() -> bool:
    pending = _CONTROL.get("vote")
    _CONTROL["vote"] = None
    if pending is None:
        return False
    work, vote = pending
    guarded(work.wait, "agreeing to stop")
    return bool(vote.item())


def main_process_prints(info: DistInfo) -> contextlib.AbstractContextManager:
    """Inside it, what only repeats rank 0's lines (the network summary of ``setup``) is not printed by the
    other ranks: N processes would print it N times."""
    return contextlib.nullcontext() if info.is_main else contextlib.redirect_stdout(io.StringIO())


def barrier(info: DistInfo, why: str) -> None:
    """Wait for every rank, at most ``--dist_timeout`` seconds; a missing rank stops this one with a message."""
    if not info.enabled:
        return
    timeout = timedelta(seconds=float(_CONTROL["timeout"]))
    guarded(lambda: dist.monitored_barrier(group=_CONTROL["group"], timeout=timeout), why)


def share_from_main(flag: bool, info: DistInfo, why: str) -> bool:
    """Rank 0's ``flag`` on every rank (e.g. "the evaluation improved": all ranks then save ``best`` together)."""
    if not info.enabled:
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int32)
    guarded(lambda: dist.broadcast(value, src=0, group=_CONTROL["group"]), why)
    return bool(value.item())


def guarded(collective, why: str):
    """Run ``collective()``; a peer that died, hung past ``--dist_timeout`` or left becomes one
    :class:`PeerLostError` line instead of a backend traceback. Every collective of a training run goes
    through here: whichever one a rank is waiting in when its peer is lost, the run stops the same way."""
    try:
        return collective()
    except (RuntimeError, dist.DistError) as exc:
        raise PeerLostError(peer_lost_message(why, exc)) from exc


def peer_lost_message(why: str, exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    rank = dist.get_rank() if dist.is_initialized() else launch_info().rank  # a failed join: not initialised
    return (
        f"rank {rank}: another process did not answer while "
        f"{why} (--dist_timeout {float(_CONTROL.get('timeout', 600)):g} s); stopping. Cause: {first}"
    )


def prepare_replicas(model: torch.nn.Module, opt, info: DistInfo) -> None:
    """SyncBatchNorm where ``--sync_bn`` (default: several processes) asks for it, then rank 0's weights."""
    if not info.enabled:
        return
    if opt.sync_bn is not False:
        from util.sync_batchnorm import convert_sync_batchnorm

        converted = convert_sync_batchnorm(model)
        if converted and info.is_main:
            print(f"--sync_bn: {converted} BatchNorm layers use the statistics of all {info.world_size} processes")
    broadcast_module(model)


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` of every rank, concatenated along dim 0 in rank order (itself with one process).

    Every rank must contribute the same shape (MoCo keys: each rank's batch has the same size).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    guarded(lambda: dist.all_gather(parts, tensor.contiguous()), "gathering MoCo keys")
    return torch.cat(parts, dim=0)


def broadcast_module(module: torch.nn.Module) -> None:
    """Give every process rank 0's parameters and buffers, so all replicas start identical."""
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        try:
            _finish_vote()  # every rank launched the same last vote; wait for it before leaving
        except PeerLostError:
            pass
        _CONTROL.update(group=None)
        dist.destroy_process_group()
