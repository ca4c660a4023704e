"""Behaviour of the data package: decoding odd files, preprocessing, datasets, samplers, synthetic data."""

from __future__ import annotations

import argparse
import os
import random

import numpy as np
import pytest
import torch
from PIL import Image

import data
from data import DataError, create_dataloader, create_dataset, dataset_modes, find_dataset_class, set_epoch
from data.class_folder_dataset import ClassFolderDataset
from data.image_io import image_size, list_images, load_image
from data.samplers import EpochSampler, SizeGroupedBatchSampler
from data.single_dataset import SingleDataset
from data.transforms import apply_geometry, get_transform, sample_params
from data.unaligned_dataset import UnalignedDataset, aux_target_path
from datasets.make_synthetic import MANIFEST, domain_statistic, make_synthetic


def make_opt(root, **overrides) -> argparse.Namespace:
    opt = dict(
        dataroot=str(root),
        phase="train",
        direction="AtoB",
        load_size=36,
        crop_size=32,
        preprocess="resize_and_crop",
        no_flip=False,
        serial_batches=False,
        max_dataset_size=float("inf"),
        input_nc=3,
        output_nc=3,
        seed=0,
        isTrain=True,
        dataset_mode="unaligned",
        num_threads=0,
    )
    opt.update(overrides)
    return argparse.Namespace(**opt)


def write_rgb(path, w, h, value) -> str:
    """A noisy image whose mean colour encodes ``value`` (so different files give different tensors)."""
    rng = np.random.default_rng(value)
    pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    pixels[..., 0] = value
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path)
    return str(path)


@pytest.fixture
def unaligned_root(tmp_path):
    """trainA: 3 images (40x48), trainB: 5 images (48x40), testA/testB: 1 each."""
    for i in range(3):
        write_rgb(tmp_path / "trainA" / f"a{i}.png", 40, 48, 10 + i)
    for i in range(5):
        write_rgb(tmp_path / "trainB" / f"b{i}.jpg", 48, 40, 100 + i)
    write_rgb(tmp_path / "testA" / "t.png", 40, 40, 1)
    write_rgb(tmp_path / "testB" / "t.png", 40, 40, 2)
    return tmp_path


# ---------------------------------------------------------------- image_io


def test_list_images_sorted_any_case_not_recursive(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.Tiff", "d.webp", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "depths").mkdir()
    (tmp_path / "depths" / "a.png").write_bytes(b"x")
    names = [os.path.basename(p) for p in list_images(str(tmp_path))]
    assert names == ["a.jpg", "b.PNG", "c.Tiff", "d.webp"]
    deep = list_images(str(tmp_path), recursive=True)
    assert os.path.join(str(tmp_path), "depths", "a.png") in deep and len(deep) == 5


def test_list_images_errors_name_the_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="nope") as err:
        list_images(str(missing), what="domain A images")
    assert "domain A images" in str(err.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"no images found in .*empty"):
        list_images(str(tmp_path / "empty"))
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="not a directory"):
        list_images(str(tmp_path / "file.png"))


def _save(img: Image.Image, path) -> str:
    img.save(path)
    return str(path)


def test_grayscale_and_bilevel(tmp_path):
    gray = np.array([[0, 100], [200, 255]], np.uint8)
    path = _save(Image.fromarray(gray), tmp_path / "g.png")
    one = load_image(path, 1)
    assert one.mode == "L" and np.array_equal(np.asarray(one), gray)
    three = np.asarray(load_image(path, 3))
    assert three.shape == (2, 2, 3) and all(np.array_equal(three[..., c], gray) for c in range(3))
    bilevel = _save(Image.fromarray(gray > 150).convert("1"), tmp_path / "b.png")
    assert np.array_equal(np.asarray(load_image(bilevel, 1)), np.array([[0, 0], [255, 255]]))


def _palette_image() -> Image.Image:
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    return img


def test_palette_with_and_without_transparency(tmp_path):
    plain = _save(_palette_image(), tmp_path / "p.png")
    assert np.asarray(load_image(plain, 3)).tolist() == [[[255, 0, 0], [0, 0, 255]]]
    transparent = _palette_image()
    transparent.info["transparency"] = 0  # the red entry is transparent: it must become white
    path = _save(transparent, tmp_path / "pt.png")
    assert np.asarray(load_image(path, 3)).tolist() == [[[255, 255, 255], [0, 0, 255]]]


def test_alpha_is_composited_over_white(tmp_path):
    rgba = Image.new("RGBA", (2, 1))
    rgba.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent black: white after compositing
    rgba.putpixel((1, 0), (255, 0, 0, 255))
    path = _save(rgba, tmp_path / "a.png")
    assert np.asarray(load_image(path, 3)).tolist() == [[[255, 255, 255], [255, 0, 0]]]
    la = Image.new("LA", (1, 1), (0, 0))
    assert np.asarray(load_image(_save(la, tmp_path / "la.png"), 1)).tolist() == [[255]]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = _save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "c.jpg")
    img = load_image(path, 3)
    assert img.mode == "RGB"
    assert np.abs(np.asarray(img)[4, 4].astype(int) - [255, 0, 0]).max() <= 3


SIXTEEN_BIT = np.array([[0, 1000, 25700, 65535]], np.uint16)
EXPECTED_8BIT = [[0, 4, 100, 255]]  # x / 257, rounded; clipping would give [0, 255, 255, 255]


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    path = _save(Image.fromarray(SIXTEEN_BIT), tmp_path / "g16.png")
    assert Image.open(path).mode == "I;16"
    assert np.asarray(load_image(path, 1)).tolist() == EXPECTED_8BIT
    assert np.asarray(load_image(path, 3))[0, :, 1].tolist() == EXPECTED_8BIT[0]


def test_16bit_big_endian_and_32bit_tiff(tmp_path):
    big = Image.frombytes("I;16B", (4, 1), SIXTEEN_BIT.astype(">u2").tobytes())
    path = _save(big, tmp_path / "g16b.tif")
    assert Image.open(path).mode == "I;16B"
    assert np.asarray(load_image(path, 1)).tolist() == EXPECTED_8BIT
    path32 = _save(Image.fromarray(SIXTEEN_BIT.astype(np.int32)), tmp_path / "i32.tif")
    assert Image.open(path32).mode == "I"
    assert np.asarray(load_image(path32, 1)).tolist() == EXPECTED_8BIT


def test_float_tiff_ranges(tmp_path):
    unit = _save(Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)), tmp_path / "f.tif")
    assert Image.open(unit).mode == "F"
    assert np.asarray(load_image(unit, 1)).tolist() == [[0, 128, 255]]
    wide = _save(Image.fromarray(np.array([[-1.0, 1.0, 3.0]], np.float32)), tmp_path / "w.tif")
    assert np.asarray(load_image(wide, 1)).tolist() == [[0, 128, 255]]  # min-max stretched


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_truncated_file_names_the_file(tmp_path, ext):
    good = write_rgb(tmp_path / f"good.{ext}", 64, 64, 7)
    raw = open(good, "rb").read()
    bad = tmp_path / f"truncated.{ext}"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated") as err:
        load_image(str(bad), 3)
    assert str(bad) in str(err.value)
    garbage = tmp_path / f"garbage.{ext}"
    garbage.write_bytes(b"definitely not an image")
    with pytest.raises(DataError, match="garbage"):
        load_image(str(garbage), 3)
    with pytest.raises(DataError, match="garbage"):
        image_size(str(garbage))


def test_exif_orientation_is_applied_consistently(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = str(tmp_path / "phone.jpg")
    Image.new("RGB", (40, 20), (0, 200, 0)).save(path, exif=exif.tobytes())
    assert image_size(path) == (20, 40)
    assert load_image(path, 3).size == (20, 40)
    assert image_size(write_rgb(tmp_path / "p.png", 30, 10, 1)) == (30, 10)


# ---------------------------------------------------------------- transforms


@pytest.mark.parametrize(
    ("preprocess", "shape"),
    [
        ("resize_and_crop", (3, 32, 32)),
        ("crop", (3, 32, 32)),
        ("scale_width", (3, 32, 36)),  # 48x40 -> width 36, height max(30, crop 32)
        ("scale_width_and_crop", (3, 32, 32)),
        ("none", (3, 40, 48)),  # own size, not rounded to a multiple of 4
    ],
)
def test_preprocess_shapes_and_range(preprocess, shape):
    opt = make_opt(".", preprocess=preprocess)
    img = Image.new("RGB", (48, 40), (255, 0, 51))
    params = sample_params(opt, img.size, np.random.default_rng(0))
    out = get_transform(opt, params)(img)
    assert out.dtype == torch.float32 and tuple(out.shape) == shape
    assert torch.allclose(out[:, 5, 5], torch.tensor([1.0, -1.0, 51 / 255 * 2 - 1]), atol=1e-6)
    gray = get_transform(opt, params, grayscale=True, normalize=False)(img)
    assert gray.shape[0] == 1 and 0.0 <= gray.min() and gray.max() <= 1.0


def test_crop_position_and_flip_are_exact():
    opt = make_opt(".", preprocess="crop", crop_size=4)
    xs = np.tile(np.arange(10, dtype=np.uint8) * 20, (8, 1))
    ys = np.tile(np.arange(8, dtype=np.uint8)[:, None] * 30, (1, 10))
    img = Image.fromarray(np.stack([xs, ys, xs], axis=-1))
    out = get_transform(opt, {"crop_pos": (5, 3), "flip": False}, normalize=False)(img)
    assert round(float(out[0, 0, 0]) * 255) == 5 * 20 and round(float(out[1, 0, 0]) * 255) == 3 * 30
    flipped = get_transform(opt, {"crop_pos": (5, 3), "flip": True}, normalize=False)(img)
    assert torch.equal(flipped, out.flip(-1))
    centred = get_transform(opt, None, normalize=False)(img)  # no params: centred crop, no flip
    assert round(float(centred[0, 0, 0]) * 255) == 3 * 20 and round(float(centred[1, 0, 0]) * 255) == 2 * 30


def test_sample_params_flip_rules_and_determinism():
    train = make_opt(".")
    draws = [sample_params(train, (48, 40), np.random.default_rng([0, 0, i])) for i in range(32)]
    assert draws == [sample_params(train, (48, 40), np.random.default_rng([0, 0, i])) for i in range(32)]
    assert {d["flip"] for d in draws} == {True, False}
    assert all(0 <= d["crop_pos"][0] <= 4 and 0 <= d["crop_pos"][1] <= 4 for d in draws)
    no_flip = make_opt(".", no_flip=True)
    no_flip_draws = [sample_params(no_flip, (48, 40), np.random.default_rng([0, 0, i])) for i in range(32)]
    assert not any(d["flip"] for d in no_flip_draws)
    assert [d["crop_pos"] for d in no_flip_draws] == [d["crop_pos"] for d in draws]
    test = make_opt(".", isTrain=False)
    assert sample_params(test, (48, 40), np.random.default_rng(1)) == {"crop_pos": (2, 2), "flip": False}


def test_load_size_override_resizes_to_crop():
    opt = make_opt(".", load_size=64, crop_size=32)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8))
    out = get_transform(opt, {"crop_pos": (0, 0), "flip": False}, load_size=32, normalize=False)(img)
    direct = np.asarray(img.resize((32, 32), Image.Resampling.BICUBIC)).transpose(2, 0, 1)
    assert torch.equal((out * 255).round().to(torch.uint8), torch.from_numpy(direct.copy()))


def test_image_smaller_than_crop_names_the_file(tmp_path):
    write_rgb(tmp_path / "trainA" / "tiny.png", 20, 20, 1)
    write_rgb(tmp_path / "trainB" / "ok.png", 40, 40, 2)
    dataset = UnalignedDataset(make_opt(tmp_path, preprocess="crop"))
    with pytest.raises(DataError, match="crop_size") as err:
        dataset[0]
    assert str(tmp_path / "trainA" / "tiny.png") in str(err.value)


# ---------------------------------------------------------------- datasets


def test_unaligned_items_channels_and_length(unaligned_root):
    dataset = UnalignedDataset(make_opt(unaligned_root, input_nc=1, output_nc=3))
    assert len(dataset) == 5
    item = dataset[4]
    assert set(item) == {"A", "B", "A_paths", "B_paths"}
    assert tuple(item["A"].shape) == (1, 32, 32) and tuple(item["B"].shape) == (3, 32, 32)
    assert item["A_paths"] == str(unaligned_root / "trainA" / "a1.png")  # 4 mod 3
    assert -1.0 <= float(item["B"].min()) and float(item["B"].max()) <= 1.0
    assert len(UnalignedDataset(make_opt(unaligned_root, max_dataset_size=2))) == 2


def _same_item(x: dict, y: dict) -> bool:
    return x["B_paths"] == y["B_paths"] and torch.equal(x["A"], y["A"]) and torch.equal(x["B"], y["B"])


def test_items_are_a_pure_function_of_seed_epoch_index(unaligned_root):
    first, second = UnalignedDataset(make_opt(unaligned_root)), UnalignedDataset(make_opt(unaligned_root))
    for ds in (first, second):
        ds.set_epoch(3)
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    forward = [first[i] for i in range(5)]
    backward = [second[i] for i in reversed(range(5))][::-1]
    assert all(_same_item(a, b) for a, b in zip(forward, backward, strict=True))
    assert torch.equal(states[0], torch.get_rng_state())  # global generators untouched
    assert np.array_equal(states[1], np.random.get_state()[1]) and states[2] == random.getstate()
    second.set_epoch(4)
    other = [second[i] for i in range(5)]
    assert not all(_same_item(a, b) for a, b in zip(forward, other, strict=True))
    assert [x["B_paths"] for x in forward] != [x["B_paths"] for x in other]
    assert not UnalignedDataset(make_opt(unaligned_root, seed=1))[0]["A"].equal(forward[0]["A"])


def test_serial_batches_pairs_by_index(unaligned_root):
    dataset = UnalignedDataset(make_opt(unaligned_root, serial_batches=True))
    names = [
        (os.path.basename(dataset[i]["A_paths"]), os.path.basename(dataset[i]["B_paths"])) for i in range(5)
    ]
    assert names == [
        ("a0.png", "b0.jpg"),
        ("a1.png", "b1.jpg"),
        ("a2.png", "b2.jpg"),
        ("a0.png", "b3.jpg"),
    ] + [("a1.png", "b4.jpg")]


def test_direction_btoa_swaps_folders(unaligned_root):
    dataset = UnalignedDataset(make_opt(unaligned_root, direction="BtoA", input_nc=1, output_nc=3))
    item = dataset[0]
    assert os.path.dirname(item["A_paths"]) == str(unaligned_root / "trainB")
    assert os.path.dirname(item["B_paths"]) == str(unaligned_root / "trainA")
    assert item["A"].shape[0] == 1 and item["B"].shape[0] == 3


def test_missing_phase_folder_lists_existing_ones(unaligned_root):
    with pytest.raises(DataError, match=r"valA.*testA, testB, trainA, trainB"):
        UnalignedDataset(make_opt(unaligned_root, phase="val"))
    with pytest.raises(DataError, match="not a folder"):
        UnalignedDataset(make_opt(unaligned_root / "missing"))


class DepthDataset(UnalignedDataset):
    """What LiSS does with the hook: a depth map with the image's own crop and flip."""

    def extra_targets(self, path, domain, params, rng):
        depth = load_image(aux_target_path(path), 1)
        geometry = apply_geometry(depth, self.opt, params, load_size=self.load_size)
        return {f"{domain}_depth": torch.from_numpy(np.asarray(geometry).copy())}


def test_extra_targets_follow_the_image_geometry(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    for domain in "AB":
        os.makedirs(tmp_path / f"train{domain}" / "depths")
        Image.fromarray(np.stack([pixels] * 3, -1)).save(tmp_path / f"train{domain}" / "x.png")
        Image.fromarray(pixels).save(tmp_path / f"train{domain}" / "depths" / "x.png")
    item = DepthDataset(make_opt(tmp_path, preprocess="crop"))[0]
    for domain in "AB":
        gray_image = ((item[domain][0] + 1) * 127.5).round().to(torch.uint8)
        assert torch.equal(gray_image, item[f"{domain}_depth"])
    os.remove(tmp_path / "trainB" / "depths" / "x.png")
    with pytest.raises(DataError, match=r"trainB.depths.x\.png"):
        DepthDataset(make_opt(tmp_path, preprocess="crop"))[0]


def test_single_dataset_folders_sizes_and_channels(tmp_path):
    write_rgb(tmp_path / "testA" / "a.png", 48, 40, 1)
    write_rgb(tmp_path / "testA" / "b.png", 30, 20, 2)
    write_rgb(tmp_path / "testA" / "c.png", 48, 40, 3)
    opt = make_opt(tmp_path, phase="test", isTrain=False, preprocess="none", dataset_mode="single")
    dataset = create_dataset(opt)
    assert isinstance(dataset, SingleDataset) and dataset.dir == str(tmp_path / "testA")
    assert dataset.sizes() == [(40, 48), (20, 30), (40, 48)]
    assert [dataset[i]["size"] for i in range(3)] == dataset.sizes()
    assert tuple(dataset[1]["A"].shape) == (3, 20, 30)
    direct = SingleDataset(make_opt(tmp_path / "testA", phase="test", preprocess="none"), channels=1)
    assert direct.dir == str(tmp_path / "testA") and direct[0]["A"].shape[0] == 1
    write_rgb(tmp_path / "other" / "z.png", 16, 24, 4)
    assert SingleDataset(opt, folder=str(tmp_path / "other")).sizes() == [(24, 16)]


def test_class_folder_labels_views_and_errors(tmp_path):
    for name, n in [("dog", 2), ("cat", 3), ("wild", 1)]:
        for i in range(n):
            write_rgb(tmp_path / "train" / name / f"{i}.png", 36, 36, i)
    (tmp_path / "test").mkdir()

    class TwoViews(ClassFolderDataset):
        def views(self, img_pil, rng):
            return {"A_tf": get_transform(self.opt, sample_params(self.opt, img_pil.size, rng))(img_pil)}

    dataset = TwoViews(make_opt(tmp_path, dataset_mode="class_folder"))
    assert dataset.classes == ["cat", "dog", "wild"] and dataset.class_to_idx == {
        "cat": 0,
        "dog": 1,
        "wild": 2,
    }
    assert dataset.targets == [0, 0, 0, 1, 1, 2]
    item = dataset[3]
    assert item["label"] == 1 and item["A_paths"].endswith(os.path.join("dog", "0.png"))
    assert tuple(item["A_tf"].shape) == (3, 32, 32)
    with pytest.raises(DataError, match="no class folders"):
        ClassFolderDataset(make_opt(tmp_path, phase="test"))
    with pytest.raises(DataError, match="check --phase"):
        ClassFolderDataset(make_opt(tmp_path, phase="val"))
    os.makedirs(tmp_path / "train" / "empty")
    with pytest.raises(DataError, match="class 'empty'"):
        ClassFolderDataset(make_opt(tmp_path))


# ---------------------------------------------------------------- samplers and loader


def test_epoch_sampler_order_and_resume():
    sampler = EpochSampler(10, shuffle=True, seed=3)
    sampler.set_epoch(1)
    order = list(sampler)
    assert sorted(order) == list(range(10)) and order != list(range(10))
    again = EpochSampler(10, shuffle=True, seed=3)
    again.set_epoch(1)
    assert list(again) == order
    again.set_epoch(2)
    assert list(again) != order
    sampler.set_start(4)
    assert list(sampler) == order[4:] and len(sampler) == 6
    sampler.set_epoch(1)
    assert len(sampler) == 10
    assert list(EpochSampler(5, shuffle=False, seed=3)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("n", "world_size"), [(10, 3), (2, 4), (12, 4)])
def test_epoch_sampler_ddp_shards_cover_every_index(n, world_size):
    shards = []
    for rank in range(world_size):
        sampler = EpochSampler(n, shuffle=True, seed=0, rank=rank, world_size=world_size)
        sampler.set_epoch(5)
        shards.append(list(sampler))
        assert len(sampler) == len(shards[-1]) == -(-n // world_size)
    merged = [i for shard in shards for i in shard]
    assert set(merged) == set(range(n)) and len(merged) == -(-n // world_size) * world_size
    dropped = [
        list(EpochSampler(n, shuffle=True, seed=0, rank=r, world_size=world_size, drop_last=True))
        for r in range(world_size)
    ]
    flat = [i for shard in dropped for i in shard]
    assert len(flat) == len(set(flat)) == n - n % world_size


def test_size_grouped_batches():
    sizes = [(2, 2), (3, 3), (2, 2), (2, 2), (3, 3), (2, 2)]
    batches = list(SizeGroupedBatchSampler(sizes, 2))
    assert batches == [[0, 2], [1, 4], [3, 5]]
    assert len(SizeGroupedBatchSampler(sizes, 3)) == 3
    assert list(SizeGroupedBatchSampler([(1, 1)] * 5, 2)) == [[0, 1], [2, 3], [4]]


def test_registry():
    assert {"class_folder", "single", "unaligned"} <= set(dataset_modes())
    assert dataset_modes() == sorted(dataset_modes())
    assert find_dataset_class("unaligned") is UnalignedDataset
    with pytest.raises(ValueError, match="class_folder, .*single, .*unaligned"):
        find_dataset_class("aligned")
    assert data.get_option_setter("single")(argparse.ArgumentParser(), True) is not None


def _batches(loader, epoch, start=0):
    set_epoch(loader, epoch, start)
    return [(b["A_paths"], b["B_paths"], b["A"], b["B"]) for b in loader]


def test_dataloader_is_deterministic_across_workers_and_resume(unaligned_root):
    opt = make_opt(unaligned_root)
    loader = create_dataloader(create_dataset(opt), opt, shuffle=True, batch_size=2)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    plain = _batches(loader, 2)
    assert torch.equal(state, torch.get_rng_state())
    assert [len(b[0]) for b in plain] == [2, 2, 1]
    threaded_opt = make_opt(unaligned_root, num_threads=2)
    threaded = create_dataloader(create_dataset(threaded_opt), threaded_opt, shuffle=True, batch_size=2)
    for x, y in zip(plain, _batches(threaded, 2), strict=True):
        assert x[0] == y[0] and x[1] == y[1] and torch.equal(x[2], y[2]) and torch.equal(x[3], y[3])
    resumed = _batches(loader, 2, start=2)
    assert resumed[0][0] == plain[1][0] and torch.equal(resumed[0][3], plain[1][3])
    dropped = create_dataloader(create_dataset(opt), opt, shuffle=False, batch_size=2, drop_last=True)
    assert len(dropped) == 2


# ---------------------------------------------------------------- synthetic data


def _folder_bytes(root) -> dict:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name != MANIFEST:
                out[os.path.relpath(os.path.join(dirpath, name), root)] = open(
                    os.path.join(dirpath, name), "rb"
                ).read()
    return out


def test_synthetic_is_deterministic_and_idempotent(tmp_path):
    first = make_synthetic(str(tmp_path / "x"), n_train=4, n_test=2, seed=5)
    second = make_synthetic(str(tmp_path / "y"), n_train=4, n_test=2, seed=5)
    assert _folder_bytes(first) == _folder_bytes(second)
    assert sorted(os.listdir(first)) == sorted(
        ["trainA", "trainB", "testA", "testB", "valA", "valB", MANIFEST]
    )
    stamp = os.stat(os.path.join(first, "trainA", "a_0000.png")).st_mtime_ns
    make_synthetic(first, n_train=4, n_test=2, seed=5)
    assert os.stat(os.path.join(first, "trainA", "a_0000.png")).st_mtime_ns == stamp
    (tmp_path / "x" / "keep.txt").write_text("user file")
    make_synthetic(first, n_train=2, n_test=2, seed=6)
    assert len(os.listdir(os.path.join(first, "trainA"))) == 2 and (tmp_path / "x" / "keep.txt").exists()
    assert _folder_bytes(first)["trainA/a_0000.png"] != _folder_bytes(second)["trainA/a_0000.png"]
    make_synthetic(first, layout="single", n_train=2, seed=6)  # old folders go, the user's file stays
    assert sorted(os.listdir(first)) == ["a_0000.png", "a_0001.png", "keep.txt", MANIFEST]


def test_synthetic_domain_statistic_separates_domains(tmp_path):
    root = make_synthetic(str(tmp_path / "u"), n_train=8, n_test=2, seed=0)
    dataset = UnalignedDataset(make_opt(root, serial_batches=True))
    for i in range(len(dataset)):
        item = dataset[i]
        assert domain_statistic(item["A"]) > 0.2 and domain_statistic(item["B"]) < -0.2
    batch = torch.stack([dataset[i]["A"] for i in range(4)])
    assert domain_statistic(batch) > 0.2
    raw = np.asarray(Image.open(os.path.join(root, "trainB", "b_0000.png")))
    assert domain_statistic(raw) < -0.2
    assert domain_statistic(torch.zeros(3, 4, 4)) == 0.0


def test_synthetic_single_and_class_layouts_load(tmp_path):
    single = make_synthetic(str(tmp_path / "s"), layout="single", n_train=3, depths=True)
    dataset = SingleDataset(make_opt(single, phase="test", isTrain=False, preprocess="none"))
    assert len(dataset) == 3 and tuple(dataset[0]["A"].shape) == (3, 32, 32)
    assert os.path.isfile(aux_target_path(dataset.paths[0]))
    classes = make_synthetic(str(tmp_path / "c"), layout="class_folder", n_train=2, n_test=1, n_classes=5)
    train = ClassFolderDataset(make_opt(classes))
    assert train.classes == ["0_circle", "1_triangle", "2_square", "3_cross", "4_circle"]
    assert train.targets == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert len(ClassFolderDataset(make_opt(classes, phase="test"))) == 5


def _list_root(tmp_path):
    """One image folder per domain plus list files naming part of them, in a custom order."""
    for name, values in (("imgs_a", (1, 2, 3)), ("imgs_b", (7, 8))):
        for v in values:
            write_rgb(tmp_path / name / f"{v}.png", 40, 40, v)
    (tmp_path / "a.txt").write_text("# split A\n3.png\n\n1.png\n")
    (tmp_path / "b.txt").write_text(f"{tmp_path / 'imgs_b' / '8.png'}\n")  # absolute lines stay as they are
    return tmp_path


def test_list_mode_reads_the_listed_images_in_order(tmp_path):
    root = _list_root(tmp_path)
    opt = make_opt(root / "nowhere", list_A=str(root / "a.txt"), list_root_A=str(root / "imgs_a"),
                   list_B=str(root / "b.txt"), list_root_B="")  # fmt: skip
    ds = UnalignedDataset(opt)
    assert [os.path.basename(p) for p in ds.A_paths] == ["3.png", "1.png"]
    assert ds.B_paths == [str(root / "imgs_b" / "8.png")]
    item = ds[1]
    assert item["A_paths"].endswith("1.png") and item["A"].shape == (3, 32, 32)
    # --direction BtoA swaps the lists like it swaps the folders.
    swapped = UnalignedDataset(make_opt(root / "nowhere", direction="BtoA", **{
        k: getattr(opt, k) for k in ("list_A", "list_root_A", "list_B", "list_root_B")}))  # fmt: skip
    assert swapped.A_paths == ds.B_paths


def test_list_mode_errors_name_the_file_and_lines(tmp_path):
    root = _list_root(tmp_path)
    with pytest.raises(DataError, match="list file of domain A images not found: .*missing.txt"):
        UnalignedDataset(make_opt(root, list_A=str(root / "missing.txt")))
    (root / "bad.txt").write_text("3.png\nnot_there.png\nnotes.txt\n")
    with pytest.raises(DataError, match=r"line 2: .*not_there.png; line 3: .*notes.txt"):
        UnalignedDataset(make_opt(root, list_A=str(root / "bad.txt"), list_root_A=str(root / "imgs_a")))
    (root / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(DataError, match="names no domain A images"):
        UnalignedDataset(make_opt(root, list_A=str(root / "empty.txt")))
    with pytest.raises(DataError, match="root folder for the list"):
        UnalignedDataset(make_opt(root, list_A=str(root / "a.txt"), list_root_A=str(root / "no_dir")))
