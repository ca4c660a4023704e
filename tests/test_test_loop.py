"""test.py: outputs per input, full resolution, HTML, --output_path, round trips and official checkpoints."""

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
from tests.conftest import TINY
from util.test_loop import Tester, pad_to_multiple


def cli_args(root, ckpt_dir, results, *extra, name="exp", model="cycle_gan"):
    tiny = list(TINY)  # test.py has no display options
    i = tiny.index("--display_id")
    del tiny[i : i + 2]
    return [
        "--model",
        model,
        "--dataroot",
        root,
        "--name",
        name,
        "--checkpoints_dir",
        str(ckpt_dir),
        "--results_dir",
        str(results),
        *tiny,
        *extra,
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_root):
    ckpt_dir = tmp_path_factory.mktemp("ckpt")
    argv = [
        "--model",
        "cycle_gan",
        "--dataroot",
        synthetic_root,
        "--name",
        "exp",
        "--checkpoints_dir",
        str(ckpt_dir),
        *TINY,
        "--max_steps",
        "2",
    ]
    assert train.main(argv) == 0
    return ckpt_dir


@pytest.fixture
def odd_sized_root(tmp_path):
    """testA with images of several sizes (not multiples of 4), testB with one."""
    rng = np.random.default_rng(0)
    for folder, sizes in (("testA", [(37, 29), (37, 29), (50, 44), (12, 20)]), ("testB", [(33, 31)])):
        os.makedirs(tmp_path / folder)
        for i, (w, h) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
                tmp_path / folder / f"im{i}.png"
            )
    return str(tmp_path)


def test_full_resolution_outputs_one_per_input_and_an_index(trained, odd_sized_root, tmp_path):
    results = tmp_path / "results"
    argv = cli_args(odd_sized_root, trained, results, "--preprocess", "none", "--batch_size", "2")
    assert test_script.main(argv) == 0
    images = results / "exp" / "test_latest" / "images"
    for folder, fake in (("testA", "fake_B"), ("testB", "fake_A")):
        for name in os.listdir(os.path.join(odd_sized_root, folder)):
            stem = os.path.splitext(name)[0]
            src = Image.open(os.path.join(odd_sized_root, folder, name))
            out = Image.open(images / f"{stem}_{fake}.png")
            assert out.size == src.size, (name, out.size, src.size)
    assert len([f for f in os.listdir(images) if "_fake_" in f]) == 5
    html = (results / "exp" / "test_latest" / "index.html").read_text()
    assert "im2_fake_B.png" in html and "im0_rec_B.png" in html


def test_output_path_gets_only_translations_named_after_inputs(trained, synthetic_root, tmp_path):
    out = tmp_path / "translated"
    argv = cli_args(
        synthetic_root,
        trained,
        tmp_path / "r",
        "--output_path",
        str(out),
        "--test_direction",
        "AtoB",
        "--num_test",
        "2",
    )
    assert test_script.main(argv) == 0
    inputs = sorted(os.listdir(os.path.join(synthetic_root, "testA")))[:2]
    assert sorted(os.listdir(out)) == sorted(os.path.splitext(n)[0] + ".png" for n in inputs)


def test_list_files_replace_the_test_folders(trained, synthetic_root, tmp_path):
    """--list_A / --list_B choose the inputs of each direction (UNIT's list mode)."""
    names_a = sorted(os.listdir(os.path.join(synthetic_root, "testA")))[1:3]
    names_b = sorted(os.listdir(os.path.join(synthetic_root, "testB")))[:1]
    (tmp_path / "a.txt").write_text("\n".join(names_a) + "\n")
    (tmp_path / "b.txt").write_text("\n".join(names_b) + "\n")
    out = tmp_path / "translated"
    lists = ["--list_A", str(tmp_path / "a.txt"), "--list_root_A", os.path.join(synthetic_root, "testA"),
             "--list_B", str(tmp_path / "b.txt"), "--list_root_B", os.path.join(synthetic_root, "testB")]  # fmt: skip
    argv = cli_args(str(tmp_path / "no_dataset"), trained, tmp_path / "r", "--output_path", str(out), *lists)
    assert test_script.main(argv) == 0
    stems = lambda names: sorted(os.path.splitext(n)[0] + ".png" for n in names)  # noqa: E731
    assert sorted(os.listdir(out / "AtoB")) == stems(names_a)
    assert sorted(os.listdir(out / "BtoA")) == stems(names_b)


def test_save_load_round_trip_gives_identical_outputs(trained, synthetic_root, tmp_path):
    from util.checkpoint import load_checkpoint

    opt = TestOptions().parse(cli_args(synthetic_root, trained, tmp_path), save=False)
    tester = Tester(opt)
    ckpt = load_checkpoint(os.path.join(trained, "exp", "latest.pth"))
    reference = build_generator(
        "resnet_9blocks", 3, 3, ngf=8, norm="instance", use_dropout=False, init_type="normal", init_gain=0.02
    )
    reference.load_state_dict(ckpt["networks"]["netG_A"])
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(tester.model.translate(x, "AtoB")["fake_B"], reference(x))


def test_official_cyclegan_files_with_module_prefix_load(synthetic_root, tmp_path):
    """``latest_net_G_A.pth`` / ``G_B`` as the official repo saves them (here with DataParallel prefixes)."""
    exp = tmp_path / "ckpt" / "official"
    os.makedirs(exp)
    nets = {}
    for label in ("G_A", "G_B"):
        net = build_generator(
            "resnet_9blocks",
            3,
            3,
            ngf=8,
            norm="instance",
            use_dropout=False,
            init_type="normal",
            init_gain=0.02,
        )
        torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, exp / f"latest_net_{label}.pth")
        nets[label] = net
    opt = TestOptions().parse(
        cli_args(synthetic_root, tmp_path / "ckpt", tmp_path, name="official"), save=False
    )
    tester = Tester(opt)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(tester.model.netG_B(x), nets["G_B"](x))
    # The one-direction pretrained layout: --model test reads latest_net_G.pth.
    torch.save(nets["G_A"].state_dict(), exp / "latest_net_G.pth")
    argv = cli_args(synthetic_root, tmp_path / "ckpt", tmp_path / "res", name="official", model="test")
    assert test_script.main(argv) == 0
    assert len(os.listdir(tmp_path / "res" / "official" / "test_latest" / "images")) == 2 * 3


def test_missing_weights_give_a_clear_error(synthetic_root, tmp_path, capsys):
    assert test_script.main(cli_args(synthetic_root, tmp_path, tmp_path, name="nothing")) == 1
    err = capsys.readouterr().err
    assert "no weights for --epoch latest" in err and "latest_net_G_A.pth, latest_net_G_B.pth" in err


def test_pad_to_multiple_pads_by_reflection_and_reports_the_size():
    x = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(1, 2, 5, 6)
    padded, size = pad_to_multiple(x, 4)
    assert padded.shape[-2:] == (8, 8) and size == (5, 6)
    assert torch.equal(padded[..., :5, :6], x)
