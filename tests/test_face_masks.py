"""BiSeNet face parser (official state_dict layout) and scripts/ugatit/make_face_masks.py (--mask_dir files)."""

from __future__ import annotations

import os
import runpy
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from models.networks.bisenet import FACE_PARTS, WEIGHTS_PAGE, BiSeNet, FaceParserWeightsError, load_bisenet
from scripts.ugatit import make_face_masks as tool

# Names and shapes read off zllrunning/face-parsing.PyTorch (model.py, resnet.py) built with 19 classes.
OFFICIAL_KEYS = {
    "cp.resnet.conv1.weight": (64, 3, 7, 7),
    "cp.resnet.layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "cp.resnet.layer2.0.downsample.1.running_mean": (128,),
    "cp.resnet.layer4.1.bn2.running_var": (512,),
    "cp.arm16.conv.conv.weight": (128, 256, 3, 3),
    "cp.arm32.conv_atten.weight": (128, 128, 1, 1),
    "cp.arm32.bn_atten.num_batches_tracked": (),
    "cp.conv_avg.conv.weight": (128, 512, 1, 1),
    "cp.conv_head16.bn.weight": (128,),
    "ffm.convblk.conv.weight": (256, 256, 1, 1),
    "ffm.conv1.weight": (64, 256, 1, 1),
    "ffm.conv2.weight": (256, 64, 1, 1),
    "conv_out.conv.conv.weight": (256, 256, 3, 3),
    "conv_out.conv_out.weight": (19, 256, 1, 1),
    "conv_out16.conv_out.weight": (19, 64, 1, 1),
    "conv_out32.conv.bn.bias": (64,),
}
OFFICIAL_PARAMS = 13_300_416  # sum of numel over the official BiSeNet(19).parameters()
OFFICIAL_STATE_ENTRIES = 191  # parameters + BatchNorm buffers


@pytest.fixture(scope="module")
def net() -> BiSeNet:
    """Random weights whose logits vary across classes and pixels, so the masks depend on every input step.

    At PyTorch's default initialisation the logits are ~0.04 and every pixel's softmax is almost uniform.
    """
    torch.manual_seed(0)
    net = BiSeNet().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
        net.conv_out.conv_out.weight.mul_(30.0)
    return net


def test_state_dict_matches_the_official_layout(net):
    state = net.state_dict()
    assert {k: tuple(state[k].shape) for k in OFFICIAL_KEYS} == OFFICIAL_KEYS
    assert len(state) == OFFICIAL_STATE_ENTRIES
    assert list(state)[:2] == ["cp.resnet.conv1.weight", "cp.resnet.bn1.weight"]
    assert list(state)[-1] == "conv_out32.conv_out.weight"
    assert sum(p.numel() for p in net.parameters()) == OFFICIAL_PARAMS
    assert len(FACE_PARTS) == 19 and FACE_PARTS[6] == "eye_g" and FACE_PARTS[11] == "mouth"


def test_forward_returns_main_and_auxiliary_logits(net):
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        outs = net(x)
        main = net(x, with_aux=False)
    assert [tuple(o.shape) for o in outs] == [(1, 19, 64, 32)] * 3
    assert torch.equal(main, outs[0])
    assert not torch.equal(outs[1], outs[2])


def random_state(net: BiSeNet, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.rand(v.shape, generator=g) + 0.5 if v.is_floating_point() else v.clone()
        for k, v in net.state_dict().items()
    }


@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_layout_checkpoint_loads(net, tmp_path, prefix):
    state = random_state(net)
    path = tmp_path / "79999_iter.pth"
    torch.save({prefix + k: v for k, v in state.items()}, path)
    loaded = load_bisenet(str(path))
    assert not loaded.training
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())


def test_checkpoint_without_batchnorm_counters_loads(net, tmp_path):
    state = {k: v for k, v in random_state(net).items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    loaded = load_bisenet(str(tmp_path / "old.pth"))
    assert torch.equal(loaded.state_dict()["ffm.conv1.weight"], state["ffm.conv1.weight"])


def test_weights_errors(tmp_path):
    with pytest.raises(FaceParserWeightsError, match="79999_iter.pth") as err:
        load_bisenet(str(tmp_path / "missing.pth"))
    assert WEIGHTS_PAGE in str(err.value)
    torch.save(torch.nn.Linear(2, 3).state_dict(), tmp_path / "linear.pth")
    with pytest.raises(FaceParserWeightsError) as err:
        load_bisenet(str(tmp_path / "linear.pth"))
    message = str(err.value)
    assert "missing keys: cp.resnet.conv1.weight" in message and "(160 in all)" in message
    assert "unexpected keys: weight, bias" in message
    torch.save(BiSeNet(n_classes=5).state_dict(), tmp_path / "five.pth")
    with pytest.raises(FaceParserWeightsError, match=r"conv_out.conv_out.weight \(5, 256, 1, 1\) vs \(19"):
        load_bisenet(str(tmp_path / "five.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(FaceParserWeightsError, match="cannot read"):
        load_bisenet(str(tmp_path / "junk.pth"))


def hand_made_probs() -> torch.Tensor:
    """(1, 19, 1, 2) probabilities, dyadic so every sum is exact.

    pixel 0: skin 0.5, mouth 0.25, background 0.25; pixel 1: glasses 0.375, hair 0.125, neck 0.5.
    """
    probs = torch.zeros(1, 19, 1, 2)
    probs[0, [1, 11, 0], 0, 0] = torch.tensor([0.5, 0.25, 0.25])
    probs[0, [6, 17, 14], 0, 1] = torch.tensor([0.375, 0.125, 0.5])
    return probs


@pytest.mark.parametrize(
    "parts, glass_mouth, hard, expected",
    [
        (tool.DEFAULT_PARTS, False, False, [0.75, 0.5]),
        (tool.DEFAULT_PARTS, True, False, [0.5, 0.125]),
        (tool.DEFAULT_PARTS, False, True, [1.0, 1.0]),
        (tool.DEFAULT_PARTS, True, True, [1.0, 0.0]),
        ((17,), False, False, [0.0, 0.125]),
        ((0, 14, 16), False, False, [0.25, 0.5]),
        ((6, 11), True, False, []),
    ],
)
def test_mask_from_probabilities(parts, glass_mouth, hard, expected):
    chosen = tool.selected_parts(parts, glass_mouth)
    if not expected:
        assert chosen == ()
        return
    mask = tool.mask_from_probs(hand_made_probs(), chosen, hard)
    assert mask.shape == (1, 1, 1, 2)
    assert mask.flatten().tolist() == expected


def test_mask_image_rounding_and_parts_parsing():
    img = tool.to_mask_image(torch.tensor([[[0.0, 0.125, 0.5, 0.75, 1.0]]]))
    assert img.mode == "L" and img.size == (5, 1)
    assert list(img.getdata()) == [0, 32, 128, 191, 255]
    assert tool.parse_parts("17, 1,2,1") == (1, 2, 17)
    for bad in ("19", "-1", "a", ""):
        with pytest.raises(Exception, match="class indices"):
            tool.parse_parts(bad)
    assert tool.mask_path("M", os.path.join("D", "trainA", "x.y.jpg")) == os.path.join(
        "M", "trainA", "x.y.png"
    )


@pytest.fixture
def face_data(tmp_path, net):
    """trainA: a 56x40 JPEG and a 40x40 RGBA PNG; trainB: a 48x48 grey PNG; weights with a DDP prefix."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    (root / "trainA").mkdir(parents=True)
    (root / "trainB").mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(root / "trainA" / "a0.jpg")
    Image.fromarray(rng.integers(0, 256, (40, 40, 4), dtype=np.uint8), "RGBA").save(
        root / "trainA" / "a1.png"
    )
    Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(root / "trainB" / "b0.png")
    weights = tmp_path / "79999_iter.pth"
    torch.save({"module." + k: v for k, v in net.state_dict().items()}, weights)
    return root, weights


def run_tool(root, weights, mask_dir, *extra) -> int:
    fast = ["--gpu_ids", "-1", "--net_size", "32", "--num_workers", "0", "--no_progress"]
    args = ["--weights", str(weights), "--dataroot", str(root), "--mask_dir", str(mask_dir), *fast, *extra]
    return tool.main(args)


def test_tool_writes_one_mask_per_image(face_data, tmp_path, net, capsys):
    root, weights = face_data
    masks = tmp_path / "masks"
    assert run_tool(root, weights, masks, "--batch_size", "2") == 0
    assert "wrote 3 masks" in capsys.readouterr().out
    assert sorted(p.relative_to(masks).as_posix() for p in masks.rglob("*.png")) == [
        "trainA/a0.png",
        "trainA/a1.png",
        "trainB/b0.png",
    ]
    for rel, size in [("trainA/a0.png", (56, 40)), ("trainA/a1.png", (40, 40)), ("trainB/b0.png", (48, 48))]:
        with Image.open(masks / rel) as img:
            assert img.mode == "L" and img.size == size
    # The fork's pipeline written out independently: [0, 1] RGB -> 32x32 bilinear (align_corners) -> ImageNet
    # normalisation -> main logits -> bicubic back (align_corners) -> softmax -> sum over classes 1-13, 17.
    rgb = torch.from_numpy(np.asarray(Image.open(root / "trainA" / "a0.jpg"), dtype=np.float32) / 255.0)
    x = F.interpolate(rgb.permute(2, 0, 1)[None], size=(32, 32), mode="bilinear", align_corners=True)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    with torch.no_grad():
        logits = net((x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))[0]
    probs = F.interpolate(logits, size=(40, 56), mode="bicubic", align_corners=True).softmax(1)
    expected = probs[0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 17]].sum(0).clamp(0, 1) * 255
    written = np.asarray(Image.open(masks / "trainA" / "a0.png"), dtype=np.float32)
    assert np.abs(written - expected.numpy()).max() <= 0.51
    assert written.max() - written.min() > 100  # the check above is not a constant mask

    hard = tmp_path / "hard"
    assert run_tool(root, weights, hard, "--phases", "trainB", "--hard_edge") == 0
    assert [p.name for p in hard.rglob("*.png")] == ["b0.png"]
    hard_mask = np.asarray(Image.open(hard / "trainB" / "b0.png"))
    soft_mask = np.asarray(Image.open(masks / "trainB" / "b0.png"))
    assert set(np.unique(hard_mask)) <= {0, 255}
    assert np.array_equal(hard_mask, np.where(soft_mask >= 128, 255, 0))


def test_tool_errors(face_data, tmp_path, capsys):
    root, weights = face_data
    assert run_tool(root, tmp_path / "nope.pth", tmp_path / "m") == 1
    err = capsys.readouterr().err
    assert "face-parsing weights not found" in err and WEIGHTS_PAGE in err
    assert run_tool(root, weights, tmp_path / "m", "--phases", "trainA", "testA") == 1
    err = capsys.readouterr().err
    assert "testA not found" in err and "folders in" in err and "trainA, trainB" in err
    assert not (tmp_path / "m").exists()  # every folder is checked before anything is written
    with pytest.raises(SystemExit):
        run_tool(root, weights, tmp_path / "m", "--parts", "6,11", "--glass_mouth_background")
    (root / "trainB" / "broken.jpg").write_bytes(b"not an image")
    assert run_tool(root, weights, tmp_path / "m", "--phases", "trainB") == 1
    assert "cannot decode image file" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "m").rglob("*.png")] == ["b0.png"]  # the other images still get masks


def test_runs_as_a_module(monkeypatch, capsys):
    """``python -m scripts.ugatit.make_face_masks`` (scripts/ is a namespace package: no __init__.py needed)."""
    monkeypatch.setattr(sys, "argv", ["make_face_masks", "--help"])
    monkeypatch.delitem(sys.modules, "scripts.ugatit.make_face_masks")  # as a fresh `python -m` would run it
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("scripts.ugatit.make_face_masks", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--glass_mouth_background" in out and "17 hair" in out
