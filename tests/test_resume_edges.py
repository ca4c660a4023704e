"""--continue_train and --pretrained_name at their edges: numbered and damaged checkpoints, a dataset that changed
size, another seed, and a fine-tuning source that is missing or does not fit. Each refusal is one line."""

from __future__ import annotations

import os
import types
import warnings

import pytest

import train
from util.checkpoint import load_checkpoint

TINY_RUN = ("--n_epochs", "1", "--n_epochs_decay", "1")


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def progress(tmp_path, label: str = "latest") -> dict:
    return load_checkpoint(str(tmp_path / "checkpoints" / "exp" / f"{label}.pth"))["progress"]


@pytest.fixture
def two_epochs(train_args, tmp_path):
    """A finished two-epoch run with 1.pth, 2.pth and latest.pth; returns its folder."""
    assert train.main(train_args(*TINY_RUN, "--max_dataset_size", "2", "--save_epoch_freq", "1")) == 0
    return tmp_path / "checkpoints" / "exp"


def test_a_damaged_latest_names_the_other_checkpoints_and_the_epoch_to_resume_from(
    two_epochs, train_args, capsys
):
    latest = two_epochs / "latest.pth"
    latest.write_bytes(latest.read_bytes()[:1000])
    damaged = latest.read_bytes()
    capsys.readouterr()
    assert train.main(train_args(*TINY_RUN, "--max_dataset_size", "2", "--continue_train")) == 1
    err = one_line_error(capsys)
    assert "latest.pth is truncated" in err and "also holds 2.pth, 1.pth" in err
    assert "--continue_train --epoch 2" in err  # the newest one
    assert latest.read_bytes() == damaged  # nothing on disk changed
    assert (
        train.main(train_args(*TINY_RUN, "--max_dataset_size", "2", "--continue_train", "--epoch", "2")) == 0
    )


def test_a_missing_numbered_checkpoint_names_the_existing_ones(two_epochs, train_args, capsys):
    capsys.readouterr()
    assert train.main(train_args(*TINY_RUN, "--continue_train", "--epoch", "7")) == 1
    err = one_line_error(capsys)
    assert (
        "7.pth" in err
        and "also holds 2.pth, latest.pth, 1.pth" in err
        and "--continue_train --epoch 2" in err
    )


def test_resuming_from_a_numbered_checkpoint_says_that_latest_will_be_replaced(
    two_epochs, train_args, tmp_path, capsys
):
    capsys.readouterr()
    args = (*TINY_RUN, "--max_dataset_size", "2", "--n_epochs", "2", "--continue_train", "--epoch", "1")
    assert train.main(train_args(*args)) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "1.pth: epoch 2" in out
    assert "note: resuming from 1.pth: this run's saves replace latest.pth" in out
    assert progress(tmp_path) == {**progress(tmp_path, "1"), "epoch": 4, "global_step": 6}


def stopped_mid_epoch(train_args, size: int = 4, steps: int = 3) -> None:
    """A run stopped at image ``steps`` of epoch 1 of a ``size``-image dataset."""
    assert train.main(train_args(*TINY_RUN, "--max_dataset_size", str(size), "--max_steps", str(steps))) == 0


def test_a_dataset_now_shorter_than_the_saved_position_ends_that_epoch_with_a_note(
    train_args, tmp_path, capsys
):
    """Before: epoch 1 ended with no note (and torch's scheduler-order warning); nothing said images were gone."""
    stopped_mid_epoch(train_args)
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the scheduler-order warning of an epoch without a step
        assert train.main(train_args(*TINY_RUN, "--max_dataset_size", "2", "--continue_train")) == 0
    out = capsys.readouterr().out
    assert "image 3 of epoch 1, but the dataset has 2 items now: epoch 1 ends here" in out
    assert "end of epoch 1" in out and "end of epoch 2" in out
    saved = progress(tmp_path)
    assert (saved["epoch"], saved["global_step"], saved["dataset_size"]) == (3, 5, 2)  # epoch 2 fully trained


def test_a_dataset_that_grew_mid_epoch_is_noted(train_args, capsys):
    stopped_mid_epoch(train_args)
    capsys.readouterr()
    assert train.main(train_args(*TINY_RUN, "--max_dataset_size", "8", "--continue_train")) == 0
    out = capsys.readouterr().out
    assert "note: the dataset has 8 items now, 4 when the checkpoint was written: the rest of epoch 1" in out


def test_another_seed_mid_epoch_is_noted_and_an_unchanged_command_is_not(train_args, capsys):
    stopped_mid_epoch(train_args, steps=1)
    capsys.readouterr()
    assert (
        train.main(train_args(*TINY_RUN, "--max_dataset_size", "4", "--max_steps", "2", "--continue_train"))
        == 0
    )
    assert "note:" not in capsys.readouterr().out
    assert (
        train.main(train_args(*TINY_RUN, "--max_dataset_size", "4", "--continue_train", "--seed", "1")) == 0
    )
    out = capsys.readouterr().out
    assert "note: --seed 0 -> 1 changes the data order" in out and "the rest of epoch 1 follows" in out


def test_another_serial_batches_at_an_epoch_boundary_is_noted():
    from util.resume_notes import data_order_notes

    opt = types.SimpleNamespace(seed=0, serial_batches=False)
    notes = data_order_notes({"seed": 0, "serial_batches": True}, 4, opt, 4, epoch=2, images=0)
    assert notes == [
        "note: --serial_batches True -> False changes the data order and augmentation: epochs from 2 on differ "
        "from the original run's"
    ]
    assert data_order_notes({"seed": 0, "serial_batches": False}, 4, opt, 4, epoch=2, images=0) == []


def test_pretrained_from_a_missing_experiment_is_one_line(train_args, capsys):
    assert train.main(train_args(*TINY_RUN, "--max_steps", "1", "--pretrained_name", "nosuch")) == 1
    err = one_line_error(capsys)
    assert (
        err.startswith("error: --pretrained_name nosuch: no experiment folder") and "checkpoints_dir" in err
    )


def test_pretrained_from_another_architecture_names_the_options(train_args, tmp_path, capsys):
    assert train.main(train_args(*TINY_RUN, "--max_steps", "1", "--ngf", "16", name="wide")) == 0
    capsys.readouterr()
    assert train.main(train_args(*TINY_RUN, "--max_steps", "1", "--pretrained_name", "wide")) == 1
    err = one_line_error(capsys)
    assert "--pretrained_name wide: its networks were built with --ngf 16 (now 8)" in err
    assert not os.path.exists(tmp_path / "checkpoints" / "exp")  # the refused run left no folder


def test_pretrained_from_another_model_points_at_pretrained_name(train_args, capsys):
    assert train.main(train_args(*TINY_RUN, "--max_steps", "1", name="cut_run", model="cut")) == 0
    capsys.readouterr()
    assert train.main(train_args(*TINY_RUN, "--max_steps", "1", "--pretrained_name", "cut_run")) == 1
    err = one_line_error(capsys)
    assert (
        "written by model 'cut'" in err
        and "another --pretrained_name" in err
        and "--name" not in err.replace("--pretrained_name", "")
    )
