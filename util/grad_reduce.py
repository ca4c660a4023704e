"""Bucketed, overlapped gradient averaging across processes, correct for GAN training patterns.

Why not ``DistributedDataParallel``: GAN models toggle ``requires_grad`` of their discriminators inside an
iteration, run a network several times per iteration and backpropagate several losses into one optimiser
before stepping it. DDP's reducer assumes one backward per forward with a fixed set of parameters.

Design. Each optimiser's parameters are grouped, in reverse order (roughly the order in which backward
produces their gradients), into buckets of about ``--bucket_mb``. A post-accumulate-grad hook fires every
time a parameter's gradient is accumulated, which is not the same as "final": a network can receive
gradients from several backward calls before its step. Gradients are therefore only launched early when
the caller *declares* them final: ``BaseModel.backward_and_step`` runs one backward immediately followed by
the step, and arms the reducer for its optimisers (``arm``). During that backward, a bucket whose every
parameter has been accumulated is all-reduced asynchronously while backward goes on; buckets are launched
strictly in index order per optimiser (bucket i waits for 0..i-1), so every rank issues the same sequence
of collectives. Everything not launched by then (unarmed backward calls, parameters the graph did not
reach, accumulated micro-batches) is launched at ``reduce`` time, which then waits for all buckets.

Memory: a bucket made of one gradient is reduced in place (the large layers); smaller gradients are copied
into a bucket buffer (the sum of the buffers is bounded by the size of the small gradients, not of all).

Same parameter set on every rank: a parameter without a gradient contributes zeros to the buckets
launched at ``reduce`` time. ``check`` (each optimiser's first step, or every step with ``--dist_debug``)
all-reduces one int per parameter and fails naming the parameters that have a gradient on some ranks only;
checked steps launch nothing early, so the check is the first collective of the step on every rank. The
check reads the result on the host (a device synchronisation), which is why it is not on every step by
default; a set that starts to differ later makes the ranks launch different buckets early, and they stop at
``--dist_timeout`` instead of with the parameter's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from util.distributed import PeerLostError, guarded, peer_lost_message

COMM_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class GradientSetMismatch(RuntimeError):
    """Ranks disagree on which parameters received a gradient."""


@dataclass
class _Bucket:
    params: list[torch.nn.Parameter]
    ready: int = 0
    work: object = None
    buffer: torch.Tensor | None = None


@dataclass
class _Plan:
    """The buckets of one optimiser and the launch state of the current step."""

    buckets: list[_Bucket]
    index: dict[int, int]  # id(param) -> bucket index
    armed: bool = False
    next_launch: int = 0
    checked: bool = False
    params: list[torch.nn.Parameter] = field(default_factory=list)


class GradientReducer:
    def __init__(
        self,
        world_size: int,
        comm: str = "fp32",
        bucket_mb: float = 25.0,
        check_every_step: bool = False,
        names: dict[int, str] | None = None,
        hooks: bool = True,
    ) -> None:
        self.world_size = world_size
        self.hooks = hooks
        self.comm_dtype = COMM_DTYPES[comm]
        self.bucket_bytes = int(bucket_mb * (1 << 20))
        self.check_every_step = check_every_step
        self.names = names or {}
        self.plans: dict[int, _Plan] = {}
        self.owner: dict[int, _Plan] = {}  # id(param) -> plan, for the hooks

    # ------------------------------------------------------------------ planning
    def plan(self, optimizer: torch.optim.Optimizer) -> _Plan:
        plan = self.plans.get(id(optimizer))
        if plan is None:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            plan = self._make_plan(params)
            self.plans[id(optimizer)] = plan
        return plan

    def _make_plan(self, params: list[torch.nn.Parameter]) -> _Plan:
        buckets: list[_Bucket] = []
        current: list[torch.nn.Parameter] = []
        size = 0
        for p in reversed(params):
            nbytes = p.numel() * self.comm_dtype.itemsize
            if current and size + nbytes > self.bucket_bytes:
                buckets.append(_Bucket(current))
                current, size = [], 0
            current.append(p)
            size += nbytes
        if current:
            buckets.append(_Bucket(current))
        index = {id(p): i for i, b in enumerate(buckets) for p in b.params}
        plan = _Plan(buckets, index, params=params)
        for p in params if self.hooks else []:
            if id(p) not in self.owner:
                self.owner[id(p)] = plan
                p.register_post_accumulate_grad_hook(self._on_grad_ready)
        return plan

    # ------------------------------------------------------------------ overlap with backward
    def arm(self, optimizers: list[torch.optim.Optimizer]) -> None:
        """The next backward produces the final gradients of these optimisers: launch buckets as they fill."""
        for opt in optimizers:
            plan = self.plan(opt)
            # A checked step launches nothing early: the check's collective must come first on every rank,
            # whatever gradients this rank has.
            plan.armed = plan.checked and not self.check_every_step
            for bucket in plan.buckets:
                bucket.ready = 0

    def disarm(self) -> None:
        for plan in self.plans.values():
            plan.armed = False

    def _on_grad_ready(self, param: torch.Tensor) -> None:
        plan = self.owner.get(id(param))
        if plan is None or not plan.armed:
            return
        bucket = plan.buckets[plan.index[id(param)]]
        bucket.ready += 1
        while plan.next_launch < len(plan.buckets):
            nxt = plan.buckets[plan.next_launch]
            if nxt.ready < len(nxt.params):
                break
            guarded(lambda bucket=nxt: self._launch(bucket), "averaging gradients")
            plan.next_launch += 1

    def _launch(self, bucket: _Bucket) -> None:
        grads = [p.grad for p in bucket.params]
        single = grads[0] if len(grads) == 1 else None
        if single is not None and single.dtype == self.comm_dtype and single.is_contiguous():
            bucket.buffer = single  # in place: no copy of the large gradients
        else:
            ref = bucket.params[0]
            bucket.buffer = torch.zeros(
                sum(p.numel() for p in bucket.params), dtype=self.comm_dtype, device=ref.device
            )
            offset = 0
            for p, g in zip(bucket.params, grads):
                if g is not None:
                    bucket.buffer[offset : offset + p.numel()].copy_(g.reshape(-1))
                offset += p.numel()
        bucket.work = dist.all_reduce(bucket.buffer, op=dist.ReduceOp.SUM, async_op=True)

    # ------------------------------------------------------------------ at the optimiser step
    def reduce(self, optimizer: torch.optim.Optimizer) -> None:
        """Launch what is left, wait for every bucket and leave the mean gradient in each ``p.grad``."""
        plan = self.plan(optimizer)
        plan.armed = False
        if self.check_every_step or not plan.checked:
            self.check(plan)
            plan.checked = True
        try:
            for bucket in plan.buckets[plan.next_launch :]:
                self._launch(bucket)
            plan.next_launch = 0
            for bucket in plan.buckets:
                bucket.work.wait()
                self._unpack(bucket)
                bucket.work = bucket.buffer = None
        except (RuntimeError, dist.DistError) as exc:
            raise PeerLostError(peer_lost_message("averaging gradients", exc)) from exc

    def _unpack(self, bucket: _Bucket) -> None:
        scale = 1.0 / self.world_size
        if len(bucket.params) == 1 and bucket.buffer is bucket.params[0].grad:
            bucket.buffer.mul_(scale)
            return
        offset = 0
        for p in bucket.params:
            n = p.numel()
            if p.grad is not None:
                p.grad.copy_(bucket.buffer[offset : offset + n].view_as(p.grad)).mul_(scale)
            offset += n

    def check(self, plan: _Plan) -> None:
        """Fail, naming parameters, when some ranks have a gradient for a parameter and others do not."""
        ref = plan.params[0]
        has = torch.tensor([p.grad is not None for p in plan.params], dtype=torch.int32, device=ref.device)
        guarded(lambda: dist.all_reduce(has, op=dist.ReduceOp.SUM), "comparing which gradients exist")
        counts = has.tolist()
        bad = [i for i, c in enumerate(counts) if c not in (0, self.world_size)]
        if bad:
            names = [self.names.get(id(plan.params[i]), f"parameter #{i}") for i in bad]
            mine = "has a" if plan.params[bad[0]].grad is not None else "has no"
            raise GradientSetMismatch(
                f"rank {dist.get_rank()}: {len(bad)} parameter(s) have a gradient on some processes only "
                f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}; this rank {mine} gradient for "
                f"the first): every process must backpropagate into the same parameters before a step"
            )
