"""Unpaired A/B images for U-GAT-IT (``--dataset_mode ugatit``): bilinear resizing and optional masks.

The official loader resizes with torchvision's default (bilinear) to (S+30)×(S+30) and crops S; the framework's
transforms default to bicubic, so this mode only changes the interpolation. With ``--mask_dir`` each image also
gets a mask (enhanced-U-GAT-IT segmentation options): ``<mask_dir>/<image folder name>/<stem>.png``, a grey
image where 255 marks the region to translate, resized, cropped and flipped exactly like its image. The fork
computes these masks with a BiSeNet face parser whose weights it does not ship; here they are files.
"""

from __future__ import annotations

import os

import numpy as np
from torchvision.transforms import InterpolationMode

from data.image_io import DataError, load_image
from data.transforms import apply_geometry, get_transform, sample_params, to_tensor
from data.unaligned_dataset import UnalignedDataset


class UGATITDataset(UnalignedDataset):
    """Batches ``{'A', 'B', 'A_paths', 'B_paths'}`` plus ``'A_mask'``, ``'B_mask'`` (1, H, W) in [0, 1]."""

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.add_argument(
            "--mask_dir",
            default="",
            help="folder with <trainA|trainB>/<stem>.png masks (255 = region to translate)",
        )
        return parser

    def _load(self, key: str, path: str, rng: np.random.Generator) -> dict:
        img = load_image(path, self.channels_for(key))
        params = sample_params(self.opt, img.size, rng, load_size=self.load_size)
        transform = get_transform(
            self.opt, params, load_size=self.load_size, method=InterpolationMode.BILINEAR
        )
        out = {key: transform(img, path=path)}
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
        return {f"{domain}_mask": to_tensor(mask, normalize=False)}
