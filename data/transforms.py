"""The ``--preprocess`` modes of the CycleGAN/CUT repos, driven by explicit random parameters.

The official code draws crops and flips from Python's and torch's global generators inside the transform, so a
resumed run (or a different worker count) sees different data. Here :func:`sample_params` draws them from a
``numpy.random.Generator`` the dataset seeds per item, and :func:`get_transform` only applies them.

Modes (``opt.preprocess``), as in the CycleGAN repo:

- ``resize_and_crop``: resize to load_size x load_size (aspect not kept), then crop crop_size x crop_size.
- ``crop``: crop crop_size x crop_size from the image at its own size.
- ``scale_width``: width := load_size, height keeps the aspect ratio but is at least crop_size.
- ``scale_width_and_crop``: ``scale_width``, then crop.
- ``none``: the image at its own size. The CycleGAN repo rounds sizes to a multiple of 4 here; this one does not,
  the test loop pads instead, so outputs keep the input's exact size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from data.image_io import DataError

PREPROCESS_MODES: tuple[str, ...] = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")


def _check_mode(opt: Any) -> str:
    if opt.preprocess not in PREPROCESS_MODES:
        raise ValueError(f"unknown --preprocess {opt.preprocess!r}; valid: {', '.join(PREPROCESS_MODES)}")
    return opt.preprocess


def resized_size(opt: Any, size_wh: tuple[int, int], load_size: int | None = None) -> tuple[int, int]:
    """(width, height) of an image of size ``size_wh`` after the resize step of ``opt.preprocess``."""
    mode = _check_mode(opt)
    load = opt.load_size if load_size is None else load_size
    w, h = size_wh
    if mode == "resize_and_crop":
        return load, load
    if mode.startswith("scale_width"):
        if w == load and h >= opt.crop_size:
            return w, h
        # int() truncation and the crop_size floor follow the CycleGAN repo's __scale_width.
        return load, int(max(load * h / w, opt.crop_size))
    return w, h


def output_size(opt: Any, size_wh: tuple[int, int], load_size: int | None = None) -> tuple[int, int]:
    """(height, width) of the tensor :func:`get_transform` makes from an image of size ``size_wh``."""
    w, h = resized_size(opt, size_wh, load_size)
    if "crop" in opt.preprocess:
        return opt.crop_size, opt.crop_size
    return h, w


def sample_params(
    opt: Any, size_wh: tuple[int, int], rng: np.random.Generator, *, load_size: int | None = None
) -> dict:
    """Crop position and flip for one image, drawn from ``rng`` in a fixed order (x, y, flip).

    Outside training the crop is centred and nothing is flipped (the official test transform crops at random,
    which only matters when load_size > crop_size). The flip is drawn even when flipping is off, so
    ``--no_flip`` does not shift the crops of later draws.
    """
    w, h = resized_size(opt, size_wh, load_size)
    room_x, room_y = max(0, w - opt.crop_size), max(0, h - opt.crop_size)
    if not opt.isTrain:
        return {"crop_pos": (room_x // 2, room_y // 2), "flip": False}
    x = int(rng.integers(0, room_x + 1))
    y = int(rng.integers(0, room_y + 1))
    flip = bool(rng.random() < 0.5)
    return {"crop_pos": (x, y), "flip": flip and not opt.no_flip}


def _too_small(path: str | None, opt: Any, size_wh: tuple[int, int], load: int) -> DataError:
    name = path if path is not None else "an image"
    w, h = size_wh
    if opt.preprocess == "crop":
        fix = "use a smaller --crop_size, --preprocess resize_and_crop, or remove the image"
        return DataError(f"{name} is {w}x{h}, smaller than --crop_size {opt.crop_size}: {fix}")
    fix = f"use --load_size >= --crop_size (now {load} < {opt.crop_size})"
    return DataError(
        f"{name} is {w}x{h} after --preprocess {opt.preprocess}, smaller than --crop_size: {fix}"
    )


def apply_geometry(
    img: Image.Image,
    opt: Any,
    params: dict | None = None,
    *,
    method: InterpolationMode = InterpolationMode.BICUBIC,
    load_size: int | None = None,
    path: str | None = None,
) -> Image.Image:
    """Resize, crop and flip a PIL image as ``opt.preprocess`` and ``params`` say; PIL in, PIL out.

    Exposed so that auxiliary targets (LiSS depth maps) get exactly the geometry of their image.
    ``params=None`` means no randomness: a centred crop and no flip. ``path`` only names the file in errors.
    """
    load = opt.load_size if load_size is None else load_size
    w, h = resized_size(opt, img.size, load)
    if (w, h) != img.size:
        img = F.resize(img, [h, w], interpolation=method)
    if "crop" in opt.preprocess:
        size = opt.crop_size
        if w < size or h < size:
            raise _too_small(path, opt, (w, h), load)
        x, y = params["crop_pos"] if params is not None else ((w - size) // 2, (h - size) // 2)
        x, y = min(max(x, 0), w - size), min(max(y, 0), h - size)
        if (w, h) != (size, size):
            img = F.crop(img, y, x, size, size)
    if params is not None and params.get("flip", False):
        img = F.hflip(img)
    return img


def to_tensor(img: Image.Image, normalize: bool = True) -> torch.Tensor:
    """(C, H, W) float32 tensor in [-1, 1] (``normalize``, i.e. Normalize(0.5, 0.5)) or in [0, 1]."""
    tensor = F.pil_to_tensor(img).to(torch.float32).div_(255.0)
    return tensor.mul_(2.0).sub_(1.0) if normalize else tensor


@dataclass(frozen=True)
class ImageTransform:
    """PIL image -> tensor with fixed parameters; a picklable callable (worker processes may copy it)."""

    opt: Any
    params: dict | None = None
    grayscale: bool = False
    method: InterpolationMode = InterpolationMode.BICUBIC
    normalize: bool = True
    load_size: int | None = None

    def __call__(self, img: Image.Image, path: str | None = None) -> torch.Tensor:
        if self.grayscale and img.mode != "L":
            img = img.convert("L")
        img = apply_geometry(
            img, self.opt, self.params, method=self.method, load_size=self.load_size, path=path
        )
        return to_tensor(img, self.normalize)


def get_transform(
    opt: Any,
    params: dict | None = None,
    *,
    grayscale: bool = False,
    method: InterpolationMode = InterpolationMode.BICUBIC,
    normalize: bool = True,
    load_size: int | None = None,
) -> Callable[..., torch.Tensor]:
    """The transform for one image: ``get_transform(opt, params)(img, path=None) -> Tensor``.

    ``load_size`` overrides ``opt.load_size``: the CUT repo resizes straight to crop_size in the decay phase.
    """
    _check_mode(opt)
    return ImageTransform(opt, params, grayscale, method, normalize, load_size)
