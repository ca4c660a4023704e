"""Bad input to test.py, export.py, util.zoo and demo.py: one ``error:`` line naming the option or path, exit
status 2 when the options alone are wrong (1 for what fails at run time), no traceback, and nothing left behind."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, _command_line
from torch import nn

import demo
import export
import models
import test as test_script
import train
from options import TrainOptions
from util import zoo
from util.checkpoint import FORMAT, VERSION, atomic_save
from util.zoo_registry import CUT_ARGS, CYCLEGAN_ARGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_ARGS = ["--gpu_ids", "-1", "--num_threads", "0", "--no_progress"]
TUNIT = ["--model", "tunit", "--ngf", "8", "--load_size", "32", "--crop_size", "32", "--output_k", "2",
         "--sty_dim", "16", "--tunit_g_nf", "8", "--tunit_g_nf_mlp", "32", "--tunit_c_widths",
         "4,M,8,M,16,16,M,32,32,M,32,32,M", "--tunit_d_nf", "8", "--tunit_d_max_nf", "32"]  # fmt: skip
UGATIT = ["--model", "ugatit", "--ch", "4", "--img_size", "96", "--light", "True", "--n_res", "1"]


def one_error_line(text: str, *needles: str) -> str:
    """The output holds exactly one line, an error naming every needle, and no traceback."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert "Traceback" not in text and len(lines) == 1, text
    assert "error:" in lines[0] and all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def saved_checkpoint(argv: list[str], checkpoints: str, name: str, dataroot: str) -> None:
    """A freshly built model saved as one of our checkpoints (architecture tests need no training)."""
    opt = TrainOptions().parse([*argv, "--dataroot", dataroot, "--gpu_ids", "-1", "--display_id", "0",
                                "--num_threads", "0"], save=False)  # fmt: skip
    torch.manual_seed(0)
    model = models.create_model(opt)
    ckpt = {"format": FORMAT, "version": VERSION, "model": opt.model, "options": opt.to_dict(),
            "networks": model.network_state(), "progress": {"epoch": 2, "epoch_iter": 0, "global_step": 7}}  # fmt: skip
    os.makedirs(os.path.join(checkpoints, name))
    atomic_save(ckpt, os.path.join(checkpoints, name, "latest.pth"))


@pytest.fixture(scope="module")
def exp(tmp_path_factory, synthetic_root):
    """One tiny trained cycle_gan (2 steps), plus built TUNIT and U-GAT-IT checkpoints, and a plain file."""
    from datasets.make_synthetic import make_synthetic

    root = tmp_path_factory.mktemp("tool_errors")
    ckpts = str(root / "checkpoints")
    assert (
        train.main(_command_line(TINY, "cycle_gan", synthetic_root, "cg", ckpts, ["--max_steps", "2"])) == 0
    )
    classes = make_synthetic(
        str(root / "classes"), layout="class_folder", size=32, n_train=4, n_test=2, seed=0
    )
    saved_checkpoint(TUNIT, ckpts, "tu", classes)
    os.symlink(synthetic_root, root / "selfie2anime")  # the experiment's dataset, as U-GAT-IT names its files
    saved_checkpoint(UGATIT, ckpts, "ug", str(root / "selfie2anime"))
    (root / "a_file").write_text("not a folder")
    return {
        "root": root,
        "ckpts": ckpts,
        "data": synthetic_root,
        "classes": classes,
        "file": str(root / "a_file"),
    }


def cg_args(exp) -> list[str]:
    return ["--name", "cg", "--checkpoints_dir", exp["ckpts"], "--dataroot", exp["data"], *TEST_ARGS]


# ---------------------------------------------------------------------------------------------- test.py
@pytest.mark.parametrize("option", ["--results_dir", "--output_path", "--video_out"])
def test_test_py_output_folder_that_is_a_file(exp, option, tmp_path, capsys):
    extra = [option, exp["file"], "--results_dir", str(tmp_path / "res")]
    if option == "--results_dir":
        extra = extra[:2]
    if option == "--video_out":
        extra += ["--video", exp["data"]]
    assert test_script.main([*cg_args(exp), *extra]) == 2
    one_error_line(capsys.readouterr().err, option, exp["file"], "file")
    assert not (tmp_path / "res").exists()
    assert not os.path.exists(os.path.join(exp["ckpts"], "cg", "test_opt.txt"))  # the run is not recorded


def test_test_py_output_folder_below_a_file_via_the_cli(exp):
    below = os.path.join(exp["file"], "results")
    done = subprocess.run([sys.executable, "test.py", *cg_args(exp), "--results_dir", below], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    line = one_error_line(done.stderr, "--results_dir", below)
    assert f"{exp['file']} is a file" in line


# ---------------------------------------------------------------------------------------------- export.py
@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--export_dir", "FILE"], "--export_dir"),
        (["--format", "official", "--out", "FILE"], "--export_dir"),
        (["--opset", "-1"], "--opset -1"),
        (["--opset", "99"], "--opset 99"),
        (["--opset", "x"], "--opset"),
    ],
)
def test_export_option_errors_are_one_line_at_parse_time(exp, extra, needle, capsys):
    extra = [exp["file"] if a == "FILE" else a for a in extra]
    with pytest.raises(SystemExit) as stop:
        export.main([*cg_args(exp), *extra])
    assert stop.value.code == 2
    one_error_line(capsys.readouterr().err, needle)
    assert sorted(os.listdir(os.path.join(exp["ckpts"], "cg"))) == ["latest.pth", "loss_log.txt", "opt.txt",
                                                                     "train_opt.json", "web"]  # fmt: skip


def tunit_args(exp, *extra: str) -> list[str]:
    return [
        "--name",
        "tu",
        "--checkpoints_dir",
        exp["ckpts"],
        "--dataroot",
        exp["classes"],
        *TEST_ARGS,
        *extra,
    ]


@pytest.mark.filterwarnings("ignore")
def test_tunit_both_writes_torchscript_with_one_note(exp, tmp_path, capfd):
    out = tmp_path / "out"
    assert export.main(tunit_args(exp, "--format", "both", "--export_dir", str(out))) == 0
    assert os.listdir(out) == ["translate_AtoB_latest.pt"]
    printed = capfd.readouterr()
    assert printed.out.count("has no ONNX export") == 1 and "Traceback" not in printed.out + printed.err
    assert "Torch IR graph" not in printed.out + printed.err and len(printed.out.splitlines()) < 20


def test_tunit_onnx_only_is_refused_at_parse_time(exp, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        export.main(tunit_args(exp, "--format", "onnx", "--export_dir", str(tmp_path / "out")))
    assert stop.value.code == 2
    one_error_line(capsys.readouterr().err, "--format onnx", "--model tunit", "torchscript")
    assert not (tmp_path / "out").exists()


class BatchStatsNorm(nn.Module):
    """Normalises a (1, N*C, H*W) view with batch statistics, as TUNIT's AdaIN: the ONNX exporter fails on
    dynamic shapes and, before this was handled, dumped its whole graph to the process's stdout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        return F.batch_norm(x.reshape(1, b * c, -1), None, None, training=True).view_as(x)


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="onnx not installed")
def test_onnx_exporter_failures_are_one_line_each(tmp_path, capfd):
    class Opt:
        crop_size, input_nc, output_nc, epoch = 16, 3, 3, "latest"

    class Args:
        atol, opset = 1e-5, 17

    export.export_and_check("norm", BatchStatsNorm(), 3, "onnx", str(tmp_path), Opt(), Args(), 4)
    printed = capfd.readouterr()
    assert "Torch IR graph" not in printed.out + printed.err and len(printed.out.splitlines()) <= 3, printed


def test_official_ugatit_file_is_named_after_the_experiments_dataset(exp, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no --dataroot: test.py's options make their synthetic default here
    argv = ["--name", "ug", "--checkpoints_dir", exp["ckpts"], "--format", "official", "--gpu_ids", "-1",
            "--out", str(tmp_path / "official")]  # fmt: skip
    assert export.main(argv) == 0, capsys.readouterr().err
    assert os.listdir(tmp_path / "official") == ["selfie2anime_params_0000007.pt"]


@pytest.mark.parametrize(
    "name, message", [("nothing", "no checkpoint"), ("no_layout", "no official checkpoint layout")]
)
def test_failed_official_export_leaves_no_folder(exp, name, message, tmp_path, capsys):
    no_layout = os.path.join(exp["ckpts"], "no_layout")
    if name == "no_layout" and not os.path.isdir(no_layout):  # a model the official layouts do not cover
        os.makedirs(no_layout)
        atomic_save({"format": FORMAT, "version": VERSION, "model": "test", "options": {}, "networks": {}},
                    os.path.join(no_layout, "latest.pth"))  # fmt: skip
    argv = ["--name", name, "--checkpoints_dir", exp["ckpts"], "--dataroot", exp["data"], "--format",
            "official", "--gpu_ids", "-1", "--out", str(tmp_path / "a" / "b")]  # fmt: skip
    assert export.main(argv) == 1
    one_error_line(capsys.readouterr().err, message)
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------------------------------------- util.zoo
def test_zoo_dir_that_is_a_file(exp, capsys):
    assert zoo.main(["get", "horse2zebra", "--dir", exp["file"], "--no_progress"]) == 2
    one_error_line(capsys.readouterr().err, "--dir", exp["file"])
    assert zoo.main(["get", "horse2zebra", "--dir", os.path.join(exp["file"], "x"), "--no_progress"]) == 2
    one_error_line(capsys.readouterr().err, "--dir")


def unreachable(monkeypatch, name: str, path: str, args) -> None:
    """Point ``name`` at a closed local port: the download fails at once, as without a network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = dataclasses.replace(zoo.REGISTRY[name], url=f"http://127.0.0.1:{port}/{path}", test_args=args)
    monkeypatch.setitem(zoo.REGISTRY, name, entry)


@pytest.mark.parametrize("name", ["horse2zebra", "horse2zebra_cut"])
def test_failed_zoo_get_leaves_no_folder_it_made(name, tmp_path, monkeypatch, capsys):
    unreachable(monkeypatch, name, "model.tar" if name.endswith("cut") else "model.pth", CYCLEGAN_ARGS)
    root = tmp_path / "new" / "checkpoints"
    assert zoo.main(["get", name, "--dir", str(root), "--no_progress"]) == 1
    one_error_line(capsys.readouterr().err, "cannot reach 127.0.0.1")
    assert os.listdir(tmp_path) == []
    (tmp_path / "mine").mkdir()  # a folder the user made stays, even empty
    assert zoo.main(["get", name, "--dir", str(tmp_path / "mine"), "--no_progress"]) == 1
    assert os.listdir(tmp_path) == ["mine"] and os.listdir(tmp_path / "mine") == []


def tiny_generator_file(path, **kw) -> str:
    from models.networks import build_generator

    net = build_generator("resnet_6blocks", 3, 3, ngf=8, norm="instance", use_dropout=False, init_type="normal",
                          init_gain=0.02, **kw)  # fmt: skip
    torch.save(net.state_dict(), path)
    return str(path)


TINY_NET = ("--ngf", "8", "--netG", "resnet_6blocks", "--load_size", "32", "--crop_size", "32")


def test_zoo_file_is_honoured_for_automatic_entries(tmp_path, monkeypatch, capsys):
    """No network: a file fetched elsewhere installs an automatically downloaded model too (CUT: the
    archive or the member), and a file that does not load leaves nothing behind."""
    import tarfile

    unreachable(monkeypatch, "horse2zebra", "model.pth", CYCLEGAN_ARGS + TINY_NET)
    unreachable(monkeypatch, "horse2zebra_cut", "model.tar", CUT_ARGS + TINY_NET)
    root = tmp_path / "ck"
    weights = tiny_generator_file(tmp_path / "horse2zebra.pth")
    assert zoo.main(["get", "horse2zebra", "--dir", str(root), "--file", weights]) == 0, capsys.readouterr()
    assert zoo.json_record(root / "horse2zebra")["file"] == "latest_net_G.pth"
    cut = tiny_generator_file(tmp_path / "latest_net_G.pth", antialias=True, antialias_up=True)
    archive = tmp_path / "pretrained_models.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(cut, arcname="checkpoints/horse2zebra_cut_pretrained/latest_net_G.pth")
    assert zoo.main(["get", "horse2zebra_cut", "--dir", str(root), "--file", str(archive)]) == 0
    assert (root / "horse2zebra_cut" / "latest_net_G.pth").read_bytes() == open(cut, "rb").read()
    capsys.readouterr()
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not weights")
    assert zoo.main(["get", "horse2zebra", "--dir", str(tmp_path / "other"), "--file", str(bad)]) == 1
    one_error_line(capsys.readouterr().err, "does not load")
    assert not (tmp_path / "other").exists()
    assert (
        zoo.main(["get", "horse2zebra", "--dir", str(tmp_path / "other"), "--file", str(tmp_path / "no")])
        == 2
    )
    one_error_line(capsys.readouterr().err, "--file", "no such file")


# ---------------------------------------------------------------------------------------------- demo.py
@pytest.mark.parametrize("port", ["0", "65536", "-1", "http"])
def test_demo_port_outside_the_range_is_a_parse_error(port, capsys):
    with pytest.raises(SystemExit) as stop:
        demo.parse_args(["--name", "x", "--port", port])
    assert stop.value.code == 2
    one_error_line(capsys.readouterr().err, "--port", "1 to 65535")


@pytest.mark.skipif(not demo.gradio_available(), reason="demo.py stops earlier without Gradio")
def test_demo_busy_port_is_one_line_before_any_model_loads(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert demo.port_error("127.0.0.1", port) is not None
        # --name names no experiment: the port is checked first, so the port is what is reported
        argv = ["--name", "nothing", "--checkpoints_dir", str(tmp_path), "--port", str(port)]
        assert demo.main(argv) == 1
    line = one_error_line(capsys.readouterr().err, f"--port {port}", "in use", "--port ")
    suggested = int(line.rsplit("--port ", 1)[1])
    assert suggested != port and demo.port_error("127.0.0.1", suggested) is None
    assert demo.port_error("127.0.0.1", port) is None  # closed again: free
