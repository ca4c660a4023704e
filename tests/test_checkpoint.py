"""Checkpoint files and the run's folder: poisoned states never written, bad files named, one run per folder."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import train
from data.samplers import EpochSampler
from util import checkpoint as ckpt_io
from util.nonfinite import LossWatch, NonFiniteLossError
from util.run_lock import RunLock, RunLockedError


def expr(tmp_path, name: str = "exp") -> str:
    return os.path.join(tmp_path, "checkpoints", name)


def load_latest(tmp_path, name: str = "exp") -> dict:
    return ckpt_io.load_checkpoint(os.path.join(expr(tmp_path, name), "latest.pth"))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------- non-finite states
def test_nan_weights_never_reach_a_checkpoint(train_args, tmp_path, capsys):
    """The issue's repro: weights turn NaN in an optimiser step right after a save; that save must be the last."""
    argv = train_args("--n_epochs", "2", "--n_epochs_decay", "1", "--lr", "1e8", "--save_latest_freq", "1")
    assert train.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "became non-finite" in err and "nothing was saved" in err, err
    ckpt = load_latest(tmp_path)
    assert f"latest.pth from step {ckpt['progress']['global_step']} is kept" in err
    state = [ckpt["networks"], ckpt["optimizers"], ckpt["model_state"]]
    bad, total = ckpt_io.count_non_finite(state)
    assert bad == 0 and total > 100


def test_nan_before_any_save_says_no_checkpoint_was_written(train_args, tmp_path, capsys):
    argv = train_args("--lr", "1e8", "--print_freq", "1", "--max_dataset_size", "4", "--n_epochs", "3")
    assert train.main(argv) == 1
    err = capsys.readouterr().err
    assert "no checkpoint was written by this run" in err and "non-finite" in err
    assert not os.path.exists(os.path.join(expr(tmp_path), "latest.pth"))


def test_count_non_finite_flags_nan_and_inf_but_not_large_finite_values():
    tree = {"a": torch.full((3,), 3e38), "b": [torch.ones(2, dtype=torch.float16), torch.arange(3)]}
    assert ckpt_io.count_non_finite(tree) == (0, 2)
    tree["c"] = (torch.tensor([1.0, float("nan")]), torch.tensor([float("-inf")], dtype=torch.bfloat16))
    assert ckpt_io.count_non_finite(tree) == (2, 4)


class HostReads(TorchDispatchMode):
    """Counts operations that copy a value to the host (``.item()``, ``bool()``, ``int()`` of a tensor)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_loss_watch_reads_the_device_only_when_asked():
    watch = LossWatch(torch.device("cpu"))
    with HostReads() as reads:
        for step in range(1, 6):
            loss = torch.tensor(float("nan") if step == 3 else 1.0)
            watch.observe({"G": torch.tensor(1.0), "D": loss}, step)
    assert reads.count == 0
    with pytest.raises(NonFiniteLossError, match=r"\(D\) first at step 3"):
        watch.raise_if_bad()
    fine = LossWatch(torch.device("cpu"))
    fine.observe({"G": torch.tensor(2.0)}, 1)
    fine.raise_if_bad()


# ---------------------------------------------------------------- bad checkpoint files
def test_unreadable_checkpoints_are_named_in_one_line(tmp_path):
    good = tmp_path / "good.pth"
    ckpt_io.atomic_save({"format": ckpt_io.FORMAT, "w": torch.zeros(1000)}, str(good))
    data = good.read_bytes()
    cases = {
        "empty.pth": (b"", "is empty (0 bytes)"),
        "truncated.pth": (
            data[: int(len(data) * 0.99)],
            f"is truncated or damaged ({int(len(data) * 0.99)} bytes)",
        ),
        "half.pth": (data[: len(data) // 2], "is truncated or damaged"),
        "text.pth": (b"hello, not a checkpoint\n" * 10, "is not a checkpoint of this framework"),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ckpt_io.CheckpointError) as info:
            ckpt_io.load_checkpoint(str(tmp_path / name))
        assert expected in str(info.value) and "\n" not in str(info.value), (name, str(info.value))
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ckpt_io.CheckpointError, match="not a checkpoint of this framework"):
        ckpt_io.load_checkpoint(str(tmp_path / "other.pth"))
    torch.save({"f": os.getcwd}, tmp_path / "code.pth")  # a pickled callable: refused, never run
    with pytest.raises(ckpt_io.CheckpointError, match="objects other than tensors"):
        ckpt_io.load_checkpoint(str(tmp_path / "code.pth"))


def test_resume_with_other_architecture_options_lists_them_one_per_line(train_args, tmp_path, capsys):
    assert train.main(train_args("--max_steps", "1")) == 0
    capsys.readouterr()
    assert train.main(train_args("--continue_train", "--ngf", "16", "--netD", "n_layers")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    joined = "\n".join(err)
    assert "  --ngf: checkpoint 8, now 16" in err and "  --netD: checkpoint 'basic', now 'n_layers'" in err, (
        joined
    )
    assert len(err) <= 5 and not any("state_dict" in line for line in err), err


def folder_contents(folder: str) -> dict[str, bytes]:
    files = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder)] = f.read()
    return files


def test_refused_resume_writes_nothing(train_args, tmp_path):
    assert train.main(train_args("--max_steps", "1")) == 0
    before = folder_contents(expr(tmp_path))
    assert {"opt.txt", "train_opt.json", "loss_log.txt", "latest.pth"} <= set(before)
    assert train.main(train_args("--continue_train", "--ngf", "16")) == 1
    assert folder_contents(expr(tmp_path)) == before


# ---------------------------------------------------------------- writing
def test_disk_full_keeps_the_previous_checkpoint_and_says_so_in_one_line(
    train_args, tmp_path, monkeypatch, capsys
):
    real_save, calls = torch.save, []

    def full_disk(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    assert train.main(train_args("--save_latest_freq", "2", "--max_dataset_size", "6")) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "could not write checkpoint" in err and "latest.pth" in err and "No space left" in err
    assert "the previous file is intact" in err
    assert load_latest(tmp_path)["progress"]["global_step"] == 2
    assert not [f for f in os.listdir(expr(tmp_path)) if ".tmp" in f]


def test_orphan_temp_files_are_removed_at_start(train_args, tmp_path, capsys):
    folder = expr(tmp_path)
    os.makedirs(folder)
    orphan = os.path.join(folder, f"latest.pth.tmp{dead_pid()}")
    open(orphan, "wb").write(b"x" * 100)
    assert train.main(train_args("--max_steps", "1")) == 0
    assert not os.path.exists(orphan) and "removed 1 temp file" in capsys.readouterr().out


def test_keep_last_keeps_the_newest_numbered_checkpoints(train_args, tmp_path):
    argv = train_args(
        "--n_epochs", "4", "--n_epochs_decay", "0", "--max_dataset_size", "1", "--save_epoch_freq", "1",
        "--save_latest_freq", "1", "--save_by_iter", "--keep_last", "2",
    )  # fmt: skip
    assert train.main(argv) == 0
    names = sorted(os.listdir(expr(tmp_path)))
    assert [n for n in names if n.endswith(".pth")] == ["4.pth", "iter_4.pth", "latest.pth"], names


# ---------------------------------------------------------------- run lock
def test_a_second_run_in_the_same_folder_is_refused(train_args, tmp_path, capsys):
    folder = expr(tmp_path)
    with RunLock(folder):
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            RunLock(folder).acquire()
        assert train.main(train_args("--max_steps", "1")) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and folder in err and f"pid {os.getpid()}" in err
        assert sorted(os.listdir(folder)) == ["run.lock"]  # nothing else was written
    assert not os.path.exists(os.path.join(folder, "run.lock"))


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    folder = str(tmp_path / "exp")
    os.makedirs(folder)
    import json
    import socket

    with open(os.path.join(folder, "run.lock"), "w") as f:
        json.dump({"pid": dead_pid(), "host": socket.gethostname()}, f)
    with RunLock(folder) as lock:
        assert lock.read_owner()["pid"] == os.getpid()
    assert "no longer exists; taking it over" in capsys.readouterr().out
    with open(os.path.join(folder, "run.lock"), "w") as f:
        json.dump({"pid": 1, "host": "another-host"}, f)
    with pytest.raises(RunLockedError, match="on host another-host"):
        RunLock(folder).acquire()


def test_a_stale_lock_found_by_two_runs_is_taken_over_by_one(tmp_path):
    """The second run read the same stale lock, but the first already replaced it: its lock stays."""
    import json
    import socket

    folder = str(tmp_path / "exp")
    os.makedirs(folder)
    with open(os.path.join(folder, "run.lock"), "w") as f:
        json.dump({"pid": dead_pid(), "host": socket.gethostname()}, f)
    late = RunLock(folder)
    stale = late.read_owner()
    with RunLock(folder) as first:
        assert late._remove_stale(stale) is False
        assert first.read_owner()["pid"] == os.getpid() and os.listdir(folder) == ["run.lock"]


def test_concurrent_starts_on_a_stale_lock_let_exactly_one_run(tmp_path):
    import json
    import socket

    folder = str(tmp_path / "exp")
    os.makedirs(folder)
    with open(os.path.join(folder, "run.lock"), "w") as f:
        json.dump({"pid": dead_pid(), "host": socket.gethostname()}, f)
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})\n"
        "from util.run_lock import RunLock, RunLockedError\n"
        "start = float(sys.argv[1])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "try:\n"
        f"    with RunLock({folder!r}):\n"
        "        print('held', flush=True)\n"
        "        time.sleep(1.5)\n"
        "except RunLockedError:\n"
        "    print('refused')\n"
    )
    start = str(time.time() + 1.5)  # every process past its imports, then all at once
    procs = [subprocess.Popen([sys.executable, "-c", code, start], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]  # fmt: skip
    outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert sorted(o[-1] for o in outputs) == ["held", "refused", "refused", "refused"], outputs
    assert os.listdir(folder) == []


# ---------------------------------------------------------------- RNG and data position
def test_cuda_rng_states_restore_where_they_fit(monkeypatch):
    """A file from 4 visible GPUs resumes with 1; a per-process state goes to the current device."""
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: calls.append(device))
    base = ckpt_io.rng_state()
    ckpt_io.set_rng_state({**base, "cuda": [torch.zeros(8, dtype=torch.uint8)] * 4})
    assert calls == [0]
    calls.clear()
    ckpt_io.set_rng_state({**base, "cuda": [torch.zeros(8, dtype=torch.uint8)], "cuda_device": 3})
    assert calls == [0]


@pytest.mark.parametrize(("before", "after"), [((1, 2), (2, 1)), ((3, 1), (2, 2)), ((2, 2), (1, 3))])
def test_epoch_position_in_images_survives_other_batch_and_world_sizes(before, after):
    """k steps of (batch, processes) then the rest with other sizes: every image of the epoch exactly once."""
    n, (b0, w0), (_, w1) = 11, before, after
    start = 2 * b0 * w0  # two steps before the interruption
    seen = []
    for world, skip, taken in ((w0, 0, 2 * b0), (w1, start, None)):
        for rank in range(world):
            sampler = EpochSampler(n, shuffle=True, seed=4, rank=rank, world_size=world)
            sampler.set_epoch(2)
            sampler.set_start(skip)
            seen += list(sampler)[:taken]
    assert sorted(set(seen)) == list(range(n))
    assert len(seen) - n < w1  # only the wrap-around padding of the last round repeats
