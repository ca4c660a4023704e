"""test.py after a training run: architecture from the checkpoint, training flags ignored, --model test on our
checkpoints, tiny images padded, TUNIT on class folders, one-line weight mismatches, the final training line."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train
from models.networks import build_generator
from options import TestOptions
from options.checkpoint_options import architecture_from_checkpoint
from tests.conftest import TINY

TUNIT_NETS = ["--output_k", "2", "--sty_dim", "16", "--tunit_g_nf", "8", "--tunit_g_nf_mlp", "32",
              "--tunit_c_widths", "4,M,8,M,16,16,M,32,32,M,32,32,M"]  # fmt: skip
COMMON_TEST = ["--gpu_ids", "-1", "--num_threads", "0", "--no_progress"]


def run_test(ckpt, results, *extra, name="cg", model="cycle_gan", dataroot=None) -> int:
    argv = ["--name", name, "--checkpoints_dir", str(ckpt), "--results_dir", str(results), *COMMON_TEST, *extra]
    argv = (["--model", model] if model else []) + argv
    return test_script.main(argv + (["--dataroot", dataroot] if dataroot else []))


def images_in(results, name="cg") -> list[str]:
    return sorted(os.listdir(results / name / "test_latest" / "images"))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, synthetic_root):
    """A cycle_gan run at --ngf 8 (not the default 64): test.py must find that in the checkpoint."""
    folder = tmp_path_factory.mktemp("ckpt")
    argv = ["--model", "cycle_gan", "--dataroot", synthetic_root, "--name", "cg", "--checkpoints_dir", str(folder),
            *TINY, "--max_steps", "2"]  # fmt: skip
    assert train.main(argv) == 0
    return folder


def test_architecture_comes_from_the_checkpoint(ckpt, synthetic_root, tmp_path, capsys):
    arch = architecture_from_checkpoint(str(ckpt / "cg" / "latest.pth"))
    assert arch["ngf"] == 8 and arch["netG"] == "resnet_9blocks"
    assert run_test(ckpt, tmp_path, dataroot=synthetic_root) == 0  # no --ngf given
    assert len(images_in(tmp_path)) == 2 * 3 * 3  # 3 inputs per direction, 3 visuals each
    opt = TestOptions().parse(["--name", "cg", "--checkpoints_dir", str(ckpt), "--dataroot", synthetic_root],
                              save=False)  # fmt: skip
    assert opt.ngf == 8


def test_a_contradicting_flag_names_both_values(ckpt, synthetic_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_test(ckpt, tmp_path, "--ngf", "16", dataroot=synthetic_root)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--ngf 16 (checkpoint: 8)" in err and "latest.pth" in err


def test_a_mistyped_name_is_one_line_and_creates_no_folder(ckpt, synthetic_root, tmp_path, capsys):
    assert run_test(ckpt, tmp_path, name="cg_typo", dataroot=synthetic_root) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no weights for --epoch latest" in err[0]
    assert not (ckpt / "cg_typo").exists() and not (tmp_path / "cg_typo").exists()


def test_training_flags_are_ignored_with_a_note(ckpt, synthetic_root, tmp_path, capsys):
    train_flags = ["--lambda_identity", "0.1", "--n_epochs", "5", "--display_id", "0", "--lr=0.1"]
    assert run_test(ckpt, tmp_path, *train_flags, dataroot=synthetic_root) == 0
    assert "training options ignored at test time: --lambda_identity 0.1 --n_epochs 5 --display_id 0 --lr=0.1" in (
        capsys.readouterr().out
    )
    with pytest.raises(SystemExit):  # a flag no parser knows is still refused
        run_test(ckpt, tmp_path, "--lambda_AA", "3", dataroot=synthetic_root)
    assert "unrecognized arguments: --lambda_AA 3" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra,generator,folder",
    [([], "netG_A", "testA"), (["--model_suffix", "_B"], "netG_B", "testB"),
     (["--test_direction", "BtoA"], "netG_B", "testB")],
)  # fmt: skip
def test_model_test_loads_one_generator_of_a_cycle_gan_checkpoint(
    ckpt, synthetic_root, tmp_path, capsys, extra, generator, folder
):
    assert run_test(ckpt, tmp_path, *extra, model="test", dataroot=synthetic_root) == 0
    names = images_in(tmp_path)
    stems = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(synthetic_root, folder)))
    assert names == sorted(f"{s}_{v}.png" for s in stems for v in ("real", "fake"))
    reference = torch.load(ckpt / "cg" / "latest.pth", weights_only=True)["networks"][generator]
    from util.test_loop import Tester

    opt = TestOptions().parse(["--model", "test", "--name", "cg", "--checkpoints_dir", str(ckpt), *COMMON_TEST,
                               "--dataroot", synthetic_root, *extra], save=False)  # fmt: skip
    loaded = Tester(opt).model.netG.state_dict()
    assert all(torch.equal(loaded[k], reference[k]) for k in reference)


def test_model_test_errors_name_the_generator_options(tmp_path, synthetic_root, capsys):
    assert run_test(tmp_path / "none", tmp_path, model="test", dataroot=synthetic_root) == 1
    err = capsys.readouterr().err
    assert "--model_suffix _A/_B" in err and "--test_direction" in err


def test_official_file_with_another_width_gives_one_line(tmp_path, synthetic_root, capsys):
    exp = tmp_path / "ck" / "official"
    exp.mkdir(parents=True)
    for label in ("G_A", "G_B"):
        net = build_generator("resnet_9blocks", 3, 3, 8, "instance", False, "normal", 0.02)
        torch.save(net.state_dict(), exp / f"latest_net_{label}.pth")
    assert run_test(tmp_path / "ck", tmp_path, "--ngf", "16", name="official", dataroot=synthetic_root) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "netG_A" in err[0] and "model.1.weight has shape [8, 3, 7, 7] in the file" in err[0]
    assert "[16, 3, 7, 7] here" in err[0]


@pytest.fixture(scope="module")
def tiny_images_root(tmp_path_factory):
    """4x4 and 5x7 inputs: below every generator's minimum (8 px)."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for letter in "AB":
        (root / f"test{letter}").mkdir()
        for name, (h, w) in (("four", (4, 4)), ("five", (5, 7))):
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"test{letter}" / f"{name}.png")
    return str(root)


def test_tiny_images_are_padded_to_the_minimum_and_cropped_back(ckpt, tiny_images_root, tmp_path):
    assert run_test(ckpt, tmp_path, "--preprocess", "none", dataroot=tiny_images_root) == 0
    for name, size in (("four", (4, 4)), ("five", (7, 5))):
        for visual in ("fake_B", "rec_A", "fake_A"):
            assert Image.open(tmp_path / "cg" / "test_latest" / "images" / f"{name}_{visual}.png").size == size


# ---------------------------------------------------------------- TUNIT: class folders, step-count end line
@pytest.fixture(scope="module")
def tunit_run(tmp_path_factory):
    from datasets.make_synthetic import make_synthetic

    folder = tmp_path_factory.mktemp("tunit")
    root = make_synthetic(str(folder / "data"), layout="class_folder", size=32, n_train=4, n_test=2, seed=0,
                          n_classes=2)  # fmt: skip
    argv = ["--model", "tunit", "--dataroot", root, "--name", "tu", "--checkpoints_dir", str(folder / "ck"),
            "--crop_size", "32", "--load_size", "32", "--display_id", "0", "--batch_size", "2", "--max_steps", "2",
            "--tunit_d_nf", "8", "--tunit_d_max_nf", "32", *COMMON_TEST, *TUNIT_NETS]  # fmt: skip
    return root, folder / "ck", argv


def test_tunit_trains_by_steps_and_tests_on_the_class_folders(tunit_run, tmp_path, capsys):
    root, ck, argv = tunit_run
    assert train.main(argv) == 0
    assert "end of training: step 2 / 2" in capsys.readouterr().out
    assert run_test(ck, tmp_path, name="tu", model="tunit", dataroot=root) == 0  # arch from the checkpoint
    inputs = [f"{c}_{os.path.splitext(f)[0]}" for c in sorted(os.listdir(os.path.join(root, "test")))
              for f in sorted(os.listdir(os.path.join(root, "test", c)))]  # fmt: skip
    names = images_in(tmp_path, "tu")
    assert len(inputs) == 4 and all(any(n.startswith(f"{s}_to_cluster") for n in names) for s in inputs)
    # tiny inputs are padded to TUNIT's 32 px minimum as well, and cropped back
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    Image.fromarray(np.zeros((5, 7, 3), dtype=np.uint8)).save(tiny / "x.png")
    out = tmp_path / "out"
    extra = ["--preprocess", "none", "--input_dir", str(tiny), "--output_path", str(out)]
    assert run_test(ck, tmp_path / "r2", *extra, name="tu", model="tunit", dataroot=root) == 0
    assert Image.open(out / "x.png").size == (7, 5)


def test_the_model_comes_from_the_checkpoint_when_not_given(tunit_run, tmp_path, capsys):
    root, ck, argv = tunit_run
    if not os.path.isfile(ck / "tu" / "latest.pth"):
        assert train.main(argv) == 0
    capsys.readouterr()
    assert run_test(ck, tmp_path, name="tu", model=None, dataroot=root) == 0  # the default --model is cycle_gan
    assert f"note: --model tunit (from {ck / 'tu' / 'latest.pth'})" in capsys.readouterr().out
    assert any("_to_cluster" in n for n in images_in(tmp_path, "tu"))
    with pytest.raises(SystemExit) as exc:  # --help lists the checkpoint's model's options
        TestOptions().parse(["--name", "tu", "--checkpoints_dir", str(ck), "--help"])
    assert exc.value.code == 0 and "tunit options" in capsys.readouterr().out


def test_tunit_test_with_a_bad_dataroot_leaves_no_folder(tunit_run, tmp_path, capsys):
    root, ck, argv = tunit_run
    if not os.path.isfile(ck / "tu" / "latest.pth"):
        assert train.main(argv) == 0
    assert run_test(ck, tmp_path, "--phase", "val", name="tu", model="tunit", dataroot=root) == 1
    assert "val" in capsys.readouterr().err and not (tmp_path / "tu").exists()
