"""export.py: a trained tiny CycleGAN exported as TorchScript and ONNX gives PyTorch's outputs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import warnings
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


# ---------------------------------------------------------------------------- the CPU fast path is never exported
def counting_nnpack(monkeypatch) -> list[int]:
    """Count NNPACK convolutions (the fast CPU path) from now on."""
    calls, original = [], torch._nnpack_spatial_convolution

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", counted)
    return calls


needs_nnpack = pytest.mark.skipif(not torch.backends.nnpack.is_available(), reason="NNPACK not available")


@needs_nnpack
def test_a_traced_fast_conv_holds_pytorchs_convolution(monkeypatch):
    from models.networks.fast_conv import use_fast_cpu_convs

    net = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(32, 32, 3), nn.ReLU()).eval()
    assert use_fast_cpu_convs(net) == 1
    calls, x = counting_nnpack(monkeypatch), torch.randn(1, 32, 32, 32)
    with torch.no_grad():
        eager = net(x)
    assert calls, "these widths should take the fast path in eager mode"
    calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, x, check_trace=False)
    graph = str(traced.inlined_graph)
    assert not calls and "nnpack" not in graph and "PythonOp" not in graph and "aten::_convolution" in graph
    with torch.no_grad():
        assert torch.allclose(traced(x), eager, atol=1e-4)


FAST_PATH_MODELS = {  # widths where the fast path is eligible (>= 32 input channels at >= 32x32 outputs)
    "cycle_gan": ["--model", "cycle_gan", "--ngf", "32", "--netG", "resnet_6blocks"],
    "ugatit": ["--model", "ugatit", "--ch", "32", "--n_res", "1", "--light", "True"],
}


@needs_nnpack
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", sorted(FAST_PATH_MODELS))
def test_export_with_default_options_never_traces_the_fast_path(name, tmp_path, monkeypatch, capsys):
    import models
    from options import TestOptions

    argv = [*FAST_PATH_MODELS[name], "--dataroot", str(tmp_path), "--name", "x", "--gpu_ids", "-1",
            "--crop_size", "32", "--load_size", "32", "--num_threads", "0"]  # fmt: skip
    opt = TestOptions().parse(argv, save=False)
    assert opt.fast_cpu_convs  # the default
    model = models.create_model(opt)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # as trained weights: the ONNX exporter merges equal initialisers and then fails
        for p in model.parameters():
            p.add_(torch.rand(p.shape, generator=g) * 1e-3)
    calls = counting_nnpack(monkeypatch)
    with torch.no_grad():
        model.translate(torch.rand(1, 3, 32, 32) * 2 - 1, "AtoB")
    assert calls, f"{name} at these widths should take the fast path in eager mode"
    formats = "both" if importlib.util.find_spec("onnx") else "torchscript"
    args = export.parse(["--format", formats, *argv])[0]
    args.atol = 1e-4
    assert export.export_model(model, opt, args, str(tmp_path / "out")), capsys.readouterr().out
    files = sorted(os.listdir(tmp_path / "out"))
    assert any(f.endswith(".pt") for f in files)
    for f in files:
        if f.endswith(".pt"):
            graph = str(torch.jit.load(str(tmp_path / "out" / f)).inlined_graph)
            assert "nnpack" not in graph and "PythonOp" not in graph
        else:
            with open(tmp_path / "out" / f, "rb") as fh:
                assert b"nnpack" not in fh.read().lower()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_export_reads_the_architecture_from_the_checkpoint(run, tmp_path, capsys):
    without_ngf = [a for i, a in enumerate(run["args"]) if "--ngf" not in run["args"][max(i - 1, 0) : i + 1]]
    assert "--ngf" not in without_ngf and "8" not in without_ngf
    out = tmp_path / "ts"
    assert export.main([*without_ngf, "--format", "torchscript", "--export_dir", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["netG_A_latest.pt", "netG_B_latest.pt"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        export.main([*without_ngf, "--ngf", "16", "--format", "torchscript", "--export_dir", str(out)])
    assert stop.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 3 and "--ngf 16" in err[-1] and "8" in err[-1]
