"""What test.py takes from our checkpoints besides the architecture: the training folder (--dataroot) and the
preprocessing (--crop_size, --preprocess, U-GAT-IT's --img_size), as plain defaults; and which tools make no
synthetic dataset in the working directory (export.py, test.py --input_dir)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import export as export_script
import test as test_script
import train
from models.networks import build_generator
from options import TestOptions
from tests.conftest import TINY
from util.metrics import rescore

ONE_EPOCH = ["--max_dataset_size", "4", "--n_epochs", "1", "--n_epochs_decay", "0"]
COMMON_TEST = ["--gpu_ids", "-1", "--num_threads", "0", "--no_progress"]
UGATIT_TINY = ["--model", "ugatit", "--ch", "4", "--img_size", "96", "--iteration", "1", "--gpu_ids", "-1",
               "--display_id", "0", "--num_threads", "0", "--no_progress", "--max_dataset_size", "4"]  # fmt: skip


def make_real_root(folder) -> str:
    """A real (not synthetic) dataset: 48 x 40 PNGs named after their domain, 3 per folder."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for letter, stem in (("A", "horse"), ("B", "zebra")):
            os.makedirs(folder / f"{split}{letter}")
            for i in range(3):
                pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{split}{letter}" / f"{stem}{i}.png")
    return str(folder)


def parse_test(ck, name: str, *extra: str):
    """test.py's options for experiment ``name`` of ``ck``, with only ``extra`` given besides."""
    return TestOptions().parse(
        ["--name", name, "--checkpoints_dir", str(ck), *COMMON_TEST, *extra], save=False
    )


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """cycle_gan trained on a real folder with --preprocess scale_width_and_crop --load_size 40 --crop_size 32
    (not the defaults)."""
    root = make_real_root(tmp_path_factory.mktemp("real"))
    ck = tmp_path_factory.mktemp("ck")
    argv = ["--dataroot", root, "--name", "r", "--checkpoints_dir", str(ck), *TINY, *ONE_EPOCH,
            "--preprocess", "scale_width_and_crop", "--load_size", "40"]  # fmt: skip
    assert train.main(argv) == 0
    return root, ck


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """A fresh working directory: a synthetic dataset made by mistake would appear in it."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_test_py_translates_the_training_folder_at_the_training_size(real_run, cwd, capsys):
    root, ck = real_run
    argv = ["--name", "r", "--checkpoints_dir", str(ck), "--results_dir", str(cwd / "results"), *COMMON_TEST]
    assert test_script.main(argv) == 0
    path = ck / "r" / "latest.pth"
    note = f"note: --dataroot {root} --crop_size 32 --load_size 40 --preprocess scale_width_and_crop (from {path})"
    assert note in capsys.readouterr().out.splitlines()
    images = cwd / "results" / "r" / "test_latest" / "images"
    assert sorted(os.listdir(images))[:3] == ["horse0_fake_B.png", "horse0_real_A.png", "horse0_rec_A.png"]
    assert Image.open(images / "zebra2_fake_A.png").size == (32, 32)
    assert not (cwd / "datasets").exists()


def test_preprocessing_defaults_yield_to_explicit_flags(real_run, cwd):
    root, ck = real_run
    opt = parse_test(ck, "r")
    assert (opt.dataroot, opt.synthetic_data) == (root, False)
    # under scale_width the load size is the training width (else it follows the crop, as in CycleGAN)
    assert (opt.crop_size, opt.load_size, opt.preprocess) == (32, 40, "scale_width_and_crop")
    opt = parse_test(ck, "r", "--crop_size", "48", "--preprocess", "resize_and_crop")  # no conflict
    assert (opt.crop_size, opt.load_size, opt.preprocess) == (48, 48, "resize_and_crop")
    opt = parse_test(ck, "r", "--load_size", "36")
    assert (opt.crop_size, opt.load_size) == (32, 36)
    other = make_real_root(cwd / "other")
    assert parse_test(ck, "r", "--dataroot", other).dataroot == other


def test_a_training_folder_that_is_gone_is_one_line(real_run, tmp_path, cwd, capsys):
    _, ck = real_run
    gone = make_real_root(tmp_path / "gone")
    argv = ["--dataroot", gone, "--name", "g", "--checkpoints_dir", str(ck), *TINY, *ONE_EPOCH]
    assert train.main(argv) == 0
    shutil.rmtree(gone)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        test_script.main(["--name", "g", "--checkpoints_dir", str(ck), *COMMON_TEST])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1
    assert f"--dataroot {gone} (from {ck / 'g' / 'latest.pth'}) no longer exists" in err[0]
    assert "pass --dataroot DATA or --input_dir FOLDER" in err[0]
    plain = cwd / "plain"
    plain.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(plain / "x.png")
    extra = ["--input_dir", str(plain), "--test_direction", "AtoB", "--output_path", str(cwd / "out"),
             "--results_dir", str(cwd / "res")]  # fmt: skip
    assert test_script.main(["--name", "g", "--checkpoints_dir", str(ck), *COMMON_TEST, *extra]) == 0
    assert os.listdir(cwd / "out") == ["x.png"]
    assert rescore.main(["--name", "g", "--checkpoints_dir", str(ck), "--gpu_ids", "-1"]) == 1
    assert f"error: --dataroot {gone} (the training data of g) no longer exists" in capsys.readouterr().err
    assert not (cwd / "datasets").exists()


def test_export_reads_no_data_and_makes_none(real_run, cwd, capsys):
    root, ck = real_run
    out = cwd / "export"
    argv = ["--name", "r", "--checkpoints_dir", str(ck), "--gpu_ids", "-1", "--format", "torchscript",
            "--export_dir", str(out)]  # fmt: skip
    assert export_script.main(argv) == 0
    assert not (cwd / "datasets").exists()
    assert sorted(os.listdir(out)) == ["netG_A_latest.pt", "netG_B_latest.pt"]
    assert "input (2, 3, 32, 32)" in capsys.readouterr().out  # probed at the training crop size
    opt = export_script.ExportOptions().parse(argv[:4], save=False)
    assert (opt.dataroot, opt.synthetic_data, opt.crop_size) == ("", False, 32)


def test_synthetic_and_official_checkpoints_keep_the_synthetic_data(tmp_path, cwd, capsys):
    ck = tmp_path / "ck"
    assert train.main(["--name", "s", "--checkpoints_dir", str(ck), *TINY, *ONE_EPOCH]) == 0  # no --dataroot
    opt = parse_test(ck, "s")
    assert (opt.synthetic_data, opt.dataroot) == (True, os.path.join("datasets", "synthetic_unaligned"))
    assert (opt.crop_size, opt.load_size) == (32, 32)  # the preprocessing still comes from the checkpoint
    assert "--dataroot" not in capsys.readouterr().out
    official = ck / "official"
    official.mkdir()
    for label in ("G_A", "G_B"):
        net = build_generator("resnet_9blocks", 3, 3, 8, "instance", False, "normal", 0.02)
        torch.save(net.state_dict(), official / f"latest_net_{label}.pth")
    opt = parse_test(ck, "official", "--ngf", "8")
    assert (opt.synthetic_data, opt.crop_size, opt.preprocess) == (True, 256, "resize_and_crop")


@pytest.mark.parametrize("light", ["True", "False"])
def test_ugatit_size_comes_from_the_checkpoint(light, tmp_path, cwd, capsys):
    root = make_real_root(tmp_path / "data")
    ck = tmp_path / "ck"
    assert train.main([*UGATIT_TINY, "--light", light, "--dataroot", root, "--name", "u",
                       "--checkpoints_dir", str(ck)]) == 0  # fmt: skip
    opt = parse_test(ck, "u")
    assert (opt.model, opt.crop_size, opt.load_size) == ("ugatit", 96, 96)  # not resized to 256, then cropped
    if light == "True":  # --img_size is a plain default here: the flag wins
        opt = parse_test(ck, "u", "--img_size", "64")
        assert (opt.crop_size, opt.load_size) == (64, 64)
        return
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # the full generator is built for one size: still a conflict
        parse_test(ck, "u", "--img_size", "64")
    assert exc.value.code == 2 and "--crop_size 64 (checkpoint: 96)" in capsys.readouterr().err
