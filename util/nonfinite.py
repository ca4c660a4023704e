"""Noticing NaN/inf losses without a host synchronisation per step.

Reading a loss on the host (``bool(isfinite(loss))``) waits for the GPU to finish the step, every step. The
:class:`LossWatch` instead accumulates, on the device, which losses have been non-finite and the first step
at which one was; the trainer reads it only at print steps, before a checkpoint is written and at the end.
Under several processes the read is an all-reduce (MAX) so that every rank stops at the same step.

Because the read is late, weights may already be non-finite when it happens; what guarantees that no
poisoned checkpoint is ever written is the check of the state itself before saving
(:func:`util.checkpoint.count_non_finite`), done by the trainer's save.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from util.distributed import guarded


class NonFiniteLossError(RuntimeError):
    """A loss, a weight or an optimiser state became NaN or infinite; nothing poisoned was written."""


class LossWatch:
    """Device-side "has any loss been non-finite, and since which step" record."""

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self.names: tuple[str, ...] = ()
        self.bad: torch.Tensor | None = None  # one bool per loss name
        self.first_step = torch.full((), -1, dtype=torch.long, device=self.device)
        self.earlier = torch.zeros((), dtype=torch.bool, device=self.device)  # from other loss names

    def observe(self, losses: dict[str, torch.Tensor], step: int) -> None:
        """Record this step's losses; device operations only, nothing is read on the host."""
        if not losses:
            return
        names = tuple(losses)
        values = torch.stack([v.detach().float().reshape(()).to(self.device) for v in losses.values()])
        bad = ~torch.isfinite(values)
        if self.bad is not None and names != self.names:
            self.earlier |= self.bad.any()
            self.bad = None
        self.names, self.bad = names, bad if self.bad is None else self.bad | bad
        newly = bad.any() & (self.first_step < 0)
        self.first_step = torch.where(newly, torch.full_like(self.first_step, step), self.first_step)

    def raise_if_bad(self, all_reduce: bool = False) -> None:
        """The one host read: raise :class:`NonFiniteLossError` if a loss has been non-finite (on any rank)."""
        local = self.earlier.clone() if self.bad is None else self.earlier | self.bad.any()
        flag = local.to(torch.int32)
        if all_reduce:
            guarded(lambda: dist.all_reduce(flag, op=dist.ReduceOp.MAX), "checking the losses")
        if not int(flag):
            return
        if not bool(local):
            raise NonFiniteLossError("a loss became non-finite in another process")
        names = [n for n, b in zip(self.names, self.bad.tolist()) if b] if self.bad is not None else []
        raise NonFiniteLossError(
            f"non-finite loss ({', '.join(names) or 'an earlier loss'}) first at step {int(self.first_step)}"
        )
