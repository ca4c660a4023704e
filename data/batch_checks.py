"""Image sizes the parse-time checks cannot see: they depend on the images themselves.

With ``--preprocess scale_width`` (no crop) or ``none`` each image keeps its aspect ratio, so its height is
only known once it is read. Two such images of different shapes cannot share a batch, and a side that is not
a multiple of what the generator keeps gives an output of another size (the cycle L1 then fails deep inside
the model). Both become one line naming the image and what to change, before any network runs.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.utils.data

from data.image_io import DataError


def _size(tensor: torch.Tensor) -> str:
    return f"{tensor.shape[-1]} x {tensor.shape[-2]}"


def _path(item: dict, key: str) -> str:
    path = item.get(f"{key}_paths", "?")
    return path[0] if isinstance(path, (list, tuple)) and path else str(path)


def collate(items: list[dict], preprocess: str = "") -> dict:
    """torch's default collation; images of different sizes in one batch are one line naming two of them."""
    try:
        return torch.utils.data.default_collate(items)
    except RuntimeError as exc:
        if "stack expects each tensor to be equal size" not in str(exc):
            raise
    for key, first in items[0].items():
        if not torch.is_tensor(first):
            continue
        other = next((item for item in items[1:] if item[key].shape != first.shape), None)
        if other is not None:
            raise DataError(
                f"images of different sizes in one batch: {_path(items[0], key)} is {_size(first)}, "
                f"{_path(other, key)} is {_size(other[key])} (--preprocess {preprocess} keeps each image's "
                f"aspect ratio); use --batch_size 1, or a --preprocess mode that crops to --crop_size"
            )
    raise DataError("images of different sizes in one batch")  # pragma: no cover - shapes differed above


def collate_for(opt: Any):
    """The collate function of a loader for these options (picklable, for worker processes)."""
    return functools.partial(collate, preprocess=getattr(opt, "preprocess", ""))


def check_size_multiple(batch: dict, multiple: int, opt: Any, min_size: int = 1) -> None:
    """A training batch whose height or width is not a multiple of ``multiple``, or under the networks'
    smallest side ``min_size`` (a 640 x 4 image under ``--preprocess none``), stops with the image's name."""
    for key, value in batch.items():
        if not (torch.is_tensor(value) and value.dim() == 4):
            continue
        height, width = value.shape[-2:]
        if min(height, width) < min_size:
            raise DataError(
                f"{_path(batch, key)} is {width} x {height} after --preprocess {opt.preprocess}: --model "
                f"{opt.model} with these options trains on sides of at least {min_size} px; use larger images "
                f"or a --preprocess mode that resizes them (resize_and_crop, scale_width_and_crop)"
            )
        if height % multiple or width % multiple:
            raise DataError(
                f"{_path(batch, key)} is {width} x {height} after --preprocess {opt.preprocess}: --model "
                f"{opt.model} trains on sides that are multiples of {multiple} (its generator would return "
                f"another size); use --preprocess scale_width_and_crop or resize_and_crop, or images whose "
                f"scaled sides are multiples of {multiple}"
            )
