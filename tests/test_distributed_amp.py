"""torchrun (gloo on CPU) and mixed precision go through the trainer without model changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from options import TrainOptions
from util.checkpoint import load_checkpoint
from util.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bf16_autocast_step_updates_all_networks(train_args):
    trainer = Trainer(TrainOptions().parse(train_args("--amp", "bf16"), save=False))
    with trainer.model.runtime.autocast():  # the context the trainer runs optimize_parameters in
        assert trainer.model.netG_A(torch.zeros(1, 3, 32, 32)).dtype == torch.bfloat16
    before = {n: next(net.parameters()).detach().clone() for n, net in trainer.model.networks().items()}
    trainer.train_step(next(iter(trainer.loader)))
    assert all(torch.isfinite(v) for v in trainer.model.get_current_losses().values())
    for name, net in trainer.model.networks().items():
        assert not torch.equal(next(net.parameters()), before[name]), name
        assert next(net.parameters()).dtype == torch.float32  # master weights stay fp32


@pytest.mark.skipif(
    shutil.which("torchrun") is None
    and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
    reason="torchrun not installed",
)
def test_torchrun_two_processes_shard_data_and_save_once(train_args, tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    argv = train_args("--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "6")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "train.py", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # printed by rank 0 only: 3 batches of 1 per rank out of 6 items, so each rank gets half of the data
    assert proc.stdout.count("6 items, 3 batches/epoch") == 1
    assert proc.stdout.count("---------- Networks initialized") == 1  # the summary once, not per rank
    ckpt = load_checkpoint(os.path.join(tmp_path, "checkpoints", "exp", "latest.pth"))
    assert ckpt["progress"]["global_step"] == 3 and ckpt["progress"]["world_size"] == 2


def test_gradient_average_matches_the_mean_over_processes(tmp_path):
    """Two gloo processes with different gradients end with the mean of both on each."""
    script = tmp_path / "avg.py"
    script.write_text(
        "import os, sys, torch, torch.distributed as dist\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from util.runtime import average_gradients\n"
        "dist.init_process_group('gloo')\n"
        "r = dist.get_rank()\n"
        "p = torch.nn.Parameter(torch.zeros(3)); p.grad = torch.full((3,), float(r + 1))\n"
        "opt = torch.optim.SGD([p], lr=1.0)\n"
        "average_gradients(opt)\n"
        "assert torch.allclose(p.grad, torch.full((3,), 1.5)), p.grad\n"
        "dist.destroy_process_group()\n"
    )
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    if not os.path.exists(torchrun):
        pytest.skip("torchrun not installed")
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
