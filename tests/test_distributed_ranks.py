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
    return torch.load(out / "rank0.pt", weights_only=True), torch.load(out / "rank1.pt", weights_only=True)


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


def launch_pair(argv: list[str], logs) -> list[subprocess.Popen]:
    """Two train.py processes joined by hand (no torchrun: its agent would end the survivor itself)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "WORLD_SIZE": "2"}  # fmt: skip
    procs = []
    for r in range(2):
        with open(logs / f"out{r}", "w") as out, open(logs / f"err{r}", "w") as err:
            procs.append(subprocess.Popen([sys.executable, "train.py", *argv], cwd=ROOT, stdout=out, stderr=err,
                                          env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}))  # fmt: skip
    return procs


def wait_until_training(procs: list[subprocess.Popen], logs, deadline: float) -> None:
    while "(epoch" not in (logs / "out0").read_text() and time.time() < deadline:
        assert procs[0].poll() is None, (logs / "err0").read_text()[-2000:]
        time.sleep(0.2)


def wait_all(procs: list[subprocess.Popen], timeout: float) -> list[int | None]:
    """Exit codes (None: still running after ``timeout`` s, then killed)."""
    deadline = time.time() + timeout
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(deadline - time.time(), 0.1)))
        except subprocess.TimeoutExpired:
            codes.append(None)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return codes


TIMEOUT = 4  # --dist_timeout of the lost-rank runs


def test_lost_and_signalled_ranks(train_args, tmp_path):
    """Three 2-process runs side by side (start-up dominates: run it once): rank 1 is killed (SIGKILL), hung
    (SIGSTOP) or asked to stop (SIGTERM). A lost rank stops rank 0 within ``--dist_timeout`` with one line; a
    signal to one rank stops both at the same step with a checkpoint (without the agreement the signalled
    rank would leave and the other would wait in its next all-reduce)."""
    runs = {}
    for name, timeout in (("killed", TIMEOUT), ("hung", TIMEOUT), ("sigterm", 30)):
        logs = tmp_path / name
        logs.mkdir()
        argv = train_args("--n_epochs", "1000", "--print_freq", "1", "--dist_timeout", str(timeout), name=name)
        runs[name] = (logs, argv, launch_pair(argv, logs))
    deadline = time.time() + 180
    try:
        for logs, _, procs in runs.values():
            wait_until_training(procs, logs, deadline)
        for name, sig in (("killed", signal.SIGKILL), ("hung", signal.SIGSTOP), ("sigterm", signal.SIGTERM)):
            os.kill(runs[name][2][1].pid, sig)
        lost = time.time()
        for name in ("killed", "hung"):
            logs, _, procs = runs[name]
            code = wait_all(procs[:1], TIMEOUT + 30)[0]
            elapsed = time.time() - lost
            message = (logs / "err0").read_text()
            assert code == 1 and "another process did not answer" in message, (name, message[-2000:])
            assert f"--dist_timeout {TIMEOUT} s" in message and "Traceback" not in message, message
            assert elapsed < TIMEOUT + 15, (name, elapsed)  # the timeout plus exiting, on a loaded machine
        logs, argv, procs = runs["sigterm"]
        assert wait_all(procs, 60) == [0, 0], (logs / "err0").read_text()[-2000:]
    finally:
        for _, _, procs in runs.values():
            wait_all(procs, 0)
    assert "interrupted at epoch" in (logs / "out0").read_text()
    ckpt = torch.load(os.path.join(argv[argv.index("--checkpoints_dir") + 1], "sigterm", "latest.pth"),
                      weights_only=True)  # fmt: skip
    assert ckpt["progress"]["world_size"] == 2


def test_every_collective_of_a_step_stops_with_one_line_when_a_peer_hangs(tmp_path):
    """Whichever collective rank 0 is waiting in when rank 1 stops answering (the loss check of a print step,
    the state gather of a save, the gradient check, MoCo's key gather, SyncBatchNorm), the wait ends after
    ``--dist_timeout`` as :class:`PeerLostError` (one line in train.py), never a backend traceback."""
    import json

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "WORLD_SIZE": "2"}  # fmt: skip
    out = tmp_path / "results.json"
    worker = os.path.join(ROOT, "tests", "_lost_peer_worker.py")
    procs = [subprocess.Popen([sys.executable, worker, str(out), "2"], cwd=ROOT, env={**env, "RANK": str(r)})
             for r in range(2)]  # fmt: skip
    codes = wait_all(procs[:1], 120)
    procs[1].kill()
    procs[1].wait()
    assert codes == [0]
    results = json.loads(out.read_text())
    assert len(results) == 5
    escaped = {k: v for k, v in results.items() if not v.startswith("PeerLostError: rank 0: another process")}
    assert not escaped, escaped
