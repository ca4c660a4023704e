"""Two unpaired image folders, ``<dataroot>/<phase>A`` and ``<phase>B``, or two list files (CycleGAN, CUT, LiSS...)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from data.base_dataset import BaseDataset, domain_paths
from data.image_io import DataError, load_image
from data.transforms import get_transform, sample_params


def aux_target_path(image_path: str, subdir: str = "depths", ext: str = ".png") -> str:
    """Path of the auxiliary target stored beside an image: ``<image dir>/<subdir>/<stem><ext>``.

    LiSS reads MegaDepth inverse-depth maps as ``trainA/depths/<stem>.png``.
    """
    folder, name = os.path.split(image_path)
    path = os.path.join(folder, subdir, os.path.splitext(name)[0] + ext)
    if not os.path.isfile(path):
        raise DataError(f"missing auxiliary target for image {image_path}: expected the file {path}")
    return path


class UnalignedDataset(BaseDataset):
    """Unpaired A/B images; ``item['A']`` is always the model's input domain.

    With ``--direction BtoA`` the folders swap roles (``<phase>B`` feeds ``item['A']``), so models never swap
    keys themselves. Item i pairs A[i mod |A|] with a B image drawn from the item's generator, or B[i mod |B|]
    with ``--serial_batches``; A and B get independent crops and flips.
    """

    def __init__(self, opt: Any) -> None:
        super().__init__(opt)
        src, dst = ("B", "A") if opt.direction == "BtoA" else ("A", "B")
        self.A_paths = domain_paths(opt, src, "input-domain images for item 'A'")
        self.B_paths = domain_paths(opt, dst, "target-domain images for item 'B'")

    def __len__(self) -> int:
        return max(len(self.A_paths), len(self.B_paths))

    def extra_targets(self, path: str, domain: str, params: dict, rng: np.random.Generator) -> dict:
        """Hook for subclasses: extra entries for the image ``path`` of batch key ``domain``.

        ``params`` are the crop/flip the image got (reuse them with :func:`data.transforms.apply_geometry`);
        ``rng`` is this domain's generator, already past the image's own draws.
        """
        return {}

    def _load(self, key: str, path: str, rng: np.random.Generator) -> dict:
        img = load_image(path, self.channels_for(key))
        params = sample_params(self.opt, img.size, rng, load_size=self.load_size)
        out = {key: get_transform(self.opt, params, load_size=self.load_size)(img, path=path)}
        out.update(self.extra_targets(path, key, params, rng))
        return out

    def pair_paths(self, index: int, rng: np.random.Generator) -> tuple[str, str]:
        """Item ``index``'s A image and its B partner: by index with --serial_batches, else drawn from ``rng``."""
        A_path = self.A_paths[index % len(self.A_paths)]
        if self.opt.serial_batches:
            return A_path, self.B_paths[index % len(self.B_paths)]
        return A_path, self.B_paths[int(rng.integers(len(self.B_paths)))]

    def __getitem__(self, index: int) -> dict:
        rng = self.item_rng(index)
        A_path, B_path = self.pair_paths(index, rng)
        # Separate child streams, so extra targets drawn for A cannot shift B's crop.
        rng_A, rng_B = rng.spawn(2)
        item = self._load("A", A_path, rng_A)
        item.update(self._load("B", B_path, rng_B))
        item["A_paths"] = A_path
        item["B_paths"] = B_path
        return item
