"""Base class of all datasets: options hook, epoch counter and per-item random generators.

Every random choice a dataset makes (partner image, crop, flip, augmentations) comes from :meth:`item_rng`,
a generator seeded by (seed, epoch, index) alone. An item is therefore a pure function of those three numbers,
whatever the number of worker processes or the order they run in, and a run resumed mid-epoch sees exactly the
data it would have seen. Datasets must never touch ``random``, ``np.random`` or torch's global generator.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np
import torch.utils.data

from data.image_io import DataError, list_images, read_image_list


class BaseDataset(torch.utils.data.Dataset):
    """Holds ``opt`` (read-only), the current epoch and an optional load_size override."""

    def __init__(self, opt: Any) -> None:
        self.opt = opt
        self.root: str = opt.dataroot
        self.epoch = 0
        self.load_size_override: int | None = None

    @staticmethod
    def modify_commandline_options(
        parser: argparse.ArgumentParser, is_train: bool
    ) -> argparse.ArgumentParser:
        """Add dataset-specific options; the base class adds none."""
        return parser

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws :meth:`item_rng` reproduces; call before iterating.

        Workers are re-created for each epoch (``persistent_workers=False``), so they see the new value.
        """
        self.epoch = int(epoch)

    def set_load_size(self, load_size: int | None) -> None:
        """Override ``opt.load_size`` (None restores it).

        The CUT repo resizes to crop_size in the decay phase (epoch > n_epochs), removing the crop augmentation;
        the trainer sets that here instead of the dataset reading the training schedule.
        """
        self.load_size_override = None if load_size is None else int(load_size)

    @property
    def load_size(self) -> int:
        return self.opt.load_size if self.load_size_override is None else self.load_size_override

    def item_rng(self, index: int) -> np.random.Generator:
        """The generator for item ``index`` in the current epoch (independent streams per item)."""
        # SeedSequence entropy must be non-negative; a negative --seed maps to its two's complement.
        seed = int(self.opt.seed) % (1 << 64)
        return np.random.default_rng([seed, self.epoch, int(index)])

    def channels_for(self, domain: str) -> int:
        """Channels of batch key ``domain``: 'A' is always the model's input (input_nc), 'B' its output."""
        if domain == "A":
            return int(self.opt.input_nc)
        if domain == "B":
            return int(self.opt.output_nc)
        raise ValueError(f"domain must be 'A' or 'B', not {domain!r}")


def limit_size(items: list, max_dataset_size: float | int | None) -> list:
    """The first ``max_dataset_size`` items (all of them for None, inf or a huge int), as the CycleGAN repo."""
    if max_dataset_size is None or max_dataset_size >= len(items):
        return list(items)
    return list(items[: max(0, int(max_dataset_size))])


def require_subfolder(root: str, name: str, purpose: str) -> str:
    """``root/name`` if it is a folder; otherwise a DataError listing the folders ``root`` does hold."""
    path = os.path.join(root, name)
    if os.path.isdir(path):
        return path
    if not os.path.isdir(root):
        raise DataError(f"--dataroot {root} is not a folder (looking for {name}/ with {purpose})")
    existing = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    found = ", ".join(existing) if existing else "none"
    raise DataError(f"folder {path} not found ({purpose}); folders in {root}: {found}")


def list_option(opt: Any, letter: str) -> tuple[str, str]:
    """(``--list_<letter>``, ``--list_root_<letter>``); empty strings when the domain is read from a folder."""
    return getattr(opt, f"list_{letter}", "") or "", getattr(opt, f"list_root_{letter}", "") or ""


def domain_paths(opt: Any, letter: str, purpose: str) -> list[str]:
    """Images of domain ``letter`` ('A' or 'B') for ``opt.phase``, capped by ``--max_dataset_size``.

    ``--list_<letter> FILE`` names them (UNIT's list mode, for datasets kept as one folder plus split files);
    otherwise they are every image of ``<dataroot>/<phase><letter>``.
    """
    list_file, list_root = list_option(opt, letter)
    what = f"domain {letter} images"
    if list_file:
        paths = read_image_list(list_file, list_root, what=what)
    else:
        paths = list_images(require_subfolder(opt.dataroot, opt.phase + letter, purpose), what=what)
    return limit_size(paths, opt.max_dataset_size)
