"""Learning-rate schedules with the CycleGAN/CUT semantics (stepped once per epoch by default)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from torch.optim import Optimizer, lr_scheduler


class LinearDecay:
    """Keep lr for ``n_epochs`` epochs, then decay linearly to lr/(n_epochs_decay+1) in the last epoch.

    A small callable object rather than a lambda so the scheduler state is plain data.
    """

    def __init__(self, n_epochs: int, n_epochs_decay: int, epoch_count: int = 1):
        self.n_epochs, self.n_epochs_decay, self.epoch_count = n_epochs, n_epochs_decay, epoch_count

    def __call__(self, step: int) -> float:
        return 1.0 - max(0, step + self.epoch_count - self.n_epochs) / float(self.n_epochs_decay + 1)


class ConstantFactor:
    """No schedule (UNIT's ``constant`` policy); an object, not a lambda, so the state stays plain data."""

    def __call__(self, step: int) -> float:
        return 1.0


def get_scheduler(optimizer: Optimizer, opt) -> lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau:
    policy = opt.lr_policy
    if policy == "linear":
        return lr_scheduler.LambdaLR(
            optimizer, LinearDecay(opt.n_epochs, opt.n_epochs_decay, opt.epoch_count)
        )
    if policy == "step":
        return lr_scheduler.StepLR(optimizer, step_size=opt.lr_decay_iters, gamma=0.1)
    if policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    if policy == "constant":
        return lr_scheduler.LambdaLR(optimizer, ConstantFactor())
    if policy == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=opt.n_epochs + opt.n_epochs_decay, eta_min=0)
    raise ValueError(f"--lr_policy: unknown policy {policy!r}; valid: linear, step, plateau, cosine, constant")


@contextlib.contextmanager
def without_order_warning() -> Iterator[None]:
    """Step schedules at an epoch end that had no optimiser step in this process, without torch's warning.

    A run resumed at the very end of an epoch (stopped on its last batch, or a dataset now shorter than the
    saved position) ends that epoch at once; the schedule's position came from the checkpoint, so stepping it
    is right and the "scheduler before optimizer" warning does not apply.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
        yield
