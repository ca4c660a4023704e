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
from data.batch_checks import collate_for
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


class _EpochItems(torch.utils.data.Dataset):
    """The dataset, indexed by (epoch, index): persistent workers learn the epoch from every index they get."""

    def __init__(self, dataset: BaseDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        if getattr(self.dataset, "epoch", epoch) != epoch:  # a kept worker's copy is from an earlier epoch
            self.dataset.set_epoch(epoch)
        return self.dataset[index]

    def __getattr__(self, name: str):
        if "dataset" not in self.__dict__:  # while unpickling in a spawned worker
            raise AttributeError(name)
        return getattr(self.__dict__["dataset"], name)


class _EpochIndices(torch.utils.data.Sampler):
    """An :class:`EpochSampler` whose indices carry the epoch (for :class:`_EpochItems`)."""

    def __init__(self, sampler: EpochSampler) -> None:
        self.sampler = sampler

    def __iter__(self):
        epoch = self.sampler.epoch
        return ((epoch, index) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)

    def __getattr__(self, name: str):
        if "sampler" not in self.__dict__:  # while unpickling in a spawned worker
            raise AttributeError(name)
        return getattr(self.__dict__["sampler"], name)


def create_dataloader(
    dataset: BaseDataset,
    opt: Any,
    *,
    shuffle: bool,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = False,
    device: torch.device | None = None,
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` driven by an :class:`EpochSampler` (``loader.sampler``).

    ``drop_last`` drops this rank's last incomplete batch (CUT-repo training); ranks always get equal shares.
    Worker processes are kept from one epoch to the next (no start-up cost per epoch); the epoch, set in the
    main process, reaches them with every index. Batches go to pinned memory when ``device`` is a GPU (an
    asynchronous copy; pinning for a CPU run would only cost time).
    The loader gets its own generator: otherwise each new iterator draws its worker base seed from torch's
    global generator, which would make the model's random stream depend on the data loading.
    """
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=opt.seed, rank=rank, world_size=world_size)
    generator = torch.Generator()
    generator.manual_seed(int(opt.seed) % (1 << 63))
    workers = int(opt.num_threads)
    return torch.utils.data.DataLoader(
        _EpochItems(dataset),
        batch_size=batch_size,
        sampler=_EpochIndices(sampler),
        num_workers=workers,
        pin_memory=device is not None and device.type == "cuda",
        drop_last=drop_last,
        persistent_workers=workers > 0,
        generator=generator,
        collate_fn=collate_for(opt),
    )


def set_epoch(loader: torch.utils.data.DataLoader, epoch: int, start: int = 0) -> None:
    """Select ``epoch`` for the loader's dataset and sampler; skip the epoch's first ``start`` images (resume).

    ``start`` counts images of the epoch's global order, over all processes (see :class:`EpochSampler`).
    """
    loader.dataset.set_epoch(epoch)
    loader.sampler.set_epoch(epoch)
    if start:
        loader.sampler.set_start(start)
