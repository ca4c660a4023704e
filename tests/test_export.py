"""export.py: a trained tiny CycleGAN exported as TorchScript and ONNX gives PyTorch's outputs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
from conftest import TINY
from torch import nn

import export
from util.checkpoint import load_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NET_ARGS = ["--model", "cycle_gan", "--ngf", "8", "--crop_size", "32", "--gpu_ids", "-1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, synthetic_root):
    root = tmp_path_factory.mktemp("export")
    ckpts = str(root / "checkpoints")
    one_step = ["--n_epochs", "1", "--n_epochs_decay", "0", "--max_steps", "1"]
    cmd = [sys.executable, os.path.join(REPO, "train.py"), "--dataroot", synthetic_root, "--name", "x",
           "--checkpoints_dir", ckpts, *one_step, *TINY]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    args = ["--name", "x", "--checkpoints_dir", ckpts, "--dataroot", synthetic_root, *NET_ARGS]
    return {"root": root, "ckpts": ckpts, "args": args}


def trained_generator(run, name: str) -> nn.Module:
    from models.networks import build_generator

    net = build_generator(
        "resnet_9blocks", 3, 3, ngf=8, norm="instance", use_dropout=False, init_type="normal", init_gain=0.02
    )
    net.load_state_dict(load_checkpoint(os.path.join(run["ckpts"], "x", "latest.pth"))["networks"][name])
    return net.eval()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_export_matches_pytorch(run, tmp_path, capsys):
    out = tmp_path / "ts"
    assert export.main([*run["args"], "--format", "torchscript", "--export_dir", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["netG_A_latest.pt", "netG_B_latest.pt"]
    assert capsys.readouterr().out.count("max abs difference to PyTorch") == 4  # 2 networks x 2 input shapes
    loaded = torch.jit.load(str(out / "netG_B_latest.pt"))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert (loaded(x) - trained_generator(run, "netG_B")(x)).abs().max().item() < 1e-5


@pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="onnx / onnxruntime not installed",
)
def test_onnx_export_matches_pytorch(run, tmp_path, capsys):
    import onnxruntime

    out = tmp_path / "onnx"
    assert export.main([*run["args"], "--format", "onnx", "--export_dir", str(out)]) == 0
    assert "MISMATCH" not in capsys.readouterr().out
    session = onnxruntime.InferenceSession(
        str(out / "netG_A_latest.onnx"), providers=["CPUExecutionProvider"]
    )
    x = torch.rand(2, 3, 40, 32) * 2 - 1  # another batch size and height than the export sample
    with torch.no_grad():
        expected = trained_generator(run, "netG_A")(x)
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    assert got.shape == expected.shape and (got - expected).abs().max().item() < 1e-4


class TwoInputGenerator(nn.Module):
    """A generator that needs a style code besides the image (as TUNIT's): not exportable on its own."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x) + style.mean())


class StyleModel(nn.Module):
    directions = ("AtoB",)
    inference_names = ["netG"]

    def __init__(self) -> None:
        super().__init__()
        self.netG = TwoInputGenerator()
        self.register_buffer("style", torch.ones(4))

    def translate(self, real, direction):
        return OrderedDict(real_A=real, fake_B=self.netG(real, self.style))

    @staticmethod
    def output_visual(direction, visuals):
        return "fake_B"


def test_generators_needing_more_inputs_are_exported_as_translations(tmp_path, capsys):
    class Opt:
        crop_size, input_nc, output_nc, epoch = 16, 3, 3, "latest"

    class Args:
        atol, opset = 1e-5, 17

    modules = export.exportable_modules(StyleModel().eval(), Opt())
    assert [label for label, _, _ in modules] == ["translate_AtoB"]
    label, module, channels = modules[0]
    assert export.export_and_check(label, module, channels, "torchscript", str(tmp_path), Opt(), Args(), 4)
    assert (tmp_path / "translate_AtoB_latest.pt").is_file()
    assert "exporting the translations instead" in capsys.readouterr().out
