"""The one trainer: steps, checkpoints, exact resume, signals, non-finite losses, bad checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import train
from options import TrainOptions
from util.checkpoint import CheckpointError, load_checkpoint
from util.trainer import NonFiniteLossError, Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def latest(opt_dir) -> dict:
    return load_checkpoint(os.path.join(opt_dir, "latest.pth"))


def params(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_one_step_changes_generators_and_discriminators(train_args):
    trainer = Trainer(TrainOptions().parse(train_args(), save=False))
    before = {name: params(net) for name, net in trainer.model.networks().items()}
    trainer.train_step(next(iter(trainer.loader)))
    for name, net in trainer.model.networks().items():
        after = params(net)
        changed = [k for k in after if not torch.equal(after[k], before[name][k])]
        assert changed, f"{name} did not change after one optimisation step"
    losses = trainer.model.get_current_losses()
    assert set(losses) == set(trainer.model.loss_names) and all(torch.isfinite(v) for v in losses.values())


def test_checkpoint_is_complete(train_args, tmp_path):
    assert train.main(train_args("--n_epochs", "1", "--n_epochs_decay", "1", "--max_dataset_size", "3")) == 0
    ckpt = latest(tmp_path / "checkpoints" / "exp")
    assert ckpt["model"] == "cycle_gan" and ckpt["options"]["ngf"] == 8
    assert set(ckpt["networks"]) == {"netG_A", "netG_B", "netD_A", "netD_B"}
    assert set(ckpt["optimizers"]) == set(ckpt["schedulers"]) == {"G", "D"}
    assert ckpt["progress"] == {
        "epoch": 3,
        "epoch_iter": 0,
        "epoch_images": 0,
        "global_step": 6,
        "world_size": 1,
        "dataset_size": 3,  # a resume onto a dataset of another size says what that changes
    }
    assert set(ckpt["rng"]) >= {"python", "numpy", "torch"}
    assert len(ckpt["model_state"]["fake_A_pool"]["images"]) == 6
    assert not [f for f in os.listdir(tmp_path / "checkpoints" / "exp") if ".tmp" in f]


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(train_args, tmp_path):
    """Data order, image pools, optimiser/scheduler state and RNG all come back from the checkpoint."""
    common = [
        "--n_epochs",
        "1",
        "--n_epochs_decay",
        "1",
        "--max_dataset_size",
        "5",
        "--pool_size",
        "2",
        "--lr",
        "0.001",
        "--save_epoch_freq",
        "0",
    ]
    assert train.main(train_args(*common, name="straight")) == 0
    assert train.main(train_args(*common, "--max_steps", "3", name="resumed")) == 0
    stopped = latest(tmp_path / "checkpoints" / "resumed")
    assert stopped["progress"]["epoch"] == 1 and stopped["progress"]["epoch_iter"] == 3
    assert train.main(train_args(*common, "--continue_train", name="resumed")) == 0

    a, b = latest(tmp_path / "checkpoints" / "straight"), latest(tmp_path / "checkpoints" / "resumed")
    assert a["progress"] == b["progress"]
    assert a["progress"]["epoch"] == 3 and a["progress"]["global_step"] == 10
    for net in a["networks"]:
        for key, value in a["networks"][net].items():
            assert torch.equal(value, b["networks"][net][key]), f"{net}.{key} differs after resume"
    for name in ("G", "D"):
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    assert a["schedulers"]["G"]["last_epoch"] == b["schedulers"]["G"]["last_epoch"] == 2


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(train_args, tmp_path):
    argv = train_args("--n_epochs", "500", "--print_freq", "1")
    proc = subprocess.Popen(
        [sys.executable, "train.py", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 240
    for line in proc.stdout:
        if line.startswith("(epoch: 1, iters: 2"):
            proc.send_signal(signal.SIGTERM)
            break
        assert time.time() < deadline, "training never reached iteration 2"
    rest = proc.communicate(timeout=240)[0]
    assert proc.returncode == 0, rest
    assert "resume with --continue_train" in rest
    progress = latest(tmp_path / "checkpoints" / "exp")["progress"]
    assert progress["global_step"] >= 2 and progress["epoch"] == 1


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(train_args, tmp_path, monkeypatch):
    trainer = Trainer(
        TrainOptions().parse(train_args("--save_latest_freq", "2", "--n_epochs", "3"), save=False)
    )
    model, real_step = trainer.model, trainer.model.optimize_parameters

    def poisoned():
        real_step()
        if model.global_step == 3:
            model.loss_G_A = torch.tensor(float("nan"))

    monkeypatch.setattr(model, "optimize_parameters", poisoned)
    with pytest.raises(NonFiniteLossError, match="G_A.*first at step 4.*latest.pth from step 2 is kept"):
        trainer.fit()
    assert latest(tmp_path / "checkpoints" / "exp")["progress"]["global_step"] == 2


def test_checkpoint_of_another_model_or_configuration_is_rejected(train_args, tmp_path):
    assert train.main(train_args("--max_steps", "1")) == 0
    path = os.path.join(tmp_path, "checkpoints", "exp", "latest.pth")
    with pytest.raises(CheckpointError, match="written by model 'cycle_gan', but --model is 'cut'"):
        load_checkpoint(path, "cut")
    with pytest.raises(CheckpointError, match="--ngf: checkpoint 8, now 16"):
        Trainer(TrainOptions().parse(train_args("--continue_train", "--ngf", "16"), save=False))
    with pytest.raises(CheckpointError, match="not a checkpoint of this framework"):
        torch.save({"a": torch.zeros(1)}, tmp_path / "other.pth")
        load_checkpoint(str(tmp_path / "other.pth"))


def test_training_moves_fake_B_toward_domain_B(train_args):
    """A real learning check: the colour statistic of G_A(A) must move from domain A's toward domain B's."""
    from datasets.make_synthetic import domain_statistic

    opt = TrainOptions().parse(
        train_args(
            "--lr", "0.002", "--n_epochs", "100", "--max_steps", "120", "--lambda_identity", "0", "--no_flip"
        ),
        save=False,
    )
    trainer = Trainer(opt)
    batch = next(iter(trainer.loader))
    real_A, real_B = batch["A"], batch["B"]
    with torch.no_grad():
        start = domain_statistic(trainer.model.netG_A(real_A))
    trainer.fit()
    with torch.no_grad():
        end = domain_statistic(trainer.model.netG_A(real_A))
    target, source = domain_statistic(real_B), domain_statistic(real_A)
    assert target < source
    assert abs(end - target) < 0.5 * abs(start - target), (start, end, target)
