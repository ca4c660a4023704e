"""Start-up and resume under 2 gloo processes: refusals stop every rank alike, --overwrite and resumes agree.

The processes are joined by hand (``launch_pair``'s environment, no torchrun agent), so a rank that would wait
for a peer that refused is seen waiting instead of being ended by the agent. A small wrapper around train.py
can delay rank 1's checkpoint reads (a slow rank meeting rank 0's ``--overwrite`` deletions) and prints each
rank's learning rates when training starts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.test_distributed_ranks import ROOT, free_port, wait_all

WRAPPER = """
import os, runpy, sys, time
sys.path.insert(0, os.getcwd())
import util.checkpoint as ckpt_io
from util.trainer import Trainer

load, fit = ckpt_io.load_own_file, Trainer.fit

def slow_load(path):
    if os.environ["RANK"] == "1":  # rank 0 reaches its deletions first
        time.sleep(float(os.environ.get("SLOW_LOAD", "0")))
    return load(path)

def fit_and_tell(self):
    print("lrs:", [g["lr"] for o in self.model.optimizers.values() for g in o.param_groups], flush=True)
    return fit(self)

ckpt_io.load_own_file, Trainer.fit = slow_load, fit_and_tell
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""
TIMEOUT = 3  # --dist_timeout


def launch(argv: list[str], logs, wrapper=None, env_extra: dict | None = None) -> list[subprocess.Popen]:
    """train.py (or ``wrapper``) as ranks 0 and 1; output in ``logs/out{r}`` and ``logs/err{r}``."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "WORLD_SIZE": "2", **(env_extra or {})}  # fmt: skip
    procs = []
    for r in range(2):
        with open(logs / f"out{r}", "w") as out, open(logs / f"err{r}", "w") as err:
            procs.append(subprocess.Popen([sys.executable, str(wrapper or "train.py"), *argv], cwd=ROOT,
                                          stdout=out, stderr=err, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}))  # fmt: skip
    return procs


def read(logs, what: str) -> list[str]:
    return [(logs / f"{what}{r}").read_text() for r in range(2)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_root) -> tuple[str, list[str]]:
    """A finished 1-process run with 1.pth, 2.pth and latest.pth; returns its folder and its command line."""
    from tests.conftest import TINY, _command_line

    root = tmp_path_factory.mktemp("trained")
    argv = _command_line(TINY, "cycle_gan", synthetic_root, "exp", str(root / "checkpoints"),
                         ["--max_dataset_size", "4", "--n_epochs", "1", "--n_epochs_decay", "1",
                          "--save_epoch_freq", "1", "--dist_timeout", str(TIMEOUT)])  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "train.py", *argv], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = root / "checkpoints" / "exp"
    assert {"1.pth", "2.pth", "latest.pth"} <= set(os.listdir(folder))
    return str(folder), argv


def with_checkpoints_dir(argv: list[str], checkpoints_dir, *extra: str) -> list[str]:
    argv = list(argv)
    argv[argv.index("--checkpoints_dir") + 1] = str(checkpoints_dir)
    return [*argv, *extra]


def test_refused_starts_stop_every_rank_with_the_same_line(trained, tmp_path):
    """Existing checkpoints, a missing --dataroot, --continue_train with nothing to resume, a damaged
    latest.pth: both ranks exit 1 with the same one-line reason, none waits for the other, and a folder the
    start created is gone."""
    folder, argv = trained
    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged / "exp")
    (damaged / "exp" / "latest.pth").write_bytes(b"\0" * 100)
    cases = {
        "existing": (with_checkpoints_dir(argv, os.path.dirname(folder)), "already holds checkpoints"),
        "dataroot": (with_checkpoints_dir(argv, tmp_path / "new1", "--dataroot", str(tmp_path / "nope")), "--dataroot"),
        "nothing": (with_checkpoints_dir(argv, tmp_path / "new2", "--continue_train"), "checkpoint not found"),
        "damaged": (with_checkpoints_dir(argv, damaged, "--continue_train"), "--continue_train --epoch 2"),
    }  # fmt: skip
    runs = {name: launch(args, tmp_path / "logs" / name) for name, (args, _) in cases.items()}
    started = time.time()
    codes = {name: wait_all(procs, 90) for name, procs in runs.items()}
    assert time.time() - started < 60  # no rank waited for a peer that refused (the timeout is 3 s anyway)
    for name, (_, reason) in cases.items():
        errors = read(tmp_path / "logs" / name, "err")
        assert codes[name] == [1, 1], (name, errors)
        lines = [e.strip().splitlines() for e in errors]
        assert len(lines[0]) == 1 and lines[0] == lines[1] and reason in lines[0][0], (name, errors)
    assert not (tmp_path / "new1").exists() and not (tmp_path / "new2").exists()
    assert (damaged / "exp" / "1.pth").exists()


def test_a_rank_whose_peer_refused_before_joining_stops_with_one_line(trained, tmp_path):
    """Rank 0 finds the folder locked by a live run; rank 1 (no lock to check) stops at --dist_timeout while
    joining, with one line, not a rendezvous traceback."""
    folder, argv = trained
    (tmp_path / "ck" / "exp").mkdir(parents=True)
    (tmp_path / "ck" / "exp" / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": os.uname()[1]}))
    logs = tmp_path / "logs"
    codes = wait_all(launch(with_checkpoints_dir(argv, tmp_path / "ck"), logs), TIMEOUT + 40)
    errors = read(logs, "err")
    assert codes == [1, 1], errors
    assert errors[0].strip().startswith("error: another run") and len(errors[0].strip().splitlines()) == 1
    # c10d's C++ logger reports the failed connection itself (not silenceable from Python); ours is the last line
    last = errors[1].strip().splitlines()[-1]
    assert last.startswith("error: rank 1: another process did not answer while joining"), errors[1]
    assert "Traceback" not in errors[1] and f"--dist_timeout {TIMEOUT} s" in last


def run_on_copy(trained, tmp_path, *extra: str, env: dict | None = None) -> tuple[list[str], list[str]]:
    """Both ranks' stdout and stderr of train.py (through the wrapper) on a copy of the trained run, after both
    exited 0."""
    folder, argv = trained
    shutil.copytree(folder, tmp_path / "ck" / "exp")
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(WRAPPER)
    logs = tmp_path / "logs"
    codes = wait_all(launch(with_checkpoints_dir(argv, tmp_path / "ck", *extra), logs, wrapper, env or {}), 90)
    outs, errors = read(logs, "out"), read(logs, "err")
    assert codes == [0, 0], errors
    return outs, errors


def test_overwrite_waits_for_every_rank_before_deleting(trained, tmp_path):
    """--overwrite --pretrained_name <this run>: rank 1 still reads 2.pth (slowly) after rank 0 has passed its
    own checks; rank 0 deletes the old files only once every rank has started, then both train."""
    outs, _ = run_on_copy(trained, tmp_path, "--overwrite", "--pretrained_name", "exp", "--epoch", "2",
                          "--save_epoch_freq", "5", "--dist_timeout", "20", env={"SLOW_LOAD": "2"})  # fmt: skip
    assert sorted(n for n in os.listdir(tmp_path / "ck" / "exp") if n.endswith(".pth")) == ["latest.pth"]
    assert "removed the previous run's 1.pth, 2.pth, latest.pth" in outs[0] and "removed" not in outs[1]
    assert "initialised networks from" in outs[0] and "initialised networks from" not in outs[1]


def test_resume_with_changed_lr_and_length_agrees_on_every_rank(trained, tmp_path):
    """The changed settings apply on both ranks (same rates), the note and the resume line are printed once."""
    outs, _ = run_on_copy(trained, tmp_path, "--continue_train", "--epoch", "1", "--lr", "0.0001",
                          "--n_epochs", "2", "--n_epochs_decay", "2")  # fmt: skip
    rates = [[line for line in out.splitlines() if line.startswith("lrs:")] for out in outs]
    assert rates[0] and rates[0] == rates[1], rates
    assert "lr 0.0002 -> 0.0001" in outs[0] and "schedule n_epochs 1 -> 2" in outs[0]
    for once in ("note: optimiser settings", "resumed from", "dataset [", "end of epoch 4 / 4"):
        assert once in outs[0] and once not in outs[1], once
