"""What a model needs from the trainer to take an optimiser step: autocast, loss scaling, gradient
accumulation and gradient averaging.

Models call ``self.backward(loss)`` / ``self.step("G")`` (see ``BaseModel``); those calls land here. Keeping
mixed precision, micro-batches and multi-process averaging in this one object means model files never
mention GradScaler, devices or process groups, and a new model gets AMP, ``--grad_accum`` and torchrun for
free. Gradients are averaged by :class:`util.grad_reduce.GradientReducer` (bucketed, overlapped with the
backward where the model declares its gradients final; why not DDP is explained there).

Optimisers stepped several times per iteration (TUNIT's C: its own loss, then the G loss) share the one
loss scale of the iteration: the scale changes only in ``end_iteration``, so every backward of an iteration
is scaled alike, and a repeated step is unscaled and inf-checked again like a first one (see
:class:`IterationGradScaler`). An optimiser none of whose parameters got a gradient is not stepped (fp16's
GradScaler would fail on it; the optimisers skip such parameters anyway).

``--grad_accum N``: the trainer calls ``optimize_parameters`` on N micro-batches. Each loss is scaled by 1/N;
a step requested before the last micro-batch stores the optimiser's gradients aside (their sum over
micro-batches) and leaves the networks unchanged, so every micro-batch sees the weights that the whole
batch would, and the last micro-batch's step uses the summed gradient: the gradient of the whole batch for
models without batch-dependent layers. Models that step an optimiser twice per iteration, or that use
batch statistics, refuse ``--grad_accum > 1`` (``BaseModel.grad_accum_blocker``).
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
from torch.amp.grad_scaler import OptState

from util.grad_reduce import GradientReducer

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class IterationGradScaler(torch.amp.GradScaler):
    """A GradScaler whose optimisers may be stepped more than once between two ``update`` calls.

    PyTorch's scaler refuses a second ``step`` of an optimiser before ``update``. Calling ``update`` in
    between would change the scale under gradients that were scaled by the old one, so instead the first
    step's inf record is kept aside (``update`` still sees it and lowers the scale if it found an inf) and
    the optimiser's per-step state starts afresh.
    """

    def step(self, optimizer, *args, **kwargs):
        if self.is_enabled():
            states = self._per_optimizer_states
            state = states.get(id(optimizer))
            if state is not None and state["stage"] is OptState.STEPPED:
                states[(id(optimizer), len(states))] = state  # update() reads every found_inf in the dict
                del states[id(optimizer)]
        return super().step(optimizer, *args, **kwargs)


class Runtime:
    """Autocast, GradScaler, micro-batches and distributed gradient averaging for one process."""

    def __init__(
        self,
        device: torch.device | str = "cpu",
        amp: str = "none",
        distributed: bool = False,
        *,
        grad_accum: int = 1,
        grad_comm: str = "fp32",
        bucket_mb: float = 25.0,
        dist_debug: bool = False,
        param_names: dict[int, str] | None = None,
    ):
        self.device = torch.device(device)
        if amp not in ("none", *AMP_DTYPES):
            raise ValueError(f"--amp: expected one of none, bf16, fp16; got {amp!r}")
        if grad_accum < 1:
            raise ValueError(f"--grad_accum: expected an integer >= 1, got {grad_accum}")
        self.amp = amp
        self.distributed = distributed and dist.is_available() and dist.is_initialized()
        # Loss scaling is only needed for fp16: bf16 has fp32's exponent range.
        self.scaler = IterationGradScaler(self.device.type, enabled=(amp == "fp16"))
        self.grad_accum = grad_accum
        self.micro, self.micro_count, self.micro_weight = 0, 1, 1.0
        self.stash: dict[int, torch.Tensor] = {}
        self.stepped = False
        self.reducer = None
        if self.distributed:
            self.reducer = GradientReducer(
                dist.get_world_size(), grad_comm, bucket_mb, dist_debug, param_names
            )

    @classmethod
    def for_training(cls, opt, device: torch.device, distributed: bool, model: torch.nn.Module) -> Runtime:
        """The trainer's runtime, from the training options (names parameters for the gradient check)."""
        return cls(
            device,
            opt.amp,
            distributed,
            grad_accum=opt.grad_accum,
            grad_comm=opt.grad_comm,
            bucket_mb=opt.bucket_mb,
            dist_debug=opt.dist_debug,
            param_names={id(p): n for n, p in model.named_parameters()},
        )

    def autocast(self):
        if self.amp == "none":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=AMP_DTYPES[self.amp])

    # ------------------------------------------------------------------ micro-batches
    def begin_micro_batch(self, index: int, count: int = 1, weight: float = 1.0) -> None:
        """Micro-batch ``index`` of ``count``, holding the fraction ``weight`` of the batch's images."""
        self.micro, self.micro_count, self.micro_weight = index, count, weight

    @property
    def last_micro_batch(self) -> bool:
        return self.micro == self.micro_count - 1

    # ------------------------------------------------------------------ backward and step
    def backward(
        self,
        loss: torch.Tensor,
        retain_graph: bool = False,
        final_for: list[torch.optim.Optimizer] | None = None,
    ) -> None:
        """``final_for``: optimisers stepped right after this backward; their buckets start reducing early."""
        if self.micro_count > 1:
            loss = loss * self.micro_weight
        elif self.reducer is not None and final_for:
            self.reducer.arm(final_for)
        # Backward runs outside autocast, as the AMP recipe asks, even when called inside a model's step.
        try:
            with torch.autocast(device_type=self.device.type, enabled=False):
                self.scaler.scale(loss).backward(retain_graph=retain_graph)
        finally:
            if self.reducer is not None:
                self.reducer.disarm()

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Average and apply the gradients; False when deferred (micro-batch) or when there were none."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if not self.last_micro_batch:
            self._stash(params)
            return False
        self._unstash(params)
        if self.reducer is not None:
            self.reducer.reduce(optimizer)  # every rank, even one without gradients: collectives must match
        if all(p.grad is None for p in params):
            return False
        self.scaler.step(optimizer)
        self.stepped = True
        return True

    def _stash(self, params: list[torch.nn.Parameter]) -> None:
        for p in params:
            if p.grad is None:
                continue
            kept = self.stash.get(id(p))
            self.stash[id(p)] = p.grad if kept is None else kept.add_(p.grad)
            p.grad = None

    def _unstash(self, params: list[torch.nn.Parameter]) -> None:
        for p in params:
            kept = self.stash.pop(id(p), None)
            if kept is not None:
                p.grad = kept if p.grad is None else p.grad.add_(kept)

    def end_iteration(self) -> None:
        """Called once per iteration, after all of a model's steps (one scale update for all optimisers)."""
        if self.scaler.is_enabled() and self.stepped:
            self.scaler.update()
        self.stepped = False

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler.is_enabled() else {}

    def load_state_dict(self, state: dict) -> None:
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)


def split_batch(batch: dict, parts: int) -> list[tuple[dict, float]]:
    """``batch`` cut into at most ``parts`` micro-batches along dim 0 (tensors and lists alike), each with
    its share of the images (the loss weight that makes the summed gradient the whole batch's)."""
    size = next(len(v) for v in batch.values() if torch.is_tensor(v) or isinstance(v, (list, tuple)))
    bounds = [round(i * size / parts) for i in range(parts + 1)]
    bounds = sorted(set(bounds))

    def cut(value, lo, hi):
        if torch.is_tensor(value) and value.dim() > 0 and value.size(0) == size:
            return value[lo:hi]
        if isinstance(value, (list, tuple)) and len(value) == size:
            return value[lo:hi]
        return value

    return [({k: cut(v, lo, hi) for k, v in batch.items()}, (hi - lo) / size) for lo, hi in zip(bounds, bounds[1:])]


def average_gradients(optimizer: torch.optim.Optimizer, comm: str = "fp32") -> None:
    """All-reduce (mean) every gradient of ``optimizer`` across processes (a one-off reducer)."""
    GradientReducer(dist.get_world_size(), comm, hooks=False).reduce(optimizer)
