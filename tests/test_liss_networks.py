"""LiSS networks and task data: official parameter counts and keys, shapes, jigsaw table, target tensors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from data.liss_dataset import (
    LiSSDataset,
    depth_target,
    draw_task_params,
    gray_input,
    jigsaw_input,
    rotation_input,
    task_targets,
)
from models.networks.discriminators import NLayerDiscriminator
from models.networks.generators import ResnetGenerator
from models.networks.liss import (
    JIGSAW_PERMUTATIONS,
    LiSSGenerator,
    RotationalNLayerDiscriminator,
    classifier_map_size,
    parse_tasks,
    patch_map_size,
    resnet_to_liss_keys,
)

PARTS = ("encoder", "decoder", "depth", "gray", "rotation", "jigsaw")


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Measured with the official classes.
@pytest.mark.parametrize(
    "ngf, total, parts, d_total",
    [
        (64, 18_758_603, (3_918_976, 3_918_723, 3_912_449, 3_918_723, 1_483_396, 1_606_336), 2_777_435),
        (8, 2_306_587, (62_480, 62_451, 61_665, 62_451, 967_300, 1_090_240), 50_067),
        (16, 3_191_531, None, 181_643),
    ],
)
def test_parameter_counts(ngf, total, parts, d_total):
    g = LiSSGenerator(ngf=ngf)
    assert count(g) == total
    if parts is not None:
        assert tuple(count(getattr(g, name)) for name in PARTS) == parts
    assert count(RotationalNLayerDiscriminator(ndf=ngf)) == d_total


def test_discriminator_parts_and_cyclegan_equivalence():
    d = RotationalNLayerDiscriminator(ndf=64)
    assert (count(d.shared), count(d.gan), count(d.rotation)) == (2_756_544, 8_193, 12_698)
    # shared + gan is the CycleGAN PatchGAN; encoder + decoder is resnet_6blocks.
    assert count(d.shared) + count(d.gan) == count(NLayerDiscriminator(ndf=64)) == 2_764_737
    g = LiSSGenerator(ngf=64)
    assert count(g.encoder) + count(g.decoder) == 7_837_699


def _g_keys() -> set[str]:
    keys = {f"encoder.model.{i}.{p}" for i in (1, 4, 7) for p in ("weight", "bias")}
    keys |= {
        f"encoder.model.{i}.conv_block.{c}.{p}"
        for i in (10, 11, 12)
        for c in (1, 5)
        for p in ("weight", "bias")
    }
    for head in ("decoder", "gray", "depth"):
        keys |= {
            f"{head}.{i}.conv_block.{c}.{p}" for i in (0, 1, 2) for c in (1, 5) for p in ("weight", "bias")
        }
        keys |= {f"{head}.{i}.{p}" for i in (3, 6, 10) for p in ("weight", "bias")}
    keys |= {
        f"{head}.{i}.{p}"
        for head in ("rotation", "jigsaw")
        for i in (0, 3, 7, 11)
        for p in ("weight", "bias")
    }
    return keys


def test_state_dict_keys_are_official():
    assert set(LiSSGenerator(ngf=8).state_dict()) == _g_keys()
    d_keys = {f"shared.{i}.{p}" for i in (0, 2, 5, 8) for p in ("weight", "bias")}
    d_keys |= {"gan.weight", "gan.bias"} | {f"rotation.{i}.{p}" for i in (0, 4) for p in ("weight", "bias")}
    assert set(RotationalNLayerDiscriminator(ndf=8).state_dict()) == d_keys


def test_official_layout_loads_strictly_and_heads_have_fixed_widths():
    g = LiSSGenerator(ngf=8)
    official = {k: torch.randn_like(v) for k, v in g.state_dict().items()}
    g.load_state_dict(official, strict=True)
    assert g.rotation[0].out_channels == 256 and g.rotation[7].out_channels == 128
    assert g.rotation[11].in_features == 2048 and g.rotation[11].out_features == 4
    assert g.jigsaw[11].out_features == 64
    assert g.depth[10].out_channels == 1 and not isinstance(g.depth[-1], nn.Tanh)
    assert isinstance(g.decoder[-1], nn.Tanh) and isinstance(g.gray[-1], nn.Tanh)
    # Official quirk: the last head norm is built for 256 channels although it gets 128. An affine-free
    # InstanceNorm (no state) is built for 128 (no warning); BatchNorm needs fix_head_norm for that.
    assert g.rotation[8].num_features == 128 and not g.rotation[8].state_dict()
    assert LiSSGenerator(ngf=8, norm="batch", fix_head_norm=True).rotation[8].num_features == 128


def test_resnet_6blocks_maps_onto_encoder_and_decoder():
    torch.manual_seed(0)
    cyc = ResnetGenerator(ngf=8, n_blocks=6)
    mapped = resnet_to_liss_keys(cyc.state_dict(), n_blocks=6)
    assert "encoder.model.12.conv_block.5.weight" in mapped and "decoder.0.conv_block.1.weight" in mapped
    assert {"decoder.3.weight", "decoder.6.weight", "decoder.10.weight"} <= set(mapped)
    g = LiSSGenerator(ngf=8)
    missing, unexpected = g.load_state_dict(mapped, strict=False)
    assert not unexpected and all(k.split(".")[0] in ("depth", "gray", "rotation", "jigsaw") for k in missing)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(g(x), cyc(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="not a CycleGAN"):
        resnet_to_liss_keys({"encoder.model.1.weight": torch.zeros(1)})


def test_patchgan_maps_onto_shared_and_gan():
    torch.manual_seed(0)
    nl = NLayerDiscriminator(ndf=8)
    d = RotationalNLayerDiscriminator(ndf=8, rotation_map_size=patch_map_size(32))
    renamed = {
        ("gan." + k[9:] if k.startswith("model.11.") else "shared." + k[6:]): v
        for k, v in nl.state_dict().items()
    }
    d.load_state_dict({**d.state_dict(), **renamed}, strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(d(x)[0], nl(x), rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:input's size at dim=1")
def test_generator_shapes_and_invariants_at_tiny_size():
    torch.manual_seed(0)
    g = LiSSGenerator(ngf=8)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        z = g.encoder(x)
        assert z.shape == (2, 32, 16, 16)
        fake = g.decoder(z)
        torch.testing.assert_close(g(x), fake, rtol=0, atol=0)
        assert fake.shape == (2, 3, 64, 64) and fake.abs().max() <= 1
        assert g.gray(z).shape == (2, 3, 64, 64) and g.gray(z).abs().max() <= 1
        assert g.depth(z).shape == (2, 1, 64, 64)
    # InstanceNorm needs more than one value per channel, so the classifiers' last map must be >= 2x2:
    # 96-px rotation crops and 84-px jigsaw windows are the small sizes that give 2x2.
    assert classifier_map_size(96) == classifier_map_size(84) == 2
    small = LiSSGenerator(ngf=8, head_map_size=2)
    with torch.no_grad():
        assert small.rotation(small.encoder(torch.randn(4, 3, 96, 96))).shape == (4, 4)
        assert small.jigsaw(small.encoder(torch.randn(1, 3, 84, 84))).shape == (1, 64)


def test_encode_luma_equals_the_repeated_gray_image():
    torch.manual_seed(0)
    encoder = LiSSGenerator(ngf=8).encoder
    luma = torch.rand(2, 1, 32, 32) * 2 - 1
    z = encoder.encode_luma(luma)
    torch.testing.assert_close(z, encoder(luma.repeat(1, 3, 1, 1)), rtol=1e-5, atol=1e-5)
    # The stem's weight gradient reaches all three input channels equally, as for the repeated image.
    z.square().sum().backward()
    grad = encoder.model[1].weight.grad
    assert torch.equal(grad[:, 0], grad[:, 1]) and torch.equal(grad[:, 0], grad[:, 2])


@pytest.mark.filterwarnings("ignore:input's size at dim=1")
def test_classifier_heads_at_official_crop_sizes():
    # 256-px rotation crops and 222-px jigsaw crops both give the 4x4 map of the official Linear(2048).
    g = LiSSGenerator(ngf=8)
    with torch.no_grad():
        assert g.rotation(g.encoder(torch.randn(4, 3, 256, 256))).shape == (4, 4)
        assert g.jigsaw(g.encoder(torch.randn(1, 3, 222, 222))).shape == (1, 64)


def test_depth_head_is_unbounded():
    g = LiSSGenerator(ngf=8)
    with torch.no_grad():
        g.depth[10].weight.zero_()
        g.depth[10].bias.fill_(5.0)
        out = g.depth(g.encoder(torch.randn(1, 3, 32, 32)))
        assert out.shape == (1, 1, 32, 32) and torch.equal(out, torch.full_like(out, 5.0))


def test_map_sizes():
    assert [classifier_map_size(s) for s in (208, 209, 222, 256, 272, 273, 96, 84, 80, 32)] == [
        3,
        4,
        4,
        4,
        4,
        5,
        2,
        2,
        1,
        1,
    ]
    assert [patch_map_size(s) for s in (256, 64, 32)] == [30, 6, 2]


def test_discriminator_outputs():
    d = RotationalNLayerDiscriminator(ndf=8, rotation_map_size=patch_map_size(64))
    x = torch.randn(2, 3, 64, 64)
    gan, rot = d(x, torch.randn(5, 3, 64, 64))
    assert gan.shape == (2, 1, 6, 6) and rot.shape == (5, 5)
    assert d(rotation=x)[0] is None and d(x)[1] is None
    with pytest.raises(ValueError):
        d()
    full = RotationalNLayerDiscriminator(ndf=8)
    assert full.rotation[4].in_features == 900 and full.rotation[4].out_features == 5


def test_constructor_errors():
    with pytest.raises(ValueError, match="even"):
        LiSSGenerator(ngf=8, n_blocks=5)
    with pytest.raises(ValueError, match="fix_head_norm"):
        LiSSGenerator(ngf=8, norm="batch")
    g = LiSSGenerator(ngf=8, norm="batch", fix_head_norm=True, head_map_size=1)
    assert isinstance(g.jigsaw[8], nn.BatchNorm2d) and g.jigsaw[8].num_features == 128
    assert g.rotation(g.encoder(torch.randn(2, 3, 64, 64))).shape == (2, 4)


def test_parse_tasks():
    assert parse_tasks("rotation, gray, depth, jigsaw") == ("rotation", "jigsaw", "depth", "gray")
    assert parse_tasks("gray,rotation, gray") == ("rotation", "gray")
    assert parse_tasks("") == ()
    with pytest.raises(ValueError, match="colour"):
        parse_tasks("rotation, colour")


def test_jigsaw_table():
    table = JIGSAW_PERMUTATIONS
    assert table.shape == (64, 9) and table.dtype == np.int64 and not table.flags.writeable
    assert all(sorted(row) == list(range(9)) for row in table.tolist())
    assert len({tuple(row) for row in table.tolist()}) == 64
    assert not any((row == np.arange(9)).all() for row in table)  # no identity class
    assert table[0].tolist() == [3, 1, 7, 6, 8, 0, 4, 2, 5] and table[63].tolist() == [
        5,
        8,
        0,
        6,
        1,
        2,
        7,
        4,
        3,
    ]
    # A weighted checksum of the whole official table (catches a swapped entry anywhere).
    weights = np.arange(1, 65)[:, None] * np.arange(1, 10)[None]
    assert int((table * weights).sum()) == 382_732
    hamming = (table[:, None] != table[None]).sum(-1) + 9 * np.eye(64, dtype=np.int64)
    assert hamming.min() == 3


# ----------------------------------------------------------------------------------------- task targets


def test_jigsaw_input_moves_whole_tiles():
    size, tile = 48, 16
    # A 3x3 grid of constant tiles (value = tile id) inside a 50x52 image, window at (1, 3).
    img = torch.full((3, 50, 52), -1.0)
    for k in range(9):
        r, c = divmod(k, 3)
        img[:, 1 + r * tile : 1 + (r + 1) * tile, 3 + c * tile : 3 + (c + 1) * tile] = float(k)
    for index in (0, 17, 63):
        out = jigsaw_input(img, index, top=1, left=3, size=size)
        assert out.shape == (3, size, size)
        got = [out[0, r * tile, c * tile].item() for r in range(3) for c in range(3)]
        assert got == [float(v) for v in JIGSAW_PERMUTATIONS[index]]
    with pytest.raises(ValueError):
        jigsaw_input(img, 0, 0, 0, size=50)


def test_rotation_input_matches_pil_rotate():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    pil = Image.fromarray(arr)
    img = torch.from_numpy(arr).permute(2, 0, 1).float()
    out = rotation_input(img, [2, 0, 3, 1])
    assert out.shape == (12, 8, 8)
    for j, k in enumerate([2, 0, 3, 1]):
        ref = torch.from_numpy(np.array(pil.rotate(90 * k))).permute(2, 0, 1).float()
        assert torch.equal(out[3 * j : 3 * j + 3], ref)


def test_depth_and_gray_values():
    d = Image.fromarray(np.array([[255, 128], [0, 51]], dtype=np.uint8))
    t = depth_target(d)
    expected = (np.log(1 / (np.array([[1.0, 128 / 255], [0.0, 0.2]]) + 1e-6)) - 2) / 2
    assert t.shape == (1, 2, 2) and t.dtype == torch.float32
    torch.testing.assert_close(t[0], torch.from_numpy(expected).float(), rtol=0, atol=0)
    # Official quirk: a map whose maximum is <= 1 is not divided by 255.
    assert depth_target(Image.fromarray(np.ones((2, 2), np.uint8)))[0, 0, 0].item() == pytest.approx(
        -1.0, abs=1e-6
    )
    rgb = Image.fromarray(np.array([[[255, 0, 0], [10, 200, 30]]], dtype=np.uint8))
    g = gray_input(rgb)
    luma = np.array([(19595 * 255 + 32768) >> 16, (19595 * 10 + 38470 * 200 + 7471 * 30 + 32768) >> 16])
    assert g.shape == (3, 1, 2) and torch.equal(g[0], g[2])
    torch.testing.assert_close(g[1, 0], torch.from_numpy(luma / 255 * 2 - 1).float())


def test_draw_task_params_and_task_targets():
    rng = np.random.default_rng(3)
    params = draw_task_params(rng, ("rotation", "jigsaw"), (64, 64), jigsaw_size=48)
    assert sorted(params["rotation"]) == [0, 1, 2, 3]
    index, top, left = params["jigsaw"]
    assert 0 <= index < 64 and 0 <= top <= 16 and 0 <= left <= 16
    assert draw_task_params(np.random.default_rng(3), ("rotation", "jigsaw"), (64, 64), 48) == params
    assert draw_task_params(rng, ("gray", "depth"), (64, 64)) == {}
    with pytest.raises(ValueError, match="jigsaw_size"):
        draw_task_params(rng, ("jigsaw",), (32, 32), jigsaw_size=48)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    depth = Image.fromarray(np.full((64, 64), 128, np.uint8))
    out = task_targets(
        "B", img, params, tasks=("rotation", "jigsaw", "depth", "gray"), depth=depth, jigsaw_size=48
    )
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "B_rotation": (12, 64, 64),
        "B_rotation_target": (4,),
        "B_jigsaw": (3, 48, 48),
        "B_jigsaw_target": (),
        "B_depth_target": (1, 64, 64),
        "B_gray": (3, 64, 64),
    }
    assert out["B_rotation_target"].tolist() == params["rotation"]


def _opt(root: str, **kw) -> SimpleNamespace:
    base = dict(
        dataroot=root, phase="train", direction="AtoB", max_dataset_size=10**9, serial_batches=False, seed=0,
        input_nc=3, output_nc=3, preprocess="resize_and_crop", load_size=72, crop_size=64, no_flip=True,
        isTrain=True, auxiliary_tasks="rotation, gray, depth, jigsaw", jigsaw_size=48,
    )  # fmt: skip
    base.update(kw)
    return SimpleNamespace(**base)


def test_liss_dataset_items(tmp_path):
    from datasets.make_synthetic import make_synthetic

    root = make_synthetic(str(tmp_path / "syn"), size=64, n_train=3, n_test=1, depths=True)
    ds = LiSSDataset(_opt(root))
    item = ds[1]
    for d in ("A", "B"):
        assert item[d].shape == (3, 64, 64)
        assert item[f"{d}_rotation"].shape == (12, 64, 64) and item[f"{d}_jigsaw"].shape == (3, 48, 48)
        assert item[f"{d}_depth_target"].shape == (1, 64, 64) and item[f"{d}_gray"].shape == (3, 64, 64)
        # The rotation views are the item's own crop, turned as its target says.
        k = item[f"{d}_rotation_target"].tolist()
        for j in range(4):
            assert torch.equal(item[f"{d}_rotation"][3 * j : 3 * j + 3], torch.rot90(item[d], k[j], (-2, -1)))
    again = ds[1]
    assert all(torch.equal(item[k], again[k]) for k in item if not k.endswith("_paths"))
    # Without the depth task no depth map is needed (official: always read).
    for folder in ("trainA", "trainB"):
        for f in (tmp_path / "syn" / folder / "depths").iterdir():
            f.unlink()
    light = LiSSDataset(_opt(root, auxiliary_tasks="rotation"))[0]
    assert set(light) == {
        "A",
        "B",
        "A_paths",
        "B_paths",
        "A_rotation",
        "A_rotation_target",
        "B_rotation",
        "B_rotation_target",
    }
    with pytest.raises(ValueError, match="depth"):
        LiSSDataset(_opt(root, auxiliary_tasks="depth"))[0]


def test_liss_dataset_flip_is_consistent(tmp_path):
    from datasets.make_synthetic import make_synthetic

    root = make_synthetic(str(tmp_path / "syn"), size=64, n_train=2, n_test=1, depths=True)
    ds = LiSSDataset(_opt(root, no_flip=False, load_size=64, auxiliary_tasks="gray, depth"))
    unflipped = LiSSDataset(_opt(root, no_flip=True, load_size=64, auxiliary_tasks="gray, depth"))
    flipped = [i for i in range(8) if not torch.equal(ds[i]["A"], unflipped[i]["A"])]
    assert flipped, "some item should be flipped with flips on"
    i = flipped[0]
    a, b = ds[i], unflipped[i]
    assert torch.equal(a["A"], b["A"].flip(-1))
    assert torch.equal(a["A_depth_target"], b["A_depth_target"].flip(-1))
    assert torch.equal(a["A_gray"], b["A_gray"].flip(-1))
