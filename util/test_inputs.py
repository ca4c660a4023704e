"""test.py's inputs: which folder (or list file) each direction reads, and what may go wrong with it.

Kept apart from the loop in ``util.test_loop``: where the inputs come from, the names their outputs get (two
inputs never share one), the folders ``--output_path`` must not write into, and the wrapper that turns an
unreadable file into a skipped item instead of the end of the run.
"""

from __future__ import annotations

import os
from collections import Counter

from torch.utils.data import Dataset, default_collate

import data
from data.base_dataset import list_option
from data.image_io import DataError, read_image_list
from data.single_dataset import SingleDataset

CLASS_FOLDER_MODES = ("class_folder", "tunit")


def input_folder(opt, direction: str) -> tuple[str, int]:
    """Folder (or ``--list_A``/``--list_B`` file) and channel count of the input domain of ``direction``.

    ``--direction BtoA`` swaps the domains.
    """
    if opt.input_dir:
        return opt.input_dir, opt.input_nc if direction == "AtoB" else opt.output_nc
    if opt.dataset_mode in CLASS_FOLDER_MODES:  # <dataroot>[/<phase>]/<class>/<images>: every class
        return opt.dataroot, opt.input_nc
    letter = "A" if direction == "AtoB" else "B"
    if opt.direction == "BtoA":
        letter = "B" if letter == "A" else "A"
    channels = opt.input_nc if direction == "AtoB" else opt.output_nc
    list_file = list_option(opt, letter)[0]
    if list_file:
        return list_file, channels
    if os.path.isdir(opt.dataroot) and not os.path.isdir(os.path.join(opt.dataroot, f"{opt.phase}{letter}")):
        if opt.dataset_mode == "single":
            return opt.dataroot, opt.input_nc
    return os.path.join(opt.dataroot, f"{opt.phase}{letter}"), channels


def input_dataset(opt, direction: str) -> tuple[SingleDataset, str]:
    """The inputs of ``direction`` and where they come from (a folder or a list file)."""
    source, channels = input_folder(opt, direction)
    if not opt.input_dir and opt.dataset_mode in CLASS_FOLDER_MODES:
        classes = data.create_dataset(opt)  # its class selection and held-out split for --phase
        return SingleDataset(opt, channels=channels, paths=classes.paths), classes.dir
    if not opt.input_dir and os.path.isfile(source):
        letter = next(x for x in "AB" if list_option(opt, x)[0] == source)
        paths = read_image_list(source, list_option(opt, letter)[1], what=f"domain {letter} images")
        return SingleDataset(opt, channels=channels, paths=paths), source
    if not opt.input_dir and not os.path.isdir(source) and os.path.isdir(opt.dataroot):
        raise DataError(
            f"folder of input images not found: {source} (--phase {opt.phase}); {phases_in(opt.dataroot)}"
        )
    return SingleDataset(opt, folder=source, channels=channels), source


def phases_in(dataroot: str) -> str:
    """The phases ``dataroot`` has folders for (``trainA`` -> train), for the error about a missing one."""
    names = [n for n in os.listdir(dataroot) if os.path.isdir(os.path.join(dataroot, n))]
    phases = sorted({n[:-1] for n in names if len(n) > 1 and n[-1] in "AB"})
    if not phases:
        return f"{dataroot} holds no <phase>A or <phase>B folders"
    return f"{dataroot} has --phase {', '.join(phases)}"


def input_folders(opt) -> list[str]:
    """Every existing folder test.py could read inputs from (both directions, whichever run)."""
    folders = {input_folder(opt, d)[0] for d in ("AtoB", "BtoA")}
    return sorted(f for f in folders if os.path.isdir(f))


def output_path_error(opt) -> str | None:
    """Why ``--output_path`` must not be used: its outputs (``<stem>.png``, or ``AtoB/``, ``BtoA/``) would
    replace input images of the same names, and a rerun would read them back as inputs. Class-folder inputs are
    read recursively, so there anything below the input folder counts."""
    out = os.path.realpath(opt.output_path)
    targets = {out, os.path.join(out, "AtoB"), os.path.join(out, "BtoA")}
    recursive = opt.dataset_mode in CLASS_FOLDER_MODES and not opt.input_dir
    for folder in map(os.path.realpath, input_folders(opt)):
        if folder in targets or (recursive and os.path.commonpath([folder, out]) == folder):
            return f"--output_path {opt.output_path}: it would write into the input folder {folder}; choose another folder"
    return None


def unique_stems(stems: list[str], paths: list[str]) -> list[str]:
    """Output names of inputs, none shared: inputs whose names differ only by extension (``a.png``, ``a.jpg``)
    would write the same output files, the later silently replacing the earlier, so those keep their extension
    (``a_png``, ``a_jpg``). Compared ignoring case, as macOS and Windows disks do; a name still taken (an input
    really called ``a_png.png``) gets ``_2``, ``_3``... in path order. Unshared names never change."""
    counts = Counter(s.lower() for s in stems)
    taken = {s.lower() for s in stems if counts[s.lower()] == 1}
    names = []
    for stem, path in zip(stems, paths):
        if counts[stem.lower()] == 1:
            names.append(stem)
            continue
        base = f"{stem}_{os.path.splitext(path)[1][1:]}"
        name, n = base, 1
        while name.lower() in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name.lower())
        names.append(name)
    return names


class Readable(Dataset):
    """``dataset[indices]``, where an unreadable file (corrupt, empty, truncated, a decompression bomb) gives
    ``{"skipped": message}`` instead of raising: one bad file in a folder of photos costs its own output, not
    the whole run (test.py warns once per file and ends with exit status 1)."""

    def __init__(self, dataset: SingleDataset, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        try:
            return self.dataset[self.indices[i]]
        except DataError as exc:  # the message names the file
            return {"skipped": str(exc)}


def collate_readable(items: list[dict]) -> dict:
    """The readable items batched (None when there are none) and the messages of the skipped ones."""
    good = [x for x in items if "skipped" not in x]
    return {
        "batch": default_collate(good) if good else None,
        "skipped": [x["skipped"] for x in items if "skipped" in x],
    }
