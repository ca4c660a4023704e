"""Option parsing, the model registry and parse-time errors."""

from __future__ import annotations

import json
import os

import pytest

import models
from options import TestOptions, TrainOptions
from tests.conftest import TINY


def parse_error(capsys, argv: list[str], options=TrainOptions) -> str:
    with pytest.raises(SystemExit) as exc:
        options().parse(argv, save=False)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_registry_lists_and_finds_models():
    names = models.model_names()
    assert "cycle_gan" in names and "test" in names
    assert models.find_model_class("cycle_gan").__name__ == "CycleGANModel"
    with pytest.raises(ValueError, match="valid models: .*cycle_gan"):
        models.find_model_class("pix2pixhd")


def test_unknown_model_is_rejected_with_the_valid_choices(capsys, synthetic_root):
    err = parse_error(capsys, ["--model", "nope", "--dataroot", synthetic_root])
    assert "invalid choice: 'nope'" in err and "cycle_gan" in err


@pytest.mark.parametrize(
    "flag,value,valid",
    [
        ("--dataset_mode", "weird", "unaligned"),
        ("--netG", "resnet_99blocks", "resnet_9blocks"),
        ("--preprocess", "zoom", "scale_width_and_crop"),
        ("--gan_mode", "lsq", "wgangp"),
        ("--lr_policy", "exp", "cosine"),
        ("--amp", "fp8", "bf16"),
    ],
)
def test_unknown_choice_is_rejected_at_parse_time(capsys, synthetic_root, flag, value, valid):
    err = parse_error(capsys, ["--dataroot", synthetic_root, flag, value])
    assert f"invalid choice: '{value}'" in err and valid in err


def test_unknown_flag_is_rejected(capsys, synthetic_root):
    err = parse_error(capsys, ["--dataroot", synthetic_root, "--lambda_AA", "3"])
    assert "unrecognized arguments: --lambda_AA" in err


def test_defaults_match_the_cyclegan_codebase(synthetic_root):
    opt = TrainOptions().parse(["--dataroot", synthetic_root], save=False)
    assert (opt.ngf, opt.ndf, opt.netG, opt.netD, opt.norm, opt.init_type) == (
        64,
        64,
        "resnet_9blocks",
        "basic",
        "instance",
        "normal",
    )
    assert (opt.load_size, opt.crop_size, opt.batch_size, opt.lr, opt.beta1) == (286, 256, 1, 0.0002, 0.5)
    assert (opt.n_epochs, opt.n_epochs_decay, opt.gan_mode, opt.pool_size) == (100, 100, "lsgan", 50)
    assert (opt.lambda_A, opt.lambda_B, opt.lambda_identity, opt.no_dropout) == (10.0, 10.0, 0.5, True)
    test_opt = TestOptions().parse(["--dataroot", synthetic_root], save=False)
    assert test_opt.load_size == test_opt.crop_size == 256 and test_opt.num_test == 0


def test_options_are_read_only_and_saved(train_args, tmp_path):
    opt = TrainOptions().parse(train_args("--lr", "0.001"))
    with pytest.raises(AttributeError, match="read-only"):
        opt.lr = 0.1
    expr = os.path.join(opt.checkpoints_dir, opt.name)
    text = open(os.path.join(expr, "opt.txt")).read()
    assert "lr: 0.001" in text and "[default: 0.0002]" in text
    saved = json.load(open(os.path.join(expr, "train_opt.json")))
    assert saved["lr"] == 0.001 and saved["model"] == "cycle_gan" and saved["gpu_ids"] == []


def test_legacy_boolean_flags_accept_both_spellings(synthetic_root):
    bare = TrainOptions().parse(["--dataroot", synthetic_root, "--no_flip"], save=False)
    explicit = TrainOptions().parse(["--dataroot", synthetic_root, "--no_flip", "False"], save=False)
    assert bare.no_flip is True and explicit.no_flip is False


def test_missing_dataroot_uses_the_synthetic_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opt = TrainOptions().parse(["--gpu_ids", "-1"], save=False)
    assert opt.synthetic_data and os.path.isdir(os.path.join(opt.dataroot, "trainA"))


def test_dry_run_prints_exact_parameter_counts(capsys, synthetic_root, tmp_path):
    import train

    argv = [
        "--dataroot",
        synthetic_root,
        "--checkpoints_dir",
        str(tmp_path),
        "--gpu_ids",
        "-1",
        "--dry_run",
        "--display_id",
        "0",
    ]
    assert train.main(argv) == 0
    out = capsys.readouterr().out
    for net, count in [("G_A", 11378179), ("G_B", 11378179), ("D_A", 2764737), ("D_B", 2764737)]:
        assert f"[Network {net}] Total number of parameters: {count}" in out
    assert not os.path.exists(tmp_path / "experiment_name" / "latest.pth")


def test_identity_loss_needs_equal_channels(capsys, synthetic_root):
    err = parse_error(capsys, ["--dataroot", synthetic_root, "--input_nc", "1", *TINY])
    assert "--lambda_identity" in err
