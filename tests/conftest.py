"""Shared fixtures: a tiny synthetic dataset and fast command lines for train.py / test.py."""

from __future__ import annotations

import os
import sys

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


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    from datasets.make_synthetic import make_synthetic

    return make_synthetic(
        str(tmp_path_factory.mktemp("synthetic")), layout="unaligned", size=32, n_train=8, n_test=3, seed=0
    )


@pytest.fixture
def train_args(synthetic_root, tmp_path):
    """Build a train.py argument list for a tiny cycle_gan run in a fresh checkpoints dir."""

    def make(*extra: str, name: str = "exp", model: str = "cycle_gan") -> list[str]:
        return [
            "--model",
            model,
            "--dataroot",
            synthetic_root,
            "--name",
            name,
            "--checkpoints_dir",
            str(tmp_path / "checkpoints"),
            *TINY,
            *extra,
        ]

    return make


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny convolutions run fastest on one thread of a small shared CPU (and timings stay comparable)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
