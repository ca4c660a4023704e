"""LiSS data (``--dataset_mode liss``): unpaired images plus the self-supervised targets of each enabled task.

For each domain X of an item (``X`` is the image, as in :class:`UnalignedDataset`), and only for the tasks in
``--auxiliary_tasks``, the official pipeline (vict0rsch/LiSS ``data/base_dataset.py``) adds:

- ``X_rotation`` (12, H, W): the crop turned counter-clockwise by 90*k for k in a random permutation of 0..3,
  concatenated on channels; ``X_rotation_target`` (4,) int64 = that permutation (the model views them as
  (4B, 3, H, W) and (4B,)).
- ``X_jigsaw`` (3, J, J): a random J x J window (J = ``--jigsaw_size``, official 222) of the crop, cut in 3x3
  tiles and reassembled so that output tile j is input tile ``JIGSAW_PERMUTATIONS[k][j]``;
  ``X_jigsaw_target`` () int64 = k.
- ``X_depth_target`` (1, H, W) float32: ``(log(1 / (d + 1e-6)) - 2) / 2`` where d is the MegaDepth PNG
  ``<image dir>/depths/<stem>.png`` under the image's resize/crop/flip, divided by 255 only when its maximum
  exceeds 1 (official). Read only when the depth task is on (official: always, known official bug 8).
- ``X_gray`` (3, H, W): the crop in PIL 'L' (ITU-R 601-2 luma), repeated to three channels, in [-1, 1].

Differences from the official loader, all deliberate:

- Every draw comes from the item's generator, in this order per domain: crop and flip (base class), rotation
  permutation, jigsaw class, jigsaw window top and left. The official code mixes NumPy's global RNG with
  torch's (torchvision ``RandomCrop`` for the jigsaw window), so its draws cannot be replayed; the functions
  below take the draws explicitly, so recorded official draws reproduce its tensors exactly.
- The crop offset bound is inclusive (the official ``np.random.randint(0, load - crop)`` never picks the last
  offset and fails when load == crop, known official bug 6); that is the base class's crop.
- Flips: the official loader draws a flip and never applies it (known official bug 5). The LiSS model therefore defaults
  to ``--no_flip``; with flips on, the image, its depth map and every task input are flipped together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from data.image_io import DataError, load_image
from data.transforms import apply_geometry, to_tensor
from data.unaligned_dataset import UnalignedDataset, aux_target_path
from models.networks.liss import JIGSAW_PERMUTATIONS, JIGSAW_SIZE, parse_tasks

__all__ = [
    "LiSSDataset",
    "depth_target",
    "draw_task_params",
    "gray_input",
    "jigsaw_input",
    "rotation_input",
    "task_targets",
]


def rotation_input(img: torch.Tensor, perm: Sequence[int]) -> torch.Tensor:
    """(C, H, W) -> (4C, H, W): ``img`` turned counter-clockwise by 90*k for each k of ``perm``, in order.

    ``torch.rot90(k, dims=(-2, -1))`` equals PIL's ``rotate(90*k)`` on square images (both are exact
    transposes there), which is what the official loader applies.
    """
    if img.shape[-1] != img.shape[-2]:
        raise DataError(f"the rotation task needs square crops, got {tuple(img.shape[-2:])}")
    return torch.cat([torch.rot90(img, int(k), dims=(-2, -1)) for k in perm], dim=0)


def jigsaw_input(img: torch.Tensor, index: int, top: int, left: int, size: int = JIGSAW_SIZE) -> torch.Tensor:
    """The ``size`` x ``size`` window at (top, left) of ``img`` (C, H, W) with its 3x3 tiles shuffled.

    Output tile j (row-major) is input tile ``JIGSAW_PERMUTATIONS[index][j]``, as in the official ``_Jigsaw``.
    """
    if size % 3:
        raise ValueError(f"the jigsaw window must split into 3x3 equal tiles, got size {size}")
    tile = size // 3
    window = img[..., top : top + size, left : left + size]
    if window.shape[-2:] != (size, size):
        raise DataError(
            f"jigsaw window {size} at ({top}, {left}) does not fit in a {tuple(img.shape[-2:])} crop"
        )
    tiles = [
        window[..., r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] for r in range(3) for c in range(3)
    ]
    order = JIGSAW_PERMUTATIONS[index]
    rows = [torch.cat([tiles[order[3 * r + c]] for c in range(3)], dim=-1) for r in range(3)]
    return torch.cat(rows, dim=-2)


def depth_target(depth: Image.Image) -> torch.Tensor:
    """(1, H, W) float32 log inverse depth, ``(log(1 / (d + 1e-6)) - 2) / 2``, from an 8-bit MegaDepth map.

    The official ``custom_depth`` divides by 255 only when the map's maximum exceeds 1 and computes in float64;
    the result is cast to float32 here rather than in the loss (same values).
    """
    d = np.asarray(depth, dtype=np.float64)
    if d.max() > 1.0:
        d = d / 255.0
    t = np.log(1.0 / (d + 1e-6))
    return torch.from_numpy((t - 2.0) / 2.0).to(torch.float32).reshape(1, *d.shape[-2:])


def gray_input(img: Image.Image) -> torch.Tensor:
    """(3, H, W) in [-1, 1]: PIL's 'L' conversion of ``img`` on three channels (the colorisation input)."""
    return to_tensor(img.convert("L")).repeat(3, 1, 1)


def draw_task_params(
    rng: np.random.Generator, tasks: Sequence[str], crop_hw: tuple[int, int], jigsaw_size: int = JIGSAW_SIZE
) -> dict[str, Any]:
    """The random choices of the enabled tasks, drawn from ``rng`` in a fixed order (module docstring)."""
    params: dict[str, Any] = {}
    if "rotation" in tasks:
        params["rotation"] = [int(k) for k in rng.permutation(4)]
    if "jigsaw" in tasks:
        h, w = crop_hw
        if h < jigsaw_size or w < jigsaw_size:
            raise DataError(f"--jigsaw_size {jigsaw_size} is larger than the {h}x{w} crop")
        index = int(rng.integers(len(JIGSAW_PERMUTATIONS)))
        top = int(rng.integers(0, h - jigsaw_size + 1))  # inclusive bound, as torchvision's RandomCrop
        left = int(rng.integers(0, w - jigsaw_size + 1))
        params["jigsaw"] = (index, top, left)
    return params


def task_targets(
    domain: str,
    img: Image.Image,
    task_params: dict[str, Any],
    *,
    tasks: Sequence[str],
    depth: Image.Image | None = None,
    jigsaw_size: int = JIGSAW_SIZE,
) -> dict[str, torch.Tensor]:
    """The task entries of batch key ``domain`` from its crop ``img`` (and depth map), given the draws."""
    out: dict[str, torch.Tensor] = {}
    real = to_tensor(img)
    if "rotation" in tasks:
        perm = task_params["rotation"]
        out[f"{domain}_rotation"] = rotation_input(real, perm)
        out[f"{domain}_rotation_target"] = torch.tensor(perm, dtype=torch.int64)
    if "jigsaw" in tasks:
        index, top, left = task_params["jigsaw"]
        out[f"{domain}_jigsaw"] = jigsaw_input(real, index, top, left, jigsaw_size)
        out[f"{domain}_jigsaw_target"] = torch.tensor(index, dtype=torch.int64)
    if "depth" in tasks:
        if depth is None:
            raise ValueError("the depth task needs the depth map")
        out[f"{domain}_depth_target"] = depth_target(depth)
    if "gray" in tasks:
        out[f"{domain}_gray"] = gray_input(img)
    return out


class LiSSDataset(UnalignedDataset):
    """:class:`UnalignedDataset` whose items also carry the LiSS task inputs and targets.

    Reads ``opt.auxiliary_tasks`` and ``opt.jigsaw_size`` (options of ``--model liss``). Images must be RGB
    (``--input_nc``/``--output_nc`` 3): the official pipeline has no grayscale path.
    """

    def __init__(self, opt: Any) -> None:
        super().__init__(opt)
        if not hasattr(opt, "auxiliary_tasks"):
            raise ValueError(
                "--dataset_mode liss reads --auxiliary_tasks and --jigsaw_size: use it with --model liss"
            )
        self.tasks = parse_tasks(opt.auxiliary_tasks)
        self.jigsaw_size = int(getattr(opt, "jigsaw_size", JIGSAW_SIZE))
        if opt.input_nc != 3 or opt.output_nc != 3:
            raise ValueError("LiSS tasks need RGB images: use --input_nc 3 --output_nc 3")

    def extra_targets(self, path: str, domain: str, params: dict, rng: np.random.Generator) -> dict:
        if not self.tasks:
            return {}
        # The base class returns only the normalised tensor, so the crop is rebuilt from the file, same
        # geometry (a second decode; resize, crop and flip are deterministic given ``params``).
        source = load_image(path, 3)
        img = apply_geometry(source, self.opt, params, load_size=self.load_size, path=path)
        depth = None
        if "depth" in self.tasks:
            depth_path = aux_target_path(path, "depths")
            depth = load_image(depth_path, 1)
            if depth.size != source.size and self.opt.preprocess != "resize_and_crop":
                # resize_and_crop brings both to load_size x load_size anyway (the official path); other modes
                # crop in image pixels, so a depth map saved at another size is first brought to the image's.
                depth = depth.resize(source.size, Image.BICUBIC)
            depth = apply_geometry(depth, self.opt, params, load_size=self.load_size, path=depth_path)
        crop_hw = (img.size[1], img.size[0])
        task_params = draw_task_params(rng, self.tasks, crop_hw, self.jigsaw_size)
        return task_targets(
            domain, img, task_params, tasks=self.tasks, depth=depth, jigsaw_size=self.jigsaw_size
        )
