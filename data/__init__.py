"""Datasets, selected by ``--dataset_mode`` from a table (imported on first use), and their data loader.

``create_dataloader`` pairs a dataset with :class:`data.samplers.EpochSampler`; at every epoch start call
:func:`set_epoch` (dataset and sampler together), and after a mid-epoch resume pass ``start`` as well.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
import torch.utils.data

from data.base_dataset import BaseDataset
from data.image_io import DataError
from data.samplers import EpochSampler

__all__ = [
    "DATASET_MODES",
    "DataError",
    "create_dataloader",
    "create_dataset",
    "dataset_modes",
    "find_dataset_class",
    "get_option_setter",
    "set_epoch",
]

DATASET_MODES: dict[str, str] = {
    "unaligned": "data.unaligned_dataset:UnalignedDataset",
    "liss": "data.liss_dataset:LiSSDataset",
    "cut_unaligned": "data.cut_unaligned_dataset:CUTUnalignedDataset",
    "single": "data.single_dataset:SingleDataset",
    "class_folder": "data.class_folder_dataset:ClassFolderDataset",
    "tunit": "data.tunit_dataset:TunitDataset",
    "ugatit": "data.ugatit_dataset:UGATITDataset",
}


def dataset_modes() -> list[str]:
    """Valid ``--dataset_mode`` names."""
    return sorted(DATASET_MODES)


def find_dataset_class(name: str) -> type[BaseDataset]:
    """The dataset class registered as ``name``; a ValueError lists the valid names."""
    if name not in DATASET_MODES:
        raise ValueError(f"unknown dataset mode {name!r}; valid: {', '.join(dataset_modes())}")
    module_name, class_name = DATASET_MODES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_option_setter(name: str) -> Callable[..., Any]:
    """``modify_commandline_options(parser, is_train)`` of dataset mode ``name``."""
    return find_dataset_class(name).modify_commandline_options


def create_dataset(opt: Any, **kwargs: Any) -> BaseDataset:
    """Instantiate the dataset of ``opt.dataset_mode``; ``kwargs`` go to its constructor."""
    return find_dataset_class(opt.dataset_mode)(opt, **kwargs)


def create_dataloader(
    dataset: BaseDataset,
    opt: Any,
    *,
    shuffle: bool,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` driven by an :class:`EpochSampler` (``loader.sampler``).

    ``drop_last`` drops this rank's last incomplete batch (CUT-repo training); ranks always get equal shares.
    Workers are not persistent, so the dataset's epoch (set in the main process) reaches them every epoch.
    The loader gets its own generator: otherwise each new iterator draws its worker base seed from torch's
    global generator, which would make the model's random stream depend on the data loading.
    """
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=opt.seed, rank=rank, world_size=world_size)
    generator = torch.Generator()
    generator.manual_seed(int(opt.seed) % (1 << 63))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=int(opt.num_threads),
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        persistent_workers=False,
        generator=generator,
    )


def set_epoch(loader: torch.utils.data.DataLoader, epoch: int, start: int = 0) -> None:
    """Select ``epoch`` for the loader's dataset and sampler; skip the epoch's first ``start`` images (resume).

    ``start`` counts images of the epoch's global order, over all processes (see :class:`EpochSampler`).
    """
    loader.dataset.set_epoch(epoch)
    loader.sampler.set_epoch(epoch)
    if start:
        loader.sampler.set_start(start)
