"""Two gloo processes: every model ends with identical replicas; a lost process stops the other in time.

One torchrun launch (``tests/_dist_worker.py``) trains every model for 2 steps through the trainer and saves
each rank's parameters, buffers (BatchNorm statistics under SyncBatchNorm, spectral-norm vectors, EMA copies)
and TUNIT's MoCo queue; the tests compare the two ranks bit for bit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = ["cycle_gan", "cut", "fastcut", "srunit", "liss", "ugatit_light", "ugatit_enhanced", "unit", "tunit_gan"]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("ranks")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           os.path.join(ROOT, "tests", "_dist_worker.py"), str(out), str(out / "tmp"), *CASES, "mismatch"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")


@pytest.mark.parametrize("case", CASES)
def test_both_ranks_hold_identical_state(ranks, case):
    first, second = ranks[0][case], ranks[1][case]
    tensors = [k for k in first if k != "gathered"]
    assert tensors and tensors == [k for k in second if k != "gathered"]
    different = [k for k in tensors if not torch.equal(first[k], second[k])]
    assert not different, f"{case}: {len(different)} tensors differ between ranks: {different[:5]}"
    if case == "cycle_gan":  # run with --norm batch: SyncBatchNorm statistics are part of the state
        assert any("running_mean" in k for k in tensors)
    if case == "tunit_gan":
        assert "queue" in tensors and any("netC_ema" in k and "running_var" in k for k in tensors)


def test_moco_keys_are_gathered_in_rank_order(ranks):
    """Each push (and the startup queue) holds rank 0's keys, then rank 1's."""
    first, second = ranks[0]["tunit_gan"]["gathered"], ranks[1]["tunit_gan"]["gathered"]
    assert len(first) == len(second) >= 2
    for (mine0, all0), (mine1, all1) in zip(first, second):
        assert torch.equal(all0, torch.cat([mine0, mine1])) and torch.equal(all0, all1)


def test_different_gradient_sets_fail_with_the_parameter_name(ranks):
    for rank, result in enumerate(r["mismatch"] for r in ranks):
        assert f"rank {rank}: 1 parameter(s) have a gradient on some processes only (net.b;" in result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "hung"])
def test_a_lost_rank_stops_the_other_within_the_timeout(train_args, tmp_path, sig):
    timeout = 4
    argv = train_args("--n_epochs", "1000", "--print_freq", "1", "--dist_timeout", str(timeout))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "WORLD_SIZE": "2"}  # fmt: skip
    logs = [(open(tmp_path / f"out{r}", "w"), open(tmp_path / f"err{r}", "w")) for r in range(2)]
    procs = [
        subprocess.Popen([sys.executable, "train.py", *argv], cwd=ROOT, stdout=out, stderr=err,
                         env={**env, "RANK": str(r), "LOCAL_RANK": str(r)})  # fmt: skip
        for r, (out, err) in enumerate(logs)
    ]
    try:
        deadline = time.time() + 120
        while "(epoch" not in (tmp_path / "out0").read_text() and time.time() < deadline:
            assert procs[0].poll() is None, (tmp_path / "err0").read_text()[-2000:]
            time.sleep(0.2)
        os.kill(procs[1].pid, sig)
        lost = time.time()
        code = procs[0].wait(timeout=timeout + 30)
        elapsed = time.time() - lost
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for out, err in logs:
            out.close()
            err.close()
    message = (tmp_path / "err0").read_text()
    assert code == 1 and "another process did not answer" in message, message[-2000:]
    assert f"--dist_timeout {timeout} s" in message and "Traceback" not in message
    assert elapsed < timeout + 15, elapsed  # the timeout plus exiting (loaded CI machines are slow)
