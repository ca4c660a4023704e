"""A class-folder tree ``<dataroot>[/<phase>]/<class>/<images>`` (TUNIT's datasets).

Classes are the sorted subfolder names, not the per-dataset lists hard-coded in the TUNIT repo; labels are used
for evaluation and the semi-supervised fraction only.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

from data.base_dataset import BaseDataset, limit_size
from data.image_io import DataError, list_images, load_image
from data.transforms import get_transform, sample_params

_PHASE_NAMES = ("train", "val", "test")


def _subfolders(folder: str) -> list[str]:
    return sorted(
        d for d in os.listdir(folder) if not d.startswith(".") and os.path.isdir(os.path.join(folder, d))
    )


def layout_error(root: str, phase: str) -> str:
    """Why ``root`` is no class-folder tree for ``phase`` ("" when it may be one): an unaligned CycleGAN root
    (``trainA``, ``trainB``, ...) would otherwise be read as the classes "trainA", "trainB", ... ."""
    if not os.path.isdir(root) or os.path.isdir(os.path.join(root, phase)):
        return ""
    unaligned = [d for d in _subfolders(root) if d[:-1] in _PHASE_NAMES and d[-1:] in ("A", "B")]
    if not unaligned:
        return ""
    return (
        f"--dataroot {root} is an unaligned two-domain dataset ({', '.join(unaligned)}), not class folders: "
        f"expected {root}/{phase}/<class>/<images> or {root}/<class>/<images> (two domains: "
        f"{phase}/<domain A>/ and {phase}/<domain B>/)"
    )


class ClassFolderDataset(BaseDataset):
    """Items ``{'A', 'label', 'A_paths'}`` plus whatever :meth:`views` adds.

    ``max_dataset_size`` caps each class (the first files in sorted order), so every class stays present.
    Images are searched recursively inside each class folder, as torchvision's ImageFolder does.
    """

    def __init__(self, opt: Any) -> None:
        super().__init__(opt)
        self.dir = self._class_root()
        self.classes: list[str] = _subfolders(self.dir)
        if not self.classes:
            raise DataError(f"no class folders in {self.dir} (expected {self.dir}/<class>/<images>)")
        self.class_to_idx: dict[str, int] = {name: i for i, name in enumerate(self.classes)}
        self.paths: list[str] = []
        self.targets: list[int] = []
        for name, label in self.class_to_idx.items():
            folder = os.path.join(self.dir, name)
            found = list_images(folder, recursive=True, what=f"images of class {name!r}")
            found = limit_size(found, opt.max_dataset_size)
            self.paths += found
            self.targets += [label] * len(found)

    def _class_root(self) -> str:
        """``<dataroot>/<phase>`` when it exists; ``<dataroot>`` unless that is split by phase differently."""
        root = self.opt.dataroot
        if not os.path.isdir(root):
            raise DataError(f"--dataroot {root} is not a folder (expected {root}/<class>/<images>)")
        phase_dir = os.path.join(root, self.opt.phase)
        if os.path.isdir(phase_dir):
            return phase_dir
        if layout_error(root, self.opt.phase):
            raise DataError(layout_error(root, self.opt.phase))
        phases = [d for d in _subfolders(root) if d in _PHASE_NAMES]
        if phases:
            raise DataError(
                f"{phase_dir} not found; {root} is split into {', '.join(phases)} (check --phase)"
            )
        return root

    def __len__(self) -> int:
        return len(self.paths)

    def views(self, img_pil: Image.Image, rng: np.random.Generator) -> dict:
        """Hook for subclasses: extra views of the loaded image (TUNIT's augmented ``x_tf``); none here."""
        return {}

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        rng = self.item_rng(index)
        img = load_image(path, self.channels_for("A"))
        params = sample_params(self.opt, img.size, rng, load_size=self.load_size)
        item = {
            "A": get_transform(self.opt, params, load_size=self.load_size)(img, path=path),
            "label": self.targets[index],
            "A_paths": path,
        }
        item.update(self.views(img, rng))
        return item
