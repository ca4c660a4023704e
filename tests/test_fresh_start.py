"""Starting a run: a repeated command never overwrites checkpoints, a refused start leaves no folder behind,
and the default --gpu_ids says nothing on a machine without CUDA."""

from __future__ import annotations

import json
import os

import pytest
import torch

import train
from util.metrics.evaluate import PeriodicEvaluator

SHORT = ("--max_steps", "1", "--max_dataset_size", "4")


def folder_state(folder) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in os.listdir(folder) if (folder / name).is_file()}


def test_a_fresh_run_over_checkpoints_is_refused_before_anything_is_written(train_args, tmp_path, capsys):
    assert train.main(train_args(*SHORT)) == 0
    folder = tmp_path / "checkpoints" / "exp"
    before = folder_state(folder)
    capsys.readouterr()
    assert train.main(train_args(*SHORT, "--ngf", "16")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(folder) in err[0] and "latest.pth" in err[0], err
    assert "--continue_train" in err[0] and "--name" in err[0] and "--overwrite" in err[0]
    assert folder_state(folder) == before  # checkpoint, opt.txt and loss_log.txt untouched
    assert train.main(train_args(*SHORT, "--dry_run")) == 0  # a dry run writes nothing: never refused


def test_a_folder_without_checkpoints_is_reused(train_args, tmp_path):
    """A run that failed before its first save left options and logs only: nothing to lose."""
    folder = tmp_path / "checkpoints" / "exp"
    folder.mkdir(parents=True)
    (folder / "opt.txt").write_text("old options\n")
    (folder / "loss_log.txt").write_text("old log\n")
    assert train.main(train_args(*SHORT)) == 0
    assert (folder / "latest.pth").is_file()


def test_overwrite_starts_over_with_a_fresh_evaluation_history(train_args, tmp_path, capsys):
    assert train.main(train_args(*SHORT, "--save_latest_freq", "1", "--save_by_iter")) == 0
    folder = tmp_path / "checkpoints" / "exp"
    old_history = [{"epoch": 1, "step": 1, "fid": 0.0}]  # unbeatable: would block every new best.pth
    (folder / "eval_history.json").write_text(json.dumps(old_history))
    old_latest = (folder / "latest.pth").read_bytes()
    assert train.main(train_args(*SHORT, "--overwrite", "--seed", "1")) == 0
    assert (folder / "latest.pth").read_bytes() != old_latest
    assert not (folder / "iter_1.pth").exists()  # the old run's numbered file (this run saved no iter_1.pth)
    assert not (folder / "eval_history.json").exists()
    assert json.loads((folder / "eval_history.json.old").read_text()) == old_history
    out = capsys.readouterr().out
    assert "eval_history.json.old" in out and "--overwrite: removed the previous run's iter_1.pth" in out


def test_overwrite_and_continue_train_together_are_refused(train_args, capsys):
    assert train.main(train_args(*SHORT, "--overwrite", "--continue_train")) == 1
    assert "give only one" in capsys.readouterr().err


def test_a_fresh_evaluator_ignores_an_earlier_history(tmp_path):
    class Opt:
        eval_freq = 10

    (tmp_path / "eval_history.json").write_text(json.dumps([{"step": 10, "fid": 1.5}]))
    assert PeriodicEvaluator(Opt(), str(tmp_path)).best == 1.5  # a resumed run compares against its own past
    assert PeriodicEvaluator(Opt(), str(tmp_path), resume=False).best == float("inf")


@pytest.mark.parametrize(
    "extra, message",
    [(("--dataroot", "/nonexist"), "--dataroot /nonexist"), (("--continue_train",), "checkpoint not found")],
)
def test_a_refused_start_leaves_no_folder_it_created(train_args, tmp_path, capsys, extra, message):
    assert train.main([*train_args(*SHORT), *extra]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()  # neither checkpoints_dir nor checkpoints_dir/exp
    (tmp_path / "checkpoints" / "other").mkdir(parents=True)  # folders that were there stay
    assert train.main([*train_args(*SHORT), *extra]) == 1
    assert os.listdir(tmp_path / "checkpoints") == ["other"]


def without_gpu_ids(argv: list[str]) -> list[str]:
    i = argv.index("--gpu_ids")
    return argv[:i] + argv[i + 2 :]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU fallback needs a machine without CUDA")
def test_the_cpu_fallback_warns_only_for_an_explicit_gpu_ids(train_args, capsys):
    assert train.main(without_gpu_ids(train_args(*SHORT, name="default"))) == 0
    assert "asked for CUDA" not in capsys.readouterr().out
    assert train.main(without_gpu_ids(train_args(*SHORT, "--gpu_ids", "0", name="explicit"))) == 0
    assert "warning: --gpu_ids 0 asked for CUDA, which is not available" in capsys.readouterr().out
