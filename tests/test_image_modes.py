"""How image files of every mode, orientation and name are read for training, test.py and the demo.

Ordinary 8-bit RGB/L files must give the official CycleGAN pixels (``Image.open(path).convert('RGB')``);
the other modes must neither crash nor come out clipped, black or sideways.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

import data.image_io as image_io
from data.image_io import image_size, list_images, load_image, read_image_list
from data.single_dataset import SingleDataset
from data.unaligned_dataset import UnalignedDataset
from tests.test_data import make_opt


def _save(img: Image.Image, path, **kwargs) -> str:
    img.save(path, **kwargs)
    return str(path)


def _pixels(path: str, channels: int = 3) -> np.ndarray:
    return np.asarray(load_image(path, channels))


def _official(path: str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


@pytest.fixture(autouse=True)
def _fresh_minmax_warning(monkeypatch):
    """The min-max warning is printed once per process; each test starts as a fresh process would."""
    monkeypatch.setattr(image_io, "_MINMAX_WARNED", [False])


# ---------------------------------------------------------------- 8-bit parity with the official code


@pytest.mark.parametrize(
    "name", ["rgb.png", "rgb.JPG", "rgb.webp", "rgb.tif", "rgb.bmp", "gray.png", "gray.jpg"]
)
def test_8bit_rgb_and_gray_match_official_pixels(tmp_path, name):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    img = Image.fromarray(array).convert("L") if name.startswith("gray") else Image.fromarray(array)
    path = _save(img, tmp_path / name)
    assert np.array_equal(_pixels(path), _official(path))


# ---------------------------------------------------------------- 16-bit and float


def test_16bit_png_is_scaled_by_its_range_not_clipped(tmp_path):
    path = _save(Image.fromarray(np.array([[0, 1000, 40000, 65535]], np.uint16)), tmp_path / "g16.png")
    assert _official(path)[0, 2].tolist() == [255, 255, 255]  # what convert('RGB') alone would give
    assert _pixels(path)[0, :, 0].tolist() == [0, 4, 156, 255]
    assert _pixels(path, 1)[0].tolist() == [0, 4, 156, 255]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.25, 0.5, 1.0], [0, 64, 128, 255]),  # [0, 1] data
        ([0.0, 10.0, 128.0, 255.0], [0, 10, 128, 255]),  # [0, 255] data
    ],
)
def test_float_tiff_in_a_known_range_is_scaled_without_warning(tmp_path, capsys, values, expected):
    path = _save(Image.fromarray(np.array([values], np.float32)), tmp_path / "f.tif")
    assert _pixels(path)[0, :, 0].tolist() == expected
    assert "warning" not in capsys.readouterr().out


def test_float_tiff_of_unknown_range_is_stretched_with_one_warning(tmp_path, capsys):
    first = _save(Image.fromarray(np.array([[-1.0, 0.0, 0.5, 1.0]], np.float32)), tmp_path / "a.tif")
    second = _save(Image.fromarray(np.array([[0, 1000, 40000, 100000]], np.int32)), tmp_path / "b.tif")
    assert _pixels(first)[0, :, 0].tolist() == [0, 128, 191, 255]
    assert _pixels(second)[0, :, 0].tolist() == [0, 3, 102, 255]
    out = capsys.readouterr().out
    assert out.count("warning") == 1 and "a.tif" in out and "min-max" in out


# ---------------------------------------------------------------- transparency, palette, 1-bit, CMYK


def _palette(transparency=None) -> Image.Image:
    img = Image.new("P", (3, 1))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    img.putdata([0, 1, 2])
    if transparency is not None:
        img.info["transparency"] = transparency
    return img


@pytest.mark.parametrize(
    ("img", "name", "expected"),
    [
        (Image.new("RGBA", (3, 1), (0, 0, 0, 0)), "rgba.png", [255, 255, 255]),
        (Image.new("RGBA", (3, 1), (0, 0, 0, 0)), "rgba.webp", [255, 255, 255]),
        (Image.new("LA", (3, 1), (0, 0)), "la.png", [255, 255, 255]),
        (_palette(transparency=0), "ptrans.png", [255, 255, 255]),
        (_palette(), "pal.png", [255, 0, 0]),
        (_palette(), "pal.bmp", [255, 0, 0]),
        (Image.new("1", (3, 1), 1), "bit.png", [255, 255, 255]),
        (Image.new("1", (3, 1), 1), "bit.tif", [255, 255, 255]),
        (Image.new("CMYK", (3, 1), (0, 255, 255, 0)), "cmyk.jpg", [255, 0, 0]),
        (Image.new("CMYK", (3, 1), (0, 255, 255, 0)), "cmyk.tif", [255, 0, 0]),
    ],
)
def test_other_modes_give_sensible_colours(tmp_path, img, name, expected):
    kwargs = {"lossless": True} if name.endswith(".webp") else {}
    path = _save(img, tmp_path / name, **kwargs)
    rgb = load_image(path, 3)
    assert rgb.mode == "RGB" and rgb.size == (3, 1)
    assert np.abs(np.asarray(rgb)[0, 0].astype(int) - expected).max() <= 2
    assert load_image(path, 1).mode == "L"


# ---------------------------------------------------------------- orientation


def _marked(size=(40, 20)) -> Image.Image:
    """Green with a red top-left corner, to see where a rotation put it."""
    img = Image.new("RGB", size, (0, 200, 0))
    img.paste((255, 0, 0), (0, 0, 6, 6))
    return img


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("name", ["phone6.jpg", "phone8.jpg", "phone6.png", "phone6.webp"])
def test_exif_orientation_is_upright_like_the_demo(tmp_path, name):
    path = _save(_marked(), tmp_path / name, exif=_exif(int(name[5])))
    with Image.open(path) as img:
        upright = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))  # what demo.py shows
    assert image_size(path) == (20, 40)
    assert np.abs(_pixels(path).astype(int) - upright).max() <= 2


def test_tiff_orientation_is_applied_once(tmp_path):
    """Pillow turns a TIFF by its Orientation tag on load; turning it again showed it upside down and sideways."""
    path = _save(_marked(), tmp_path / "scan.tif", exif=_exif(6))
    assert image_size(path) == (20, 40)
    assert np.array_equal(_pixels(path), _official(path))


def test_test_py_input_dir_photos_are_upright(tmp_path):
    """test.py --input_dir reads through SingleDataset: a portrait phone photo must stay portrait."""
    _save(_marked(), tmp_path / "IMG_0001.JPG", exif=_exif(6))
    opt = make_opt(tmp_path, preprocess="none", isTrain=False, no_flip=True)
    dataset = SingleDataset(opt, folder=str(tmp_path))
    assert dataset.sizes() == [(40, 20)]
    assert dataset[0]["size"] == (40, 20)


# ---------------------------------------------------------------- file names


def _macos_copy(folder) -> None:
    """A folder as copied from a Mac: images (any extension case), resource forks, .DS_Store."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ["a.JPG", "b.PNG", "c.webp", "d.tif", "e.jpeg"]:
        _save(Image.new("RGB", (8, 8), (9, 9, 9)), folder / name)
    for name in ["._a.JPG", "._b.PNG", "._c.webp"]:
        (folder / name).write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")


def test_resource_forks_are_skipped_with_one_warning(tmp_path, capsys):
    _macos_copy(tmp_path / "trainA")
    paths = list_images(str(tmp_path / "trainA"))
    assert [p.rsplit("/", 1)[1] for p in paths] == ["a.JPG", "b.PNG", "c.webp", "d.tif", "e.jpeg"]
    out = capsys.readouterr().out
    assert out.count("warning") == 1 and "skipped 3 macOS resource-fork" in out
    for path in paths:
        assert load_image(path, 3).size == (8, 8)


def test_resource_forks_are_skipped_in_class_folders(tmp_path, capsys):
    _macos_copy(tmp_path / "cats")
    _macos_copy(tmp_path / "dogs")
    paths = list_images(str(tmp_path), recursive=True)
    assert len(paths) == 10 and not any("/._" in p for p in paths)
    out = capsys.readouterr().out
    assert out.count("warning") == 1 and "skipped 6 macOS resource-fork" in out


def test_training_reads_a_folder_copied_from_macos(tmp_path):
    _macos_copy(tmp_path / "trainA")
    _macos_copy(tmp_path / "trainB")
    dataset = UnalignedDataset(make_opt(tmp_path))
    items = [dataset[i] for i in range(len(dataset))]
    assert len(items) == 5 and tuple(items[0]["A"].shape) == (3, 32, 32)


def test_a_list_naming_a_resource_fork_fails_at_start(tmp_path):
    _macos_copy(tmp_path / "imgs")
    (tmp_path / "list.txt").write_text("imgs/a.JPG\nimgs/._a.JPG\n")
    with pytest.raises(image_io.DataError, match=r"line 2: .*\._a\.JPG"):
        read_image_list(str(tmp_path / "list.txt"))


# ---------------------------------------------------------------- demo uploads


def test_demo_upload_of_a_16bit_png_is_not_white(tmp_path):
    import demo

    path = _save(Image.fromarray(np.full((4, 4), 40000, np.uint16)), tmp_path / "depth.png")
    img, note = demo.read_upload(path, max_pixels=1 << 20)
    assert img.mode == "RGB" and np.asarray(img)[0, 0].tolist() == [156, 156, 156]
    assert "converted to RGB" in note
