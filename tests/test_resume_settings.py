"""--continue_train: the optimiser/schedule settings come from the command line, their state from the checkpoint."""

from __future__ import annotations

import re

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR, StepLR

import train
from util import resume_settings
from util.checkpoint import load_checkpoint
from util.schedulers import LinearDecay


def printed_rates(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"learning rate (-?[0-9.]+)", text)]


def test_extending_a_finished_run_follows_the_new_schedule_and_lr(train_args, tmp_path, capsys):
    """Before: the checkpoint's LinearDecay(n_epochs=1, decay=1) and lr came back, and epochs 3..5 trained
    at -0.0001, -0.0002, -0.0003."""
    common = ("--max_dataset_size", "2")
    assert train.main(train_args(*common, "--n_epochs", "1", "--n_epochs_decay", "1")) == 0
    capsys.readouterr()
    longer = ("--n_epochs", "3", "--n_epochs_decay", "2", "--lr", "0.0004", "--beta1", "0.6")
    assert train.main(train_args(*common, *longer, "--continue_train")) == 0
    out = capsys.readouterr().out
    note = next(line for line in out.splitlines() if line.startswith("note: optimiser settings"))
    for change in ("lr 0.0002 -> 0.0004 (G, D)", "betas (0.5, 0.999) -> (0.6, 0.999) (G, D)",
                   "schedule n_epochs 1 -> 3 (G, D)", "schedule n_epochs_decay 1 -> 2 (G, D)"):  # fmt: skip
        assert change in note
    # epochs 3, 4, 5 of LinearDecay(3, 2) from 4e-4: factors 2/3, 1/3, 0 after each epoch
    assert printed_rates(out) == pytest.approx([4e-4 * 2 / 3, 4e-4 / 3, 0.0], abs=1e-7)
    ckpt = load_checkpoint(str(tmp_path / "checkpoints" / "exp" / "latest.pth"))
    group = ckpt["optimizers"]["G"]["param_groups"][0]
    assert group["initial_lr"] == 0.0004 and tuple(group["betas"]) == (0.6, 0.999)
    assert ckpt["schedulers"]["G"]["lr_lambdas"][0] == {"n_epochs": 3, "n_epochs_decay": 2, "epoch_count": 1}


def test_an_unchanged_command_resumes_without_a_note(train_args, capsys):
    common = ("--max_dataset_size", "2", "--n_epochs", "1", "--n_epochs_decay", "1")
    assert train.main(train_args(*common, "--max_steps", "3")) == 0
    assert train.main(train_args(*common, "--continue_train")) == 0
    assert "note: optimiser settings" not in capsys.readouterr().out


def sgd(lr: float = 0.1, momentum: float = 0.0) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=momentum)


def resumed(build, steps: int):
    """(optimiser, scheduler) saved after ``steps`` by ``build()``, loaded into a fresh ``build(new=True)``."""
    old_opt, old_sched = build(False)
    for _ in range(steps):
        old_opt.step()
        old_sched.step()
    new_opt, new_sched = build(True)
    fresh = resume_settings.snapshot({"G": new_opt}, {"G": new_sched})
    new_opt.load_state_dict(old_opt.state_dict())
    new_sched.load_state_dict(old_sched.state_dict())
    return new_opt, new_sched, resume_settings.reapply({"G": new_opt}, {"G": new_sched}, fresh)


def test_the_start_epoch_of_a_linear_decay_stays_the_checkpoints():
    """--epoch_count given again on resume (a CycleGAN habit) must not shift the decay a second time."""

    def build(new):
        opt = sgd()
        return opt, LambdaLR(opt, LinearDecay(4 if new else 2, 2, epoch_count=9 if new else 1))

    opt, sched, changes = resumed(build, 3)
    assert changes == ["schedule n_epochs 2 -> 4 (G)"]
    assert sched.lr_lambdas[0].epoch_count == 1
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * (1 - max(0, 3 + 1 - 4) / 3))


def test_a_step_schedule_is_recomputed_at_the_resumed_position():
    def build(new):
        opt = sgd(0.2 if new else 0.1)
        return opt, StepLR(opt, step_size=3 if new else 2, gamma=0.5)

    opt, sched, changes = resumed(build, 5)
    assert "lr 0.1 -> 0.2 (G)" in changes and "schedule step_size 2 -> 3 (G)" in changes
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2 * 0.5 ** (5 // 3))
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_a_constant_rate_without_a_schedule_and_other_settings_apply():
    old, new = sgd(0.1, momentum=0.5), sgd(0.05, momentum=0.9)
    fresh = resume_settings.snapshot({"C": new}, {})
    new.load_state_dict(old.state_dict())
    changes = resume_settings.reapply({"C": new}, {}, fresh)
    assert changes == ["lr 0.1 -> 0.05 (C)", "momentum 0.5 -> 0.9 (C)"]
    assert new.param_groups[0]["lr"] == 0.05 and new.param_groups[0]["momentum"] == 0.9


def test_nothing_is_touched_when_nothing_changed():
    def build(new):
        opt = sgd()
        return opt, StepLR(opt, step_size=2, gamma=0.5)

    opt, sched, changes = resumed(build, 5)
    assert changes == [] and opt.param_groups[0]["lr"] == 0.1 * 0.5 * 0.5


def test_schedulers_sharing_one_factor_object_are_all_recomputed():
    """U-GAT-IT's G and D schedulers share one decay object: the second must not look unchanged."""
    from models.ugatit_support import UGATITDecay

    def build(iterations):
        decay = UGATITDecay(iterations)
        opts = {"G": sgd(), "D": sgd()}
        return opts, {n: LambdaLR(o, decay) for n, o in opts.items()}

    old_opts, old_scheds = build(4)
    for _ in range(4):
        for n in old_opts:
            old_opts[n].step()
            old_scheds[n].step()
    opts, scheds = build(8)
    fresh = resume_settings.snapshot(opts, scheds)
    for n in opts:
        opts[n].load_state_dict(old_opts[n].state_dict())
        scheds[n].load_state_dict(old_scheds[n].state_dict())
    assert resume_settings.reapply(opts, scheds, fresh) == ["schedule half 2 -> 4 (G, D)"]
    assert [o.param_groups[0]["lr"] for o in opts.values()] == pytest.approx([0.1 * 0.75] * 2)
