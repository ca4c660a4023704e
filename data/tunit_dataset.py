"""TUNIT's class-folder dataset: two augmented views of each image, held-out splits and labelled subsets.

Items are ``{'A': x_org, 'A_tf': x_tf, 'label', 'A_paths'}``; with ``0 < --p_semi < 1`` during training
they also carry a labelled partner ``{'L', 'L_tf', 'L_label'}`` drawn from the labelled subset, so that the
model can run the official labelled iterations from the same loader (see ``models/tunit_model.py``).

The views follow clovaai/tunit ``datasets/datasetgetter.py``, with every random draw taken from the per-item
NumPy generator instead of torch's global one (so resumed runs see the same data):

- ``x_org``: Resize((S, S)) bilinear (aspect not kept) -> horizontal flip (p 0.5) -> [-1, 1].
- ``x_tf``: RandomAffine(20 deg, translate 0.1, x-shear 10 deg, nearest, black fill) on the original image ->
  RandomResizedCrop(S, scale (0.9, 1.1), ratio (0.9, 1.1), bilinear) -> ColorJitter(0.4, 0.4, 0.4, 0.125)
  (off for the official two-domain sets: ``--no-tunit_color_jitter``) -> flip -> [-1, 1].
- Outside training: no flips and no colour jitter (the official validation transform).

Classes come from the folders (``--tunit_classes`` selects and orders them, ``animal_faces10`` is the
AnimalFaces-10 preset); the official code hard-codes per-dataset class indices instead (quirk H1).
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

import numpy as np
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from data.class_folder_dataset import ClassFolderDataset
from data.image_io import DataError, load_image
from data.transforms import to_tensor

#: FUNIT's AnimalFaces-10 classes (beagle, Dandie Dinmont, golden retriever, Malinois, Appenzeller, Arctic fox,
#: tabby, snow leopard, lion, tiger), i.e. TUNIT's ``att_to_use = [11, 43, 56, 74, 89, 128, 130, 138, 140, 141]``.
CLASS_PRESETS: dict[str, tuple[str, ...]] = {
    "animal_faces10": (
        "n02088364",
        "n02096437",
        "n02099601",
        "n02105162",
        "n02107908",
        "n02120079",
        "n02123045",
        "n02128757",
        "n02129165",
        "n02129604",
    ),
}

# torchvision parameters of the official x_tf pipeline.
AFFINE_DEGREES, AFFINE_TRANSLATE, AFFINE_SHEAR = 20.0, 0.1, 10.0
CROP_SCALE, CROP_RATIO = (0.9, 1.1), (0.9, 1.1)
JITTER_BCS, JITTER_HUE = 0.4, 0.125


def random_affine(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """``RandomAffine(20, translate=(0.1, 0.1), shear=10)`` with torchvision's parameter distributions."""
    w, h = img.size
    angle = float(rng.uniform(-AFFINE_DEGREES, AFFINE_DEGREES))
    tx = int(round(float(rng.uniform(-AFFINE_TRANSLATE * w, AFFINE_TRANSLATE * w))))
    ty = int(round(float(rng.uniform(-AFFINE_TRANSLATE * h, AFFINE_TRANSLATE * h))))
    shear_x = float(rng.uniform(-AFFINE_SHEAR, AFFINE_SHEAR))  # a scalar shear is x-only in torchvision
    return F.affine(
        img,
        angle=angle,
        translate=[tx, ty],
        scale=1.0,
        shear=[shear_x, 0.0],
        interpolation=InterpolationMode.NEAREST,
    )


def random_resized_crop_box(w: int, h: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) as torchvision's ``RandomResizedCrop.get_params``: 10 tries, then centre."""
    area = w * h
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target_area = area * float(rng.uniform(*CROP_SCALE))
        aspect = math.exp(float(rng.uniform(*log_ratio)))
        cw = int(round(math.sqrt(target_area * aspect)))
        ch = int(round(math.sqrt(target_area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    in_ratio = w / h
    if in_ratio < CROP_RATIO[0]:
        cw, ch = w, int(round(w / CROP_RATIO[0]))
    elif in_ratio > CROP_RATIO[1]:
        ch, cw = h, int(round(h * CROP_RATIO[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def color_jitter(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """``ColorJitter(0.4, 0.4, 0.4, 0.125)``: the four adjustments in a random order, factors drawn first."""
    order = rng.permutation(4)
    b, c, s = (float(rng.uniform(1 - JITTER_BCS, 1 + JITTER_BCS)) for _ in range(3))
    hue = float(rng.uniform(-JITTER_HUE, JITTER_HUE))
    ops = (
        lambda x: F.adjust_brightness(x, b),
        lambda x: F.adjust_contrast(x, c),
        lambda x: F.adjust_saturation(x, s),
        lambda x: F.adjust_hue(x, hue),
    )
    for i in order:
        img = ops[int(i)](img)
    return img


class TunitDataset(ClassFolderDataset):
    """Class folders with TUNIT's two views (``--dataset_mode tunit``)."""

    @staticmethod
    def modify_commandline_options(
        parser: argparse.ArgumentParser, is_train: bool
    ) -> argparse.ArgumentParser:
        parser.add_argument(
            "--tunit_classes",
            default="",
            help="comma-separated class folders to use, in label order, or a preset "
            f"({', '.join(CLASS_PRESETS)}); empty: every folder",
        )
        parser.add_argument(
            "--tunit_holdout",
            type=int,
            default=0,
            help="when the dataroot has no phase folders: per class, the last N files (sorted) are the held-out "
            "split (--phase train uses the rest). Official: AnimalFaces 50, FFHQ 7000, LSUN car 10000",
        )
        parser.add_argument(
            "--tunit_color_jitter",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="ColorJitter in the x_tf view (official: on, off for the two-domain sets like summer2winter)",
        )
        return parser

    def __init__(self, opt: Any) -> None:
        super().__init__(opt)
        self._select_classes(getattr(opt, "tunit_classes", ""))
        self._apply_holdout(int(getattr(opt, "tunit_holdout", 0)))
        self.train_views = bool(opt.isTrain)
        self.labelled_paths: list[str] = []
        self.labelled_targets: list[int] = []
        p_semi = float(getattr(opt, "p_semi", 0.0))
        if self.train_views and 0.0 < p_semi < 1.0:
            self._split_labelled(p_semi)

    # ------------------------------------------------------------------ file lists
    def _per_class(self) -> dict[int, list[str]]:
        groups: dict[int, list[str]] = {i: [] for i in range(len(self.classes))}
        for path, label in zip(self.paths, self.targets):
            groups[label].append(path)
        return groups

    def _set_lists(self, groups: dict[int, list[str]]) -> None:
        self.paths = [p for label in sorted(groups) for p in groups[label]]
        self.targets = [label for label in sorted(groups) for _ in groups[label]]

    def _select_classes(self, spec: str) -> None:
        if not spec:
            return
        wanted = list(CLASS_PRESETS.get(spec, [s.strip() for s in spec.split(",") if s.strip()]))
        missing = [name for name in wanted if name not in self.class_to_idx]
        if missing:
            raise DataError(
                f"--tunit_classes: {', '.join(missing)} not found in {self.dir} (has {', '.join(self.classes[:20])})"
            )
        groups = self._per_class()
        selected = {new: groups[self.class_to_idx[name]] for new, name in enumerate(wanted)}
        self.classes = wanted
        self.class_to_idx = {name: i for i, name in enumerate(wanted)}
        self._set_lists(selected)

    def _apply_holdout(self, n: int) -> None:
        """Official AnimalFaces/FFHQ/LSUN splits: the last ``n`` sorted files of each class are held out."""
        if n <= 0 or os.path.normpath(self.dir) != os.path.normpath(self.opt.dataroot):
            return
        held_out = self.opt.phase != "train"
        groups = {}
        for label, files in self._per_class().items():
            if len(files) <= n and not held_out:
                raise DataError(
                    f"class {self.classes[label]!r} has {len(files)} files, not more than --tunit_holdout {n}"
                )
            groups[label] = files[-n:] if held_out else files[:-n]
        self._set_lists(groups)

    def _split_labelled(self, p: float) -> None:
        """Per class the first ``max(int(n * p), 1)`` files are labelled; the rest form the main list."""
        labelled, unlabelled = {}, {}
        for label, files in self._per_class().items():
            k = max(int(len(files) * p), 1)
            labelled[label], unlabelled[label] = files[:k], files[k:]
        self.labelled_paths = [p for label in sorted(labelled) for p in labelled[label]]
        self.labelled_targets = [label for label in sorted(labelled) for _ in labelled[label]]
        self._set_lists(unlabelled)
        if not self.paths:
            raise DataError(f"--p_semi {p} leaves no unlabelled images in {self.dir}")

    # ------------------------------------------------------------------ views
    def views(self, img_pil: Image.Image, rng: np.random.Generator) -> dict:
        """``A`` (x_org, replacing the base class's resize) and ``A_tf`` (x_tf) of one image."""
        size = int(self.opt.crop_size)
        train = self.train_views
        x_org = F.resize(img_pil, [size, size], interpolation=InterpolationMode.BILINEAR)
        if train and bool(rng.random() < 0.5) and not self.opt.no_flip:
            x_org = F.hflip(x_org)
        x_tf = random_affine(img_pil, rng)
        top, left, h, w = random_resized_crop_box(*x_tf.size, rng)
        x_tf = F.resized_crop(x_tf, top, left, h, w, [size, size], interpolation=InterpolationMode.BILINEAR)
        if train and getattr(self.opt, "tunit_color_jitter", True):
            x_tf = color_jitter(x_tf, rng)
        if train and bool(rng.random() < 0.5) and not self.opt.no_flip:
            x_tf = F.hflip(x_tf)
        return {"A": to_tensor(x_org), "A_tf": to_tensor(x_tf)}

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        if self.labelled_paths:
            # An independent stream (extra key 1) so the partner does not shift the main item's draws.
            rng = np.random.default_rng([int(self.opt.seed) % (1 << 64), self.epoch, int(index), 1])
            j = int(rng.integers(0, len(self.labelled_paths)))
            views = self.views(load_image(self.labelled_paths[j], self.channels_for("A")), rng)
            item.update({"L": views["A"], "L_tf": views["A_tf"], "L_label": self.labelled_targets[j]})
        return item
