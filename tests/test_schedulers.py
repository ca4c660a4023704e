"""Learning-rate policies with the CycleGAN-codebase semantics (one scheduler step per epoch)."""

from __future__ import annotations

import argparse

import pytest
import torch

from util.schedulers import get_scheduler


def lrs(policy: str, epochs: int, **extra) -> list[float]:
    opt = argparse.Namespace(lr_policy=policy, n_epochs=3, n_epochs_decay=4, epoch_count=1, lr_decay_iters=2, **extra)
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = get_scheduler(optimizer, opt)
    out = []
    for _ in range(epochs):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        sched.step(1.0) if policy == "plateau" else sched.step()
    return out


def test_linear_keeps_lr_then_decays_to_a_fifth_in_the_last_epoch():
    assert lrs("linear", 7) == pytest.approx([1, 1, 1, 0.8, 0.6, 0.4, 0.2])


def test_step_cosine_and_plateau():
    assert lrs("step", 5) == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    cosine = lrs("cosine", 8)
    assert cosine[0] == 1 and cosine[-1] == pytest.approx(0.0, abs=1e-12) and cosine == sorted(cosine, reverse=True)
    plateau = lrs("plateau", 9)
    assert plateau[:7] == [1.0] * 7 and plateau[-1] == pytest.approx(0.2)


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="valid: linear, step, plateau, cosine"):
        lrs("exp", 1)
