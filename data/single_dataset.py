"""One folder of images, for inference in one direction (``--dataset_mode single``)."""

from __future__ import annotations

import os
from typing import Any

from data.base_dataset import BaseDataset, limit_size, require_subfolder
from data.image_io import image_size, is_image_file, list_images, load_image
from data.transforms import get_transform, output_size, sample_params


class SingleDataset(BaseDataset):
    """Images of one folder as ``{'A', 'A_paths', 'size'}``; ``size`` is the (h, w) of the returned tensor.

    ``paths`` (a list file's images) take precedence; otherwise the folder is ``folder`` when given, else
    ``<dataroot>/<phase>A`` (``<phase>B`` with ``--direction BtoA``, since item 'A' is the model's input), else
    ``dataroot`` itself when it holds images directly.
    """

    def __init__(
        self, opt: Any, folder: str | None = None, channels: int | None = None, paths: list[str] | None = None
    ) -> None:
        super().__init__(opt)
        self.channels = self.channels_for("A") if channels is None else int(channels)
        if paths is not None:  # a list file's images (--list_A / --list_B)
            self.dir = os.path.dirname(paths[0]) if paths else ""
            self.paths = limit_size(paths, opt.max_dataset_size)
            return
        self.dir = folder if folder is not None else self._default_folder()
        self.paths = limit_size(list_images(self.dir, what="input images"), opt.max_dataset_size)

    def _default_folder(self) -> str:
        root = self.opt.dataroot
        name = self.opt.phase + ("B" if self.opt.direction == "BtoA" else "A")
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
        if os.path.isdir(root) and any(is_image_file(n) for n in os.listdir(root)):
            return root
        return require_subfolder(root, name, "input images (or put the images directly in --dataroot)")

    def __len__(self) -> int:
        return len(self.paths)

    def sizes(self) -> list[tuple[int, int]]:
        """(h, w) of every item's tensor, from file headers only (to batch equal sizes together)."""
        return [output_size(self.opt, image_size(p), self.load_size) for p in self.paths]

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        img = load_image(path, self.channels)
        params = sample_params(self.opt, img.size, self.item_rng(index), load_size=self.load_size)
        tensor = get_transform(self.opt, params, load_size=self.load_size)(img, path=path)
        return {"A": tensor, "A_paths": path, "size": (int(tensor.shape[1]), int(tensor.shape[2]))}
