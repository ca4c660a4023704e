"""Unpaired A/B images for U-GAT-IT (``--dataset_mode ugatit``): bilinear resizing, masks, the fork's options.

The official loader resizes with torchvision's default (bilinear) to (S+30)x(S+30) and crops S; the
framework's transforms default to bicubic, so this mode changes the interpolation. It also carries the data
options of enhanced-U-GAT-IT (zheng-yuwei/enhanced-UGATIT ``dataset.py``, ``UGATIT.build_data_loader``),
training only:

- ``--match_histograms`` (``--match_mode --match_prob --match_ratio``): before any resizing, one image of the
  pair gets the colour histograms of the other (:mod:`data.histogram`): with probability ``match_prob`` the B
  image is matched to the A image, otherwise A to B. ``match_ratio`` r moves each channel's CDF only part of
  the way, to (1 − r)·own + r·other. Fork bugs not kept: the coin came from NumPy's global generator (not
  reproducible; the same draws in every worker before PyTorch 1.9) and A_i was always paired with B_i
  (E9), so each A was always matched to the same B; here the B partner is drawn per item and every draw comes
  from the item's generator. A ratio outside [0, 1] or an unknown mode is rejected at parse time (the fork
  asserts on the mode only when the dataset is built, and treats any ratio above 1 as 1).
- ``--aug_prob`` p: with probability p a RandomResizedCrop with the fork's constants (a square of 74.8–100 %
  of the area, bicubic). Deviation: it is applied to the training crop and resized back to the crop's size
  (the fork applies it to the raw image before its shorter-side resize, which bug E10 replaces by the official
  square resize-and-crop); for a non-square output the crop keeps the output's aspect ratio. Masks get the
  same crop. Default 0 here (the official model has no such augmentation); ``--model ugatit_enhanced``
  sets the fork's 0.2.

With ``--mask_dir`` each image also gets a mask (enhanced-U-GAT-IT segmentation options):
``<mask_dir>/<image folder name>/<stem>.png``, a grey image where 255 marks the region to translate, resized,
cropped and flipped exactly like its image. The fork computes these masks with a BiSeNet face parser whose
weights it does not ship; here they are files.
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from data.histogram import MATCH_MODES, match_histograms
from data.image_io import DataError, load_image
from data.transforms import apply_geometry, output_size, sample_params, to_tensor
from data.unaligned_dataset import UnalignedDataset

AUG_SCALE = (0.748, 1.0)  # fork: RandomResizedCrop(scale=(0.748, 1.0), ratio=(1.0, 1.0), bicubic)


def probability(value: str) -> float:
    """argparse type: a float in [0, 1]."""
    try:
        p = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}") from None
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}")
    return p


def _as_hwc(img: Image.Image) -> np.ndarray:
    """uint8 (H, W, C) array of an 'L' or 'RGB' image."""
    return np.asarray(img, dtype=np.uint8).reshape(img.height, img.width, -1)


def resized_crop(
    img: Image.Image, box: tuple[int, int, int, int] | None, method: InterpolationMode
) -> Image.Image:
    """Crop ``box`` = (top, left, height, width) and resize back to the image's own size; None: unchanged."""
    if box is None:
        return img
    top, left, height, width = box
    return F.resized_crop(img, top, left, height, width, [img.height, img.width], interpolation=method)


class UGATITDataset(UnalignedDataset):
    """Batches ``{'A', 'B', 'A_paths', 'B_paths'}`` plus ``'A_mask'``, ``'B_mask'`` (1, H, W) in [0, 1]."""

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.add_argument(
            "--mask_dir",
            default="",
            help="folder with <trainA|trainB>/<stem>.png masks (255 = region to translate)",
        )
        if not is_train:
            return parser
        g = parser.add_argument_group("U-GAT-IT data (enhanced-U-GAT-IT option names)")
        # No default here: a model may have set one already (ugatit_enhanced: the fork's 0.2).
        g.add_argument(
            "--aug_prob",
            type=probability,
            help="probability of a RandomResizedCrop (74.8-100%% of the area, bicubic) of each training crop",
        )
        if parser.get_default("aug_prob") is None:
            parser.set_defaults(aug_prob=0.0)
        g.add_argument(
            "--match_histograms",
            action=argparse.BooleanOptionalAction,
            default=False,
            help="match the colour histograms of one image of each training pair to the other's",
        )
        g.add_argument(
            "--match_mode",
            default="hsl",
            choices=MATCH_MODES,
            help="colour space whose channels are matched one by one (hsl = OpenCV's H, L, S)",
        )
        g.add_argument(
            "--match_prob",
            type=probability,
            default=0.5,
            help="probability that the B image is matched to the A image; otherwise A is matched to B",
        )
        g.add_argument(
            "--match_ratio",
            type=probability,
            default=1.0,
            help="fraction of the way each channel's CDF moves: target = (1 - r) * own + r * other",
        )
        return parser

    def __init__(self, opt) -> None:
        super().__init__(opt)
        self.matching = bool(opt.isTrain and getattr(opt, "match_histograms", False))
        if self.matching and opt.input_nc != opt.output_nc:
            raise DataError(
                "--match_histograms needs images of equal channel counts (--input_nc == --output_nc)"
            )

    def __getitem__(self, index: int) -> dict:
        # The partner and the child streams are drawn as in UnalignedDataset, so without the fork's options an
        # item is the same as there (up to the resize interpolation).
        rng = self.item_rng(index)
        A_path, B_path = self.pair_paths(index, rng)
        rng_A, rng_B = rng.spawn(2)
        images = {
            "A": load_image(A_path, self.channels_for("A")),
            "B": load_image(B_path, self.channels_for("B")),
        }
        if self.matching:  # the coin comes from the parent stream, so the crops do not depend on it
            images = self.match_pair(images, rng)
        item = self._prepare("A", images["A"], A_path, rng_A)
        item.update(self._prepare("B", images["B"], B_path, rng_B))
        item["A_paths"] = A_path
        item["B_paths"] = B_path
        return item

    def match_pair(self, images: dict[str, Image.Image], rng: np.random.Generator) -> dict[str, Image.Image]:
        """The pair with one image's histograms matched to the other's (B to A w.p. match_prob)."""
        src, ref = ("B", "A") if rng.random() < self.opt.match_prob else ("A", "B")
        matched = match_histograms(
            _as_hwc(images[src]), _as_hwc(images[ref]), self.opt.match_mode, self.opt.match_ratio
        )
        mode = images[src].mode
        return {**images, src: Image.fromarray(matched[..., 0] if mode == "L" else matched, mode)}

    def sample_resized_crop(
        self, size_hw: tuple[int, int], rng: np.random.Generator
    ) -> tuple[int, int, int, int] | None:
        """``--aug_prob``'s crop box (top, left, height, width) in an image of ``size_hw``, or None.

        The coin is drawn for every training image (also when aug_prob is 0), after the image's crop and flip.
        """
        if not self.opt.isTrain or rng.random() >= getattr(self.opt, "aug_prob", 0.0):
            return None
        side = math.sqrt(rng.uniform(*AUG_SCALE))  # torchvision: area fraction uniform in the scale range
        h, w = size_hw
        height, width = min(h, max(1, round(h * side))), min(w, max(1, round(w * side)))
        top = int(rng.integers(0, h - height + 1))
        left = int(rng.integers(0, w - width + 1))
        return top, left, height, width

    def _prepare(self, key: str, img: Image.Image, path: str, rng: np.random.Generator) -> dict:
        params = sample_params(self.opt, img.size, rng, load_size=self.load_size)
        size_hw = output_size(self.opt, img.size, self.load_size)
        params["resized_crop"] = self.sample_resized_crop(size_hw, rng)
        img = apply_geometry(
            img, self.opt, params, method=InterpolationMode.BILINEAR, load_size=self.load_size, path=path
        )
        out = {key: to_tensor(resized_crop(img, params["resized_crop"], InterpolationMode.BICUBIC))}
        out.update(self.extra_targets(path, key, params, rng))
        return out

    def extra_targets(self, path: str, domain: str, params: dict, rng: np.random.Generator) -> dict:
        if not self.opt.mask_dir:
            return {}
        folder = os.path.basename(os.path.dirname(path))
        mask_path = os.path.join(
            self.opt.mask_dir, folder, os.path.splitext(os.path.basename(path))[0] + ".png"
        )
        if not os.path.isfile(mask_path):
            raise DataError(f"--mask_dir: no mask for {path}: expected {mask_path}")
        mask = apply_geometry(
            load_image(mask_path, 1),
            self.opt,
            params,
            method=InterpolationMode.BILINEAR,
            load_size=self.load_size,
            path=mask_path,
        )
        mask = resized_crop(mask, params.get("resized_crop"), InterpolationMode.BILINEAR)
        return {f"{domain}_mask": to_tensor(mask, normalize=False)}
