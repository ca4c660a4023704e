"""What a model needs from the trainer to take an optimiser step: autocast, loss scaling and gradient averaging.

Models call ``self.backward(loss)`` / ``self.step("G")`` (see ``BaseModel``); those calls land here. Keeping
mixed precision and multi-process gradient averaging in this one object means model files never mention
GradScaler, devices or process groups, and a new model gets AMP and torchrun for free.

Gradients are averaged across processes at ``step`` time (one flattened all-reduce per optimiser step)
instead of by wrapping networks in ``DistributedDataParallel``. GAN models toggle ``requires_grad`` of their
discriminators inside an iteration and run networks several times per step; DDP's hooks assume neither,
which is why the official codebases hang under torchrun. Averaging at the step is correct for any such
pattern; it gives up DDP's overlap of communication with the backward pass.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Runtime:
    """Autocast, GradScaler and distributed gradient averaging for one process."""

    def __init__(self, device: torch.device | str = "cpu", amp: str = "none", distributed: bool = False):
        self.device = torch.device(device)
        if amp not in ("none", *AMP_DTYPES):
            raise ValueError(f"--amp: expected one of none, bf16, fp16; got {amp!r}")
        self.amp = amp
        self.distributed = distributed and dist.is_available() and dist.is_initialized()
        # Loss scaling is only needed for fp16: bf16 has fp32's exponent range.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=(amp == "fp16"))

    def autocast(self):
        if self.amp == "none":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=AMP_DTYPES[self.amp])

    def backward(self, loss: torch.Tensor, retain_graph: bool = False) -> None:
        # Backward runs outside autocast, as the AMP recipe asks, even when called inside a model's step.
        with torch.autocast(device_type=self.device.type, enabled=False):
            self.scaler.scale(loss).backward(retain_graph=retain_graph)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.distributed:
            average_gradients(optimizer)
        self.scaler.step(optimizer)

    def end_iteration(self) -> None:
        """Called once per iteration, after all of a model's steps (one scale update for all optimisers)."""
        if self.scaler.is_enabled():
            self.scaler.update()

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler.is_enabled() else {}

    def load_state_dict(self, state: dict) -> None:
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)


def average_gradients(optimizer: torch.optim.Optimizer) -> None:
    """All-reduce (mean) every gradient an optimiser is about to use, as one flat buffer."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n
