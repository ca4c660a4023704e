"""Unaligned A/B folders with the CUT repo's two data quirks as explicit options (CUT, FastCUT, SRUNIT).

* ``--resize_in_decay`` (on by default): once the learning rate decays (epoch > n_epochs) images are resized
  to crop_size, so the random-crop augmentation stops and the model fine-tunes on whole (resized) images. The
  CUT repo does this unconditionally in ``unaligned_dataset.py``; it is part of the published training recipe
  (known official quirk 15), hence the default. CycleGAN keeps the plain ``unaligned`` mode, which never does it.
* ``--resize_half_height``: resize to (load_size / 2) x load_size (H x W) instead of a square, for wide
  GTA/Cityscapes frames. The CUT repo switches this on when the dataroot path contains ``gta2cityscapes``;
  here the GTA->Cityscapes script passes the flag. In the decay phase the official rule would resize to
  crop_size / 2 in height and then fail to crop crop_size; this mode resizes to crop_size x 2*crop_size
  instead, so the decay phase keeps full-height images (and a horizontal crop).
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from data.image_io import load_image
from data.transforms import get_transform, sample_params
from data.unaligned_dataset import UnalignedDataset


class CUTUnalignedDataset(UnalignedDataset):
    """``UnalignedDataset`` plus the decay-phase resize and the half-height resize of the CUT repo."""

    @staticmethod
    def modify_commandline_options(
        parser: argparse.ArgumentParser, is_train: bool
    ) -> argparse.ArgumentParser:
        parser.add_argument(
            "--resize_in_decay",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="in the decay phase (epoch > n_epochs) resize images to crop_size: no crop augmentation (CUT repo)",
        )
        parser.add_argument(
            "--resize_half_height",
            action=argparse.BooleanOptionalAction,
            default=False,
            help="with --preprocess resize_and_crop: resize to (load_size/2) x load_size (HxW) before cropping "
            "(the CUT repo's GTA->Cityscapes rule)",
        )
        return parser

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        decaying = (
            self.opt.isTrain and self.opt.resize_in_decay and epoch > getattr(self.opt, "n_epochs", epoch)
        )
        if not decaying:
            self.set_load_size(None)
        else:
            # Half-height mode needs twice the width so the resized height still equals crop_size (see above).
            self.set_load_size(self.opt.crop_size * (2 if self.opt.resize_half_height else 1))

    def _load(self, key: str, path: str, rng: np.random.Generator) -> dict:
        if not (self.opt.resize_half_height and self.opt.preprocess == "resize_and_crop"):
            return super()._load(key, path, rng)
        img = load_image(path, self.channels_for(key))
        # Resizing here and cropping the result equals the official Resize((load/2, load)) + RandomCrop.
        img = img.resize((self.load_size, self.load_size // 2), Image.BICUBIC)
        opt = self.opt.replace(preprocess="crop")
        params = sample_params(opt, img.size, rng)
        out = {key: get_transform(opt, params)(img, path=path)}
        out.update(self.extra_targets(path, key, params, rng))
        return out
