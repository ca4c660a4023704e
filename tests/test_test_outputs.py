"""test.py on a researcher's folders: output names that cannot collide, inputs that are never overwritten,
unreadable files skipped one warning each, and one-line errors that list what does exist."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import test as test_script
import train
from tests.conftest import TINY, TINY_TEST


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, synthetic_root) -> str:
    """A one-epoch tiny cycle_gan run ``e`` (``latest.pth`` only)."""
    folder = str(tmp_path_factory.mktemp("ckpt"))
    argv = ["--model", "cycle_gan", "--dataroot", synthetic_root, "--name", "e", "--checkpoints_dir", folder,
            *TINY, "--max_dataset_size", "4", "--n_epochs", "1", "--n_epochs_decay", "0"]  # fmt: skip
    assert train.main(argv) == 0
    return folder


def run_test(ckpt: str, tmp_path, *extra: str) -> int:
    results = str(tmp_path / "results")
    return test_script.main(
        ["--name", "e", "--checkpoints_dir", ckpt, "--results_dir", results, *TINY_TEST, *extra]
    )


def noise_image(path, seed: int, size: int = 32) -> None:
    pixels = np.random.RandomState(seed).randint(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def page_images(tmp_path) -> list[str]:
    with open(tmp_path / "results" / "e" / "test_latest" / "index.html", encoding="utf-8") as f:
        return re.findall(r'src="images/([^"]+)"', f.read())


def digests(folder) -> dict[str, str]:
    return {n: hashlib.md5((folder / n).read_bytes()).hexdigest() for n in sorted(os.listdir(folder))}


def test_inputs_differing_only_by_extension_get_distinct_outputs(ckpt, tmp_path):
    inputs = tmp_path / "photos"
    inputs.mkdir()
    noise_image(inputs / "a.png", 0)
    noise_image(inputs / "a.jpg", 1)
    noise_image(inputs / "b.png", 2)
    out = tmp_path / "out"
    assert run_test(ckpt, tmp_path, "--input_dir", str(inputs), "--output_path", str(out),
                    "--test_direction", "AtoB") == 0  # fmt: skip
    assert sorted(os.listdir(out)) == ["a_jpg.png", "a_png.png", "b.png"]
    assert len(set(digests(out).values())) == 3  # none written over another
    fakes = [n for n in page_images(tmp_path) if n.endswith("_fake_B.png")]
    assert fakes == ["a_jpg_fake_B.png", "a_png_fake_B.png", "b_fake_B.png"]


def test_missing_phase_names_the_phases_that_exist(ckpt, synthetic_root, tmp_path, capsys):
    root = tmp_path / "data"
    for name in ("trainA", "trainB", "testA", "testB"):
        shutil.copytree(os.path.join(synthetic_root, name), root / name)
    assert run_test(ckpt, tmp_path, "--dataroot", str(root), "--phase", "val") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(root / "valA") in err[0]
    assert "--phase val" in err[0] and "test, train" in err[0]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("epoch", ["7", "best"])
def test_missing_epoch_lists_the_checkpoints_there(ckpt, synthetic_root, tmp_path, capsys, epoch):
    assert run_test(ckpt, tmp_path, "--dataroot", synthetic_root, "--epoch", epoch) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"no weights for --epoch {epoch}" in err[0]
    assert "it holds --epoch latest" in err[0]
    assert ("--eval_freq" in err[0]) == (epoch == "best")  # how a best.pth comes about


def test_missing_experiment_folder_is_named(ckpt, synthetic_root, tmp_path, capsys):
    argv = ["--name", "nope", "--checkpoints_dir", ckpt, "--dataroot", synthetic_root,
            "--results_dir", str(tmp_path / "results"), *TINY_TEST]  # fmt: skip
    assert test_script.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist (check --name and --checkpoints_dir)" in err[0]


def png_declaring(path, width: int, height: int) -> None:
    """A PNG whose header declares ``width`` x ``height`` pixels and which holds no pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))  # fmt: skip


@pytest.mark.parametrize("preprocess, direction", [("resize_and_crop", "AtoB"), ("none", "both")])
def test_unreadable_inputs_are_skipped_with_one_warning_each(ckpt, tmp_path, capsys, preprocess, direction):
    inputs = tmp_path / "photos"
    inputs.mkdir()
    noise_image(inputs / "good1.png", 0)
    noise_image(inputs / "good2.png", 1)
    (inputs / "notes.txt").write_text("not an image")  # not an image name: not an input at all
    (inputs / "corrupt.png").write_bytes(b"junk")
    (inputs / "empty.png").write_bytes(b"")
    (inputs / "truncated.png").write_bytes((inputs / "good1.png").read_bytes()[:100])
    png_declaring(inputs / "huge.png", 20000, 20000)  # over PIL's decompression-bomb limit
    before = digests(inputs)
    out = tmp_path / "out"
    status = run_test(ckpt, tmp_path, "--input_dir", str(inputs), "--output_path", str(out),
                      "--test_direction", direction, "--preprocess", preprocess)  # fmt: skip
    captured = capsys.readouterr()
    assert status == 1
    for sub in ["AtoB", "BtoA"] if direction == "both" else [""]:
        assert sorted(os.listdir(out / sub)) == ["good1.png", "good2.png"]
    fakes = sorted(n for n in page_images(tmp_path) if "_fake_" in n)
    assert fakes == sorted(
        f"good{i}_fake_{x}.png" for i in (1, 2) for x in ("AB" if direction == "both" else "B")
    )
    # one warning per file, though with --input_dir both directions read the same folder
    warnings = [line for line in captured.out.splitlines() if line.startswith("warning: skipped")]
    for bad in ("corrupt.png", "empty.png", "truncated.png", "huge.png"):
        assert sum(bad in line for line in warnings) == 1, (bad, warnings)
    assert len(warnings) == 4
    assert "Traceback" not in captured.err and "4 of 6 input images could not be read" in captured.err
    assert digests(inputs) == before


def test_output_path_that_is_the_input_folder_is_refused(ckpt, synthetic_root, tmp_path, capsys):
    inputs = tmp_path / "photos"
    shutil.copytree(os.path.join(synthetic_root, "testA"), inputs)
    before = digests(inputs)
    assert run_test(ckpt, tmp_path, "--input_dir", str(inputs), "--output_path", str(inputs),
                    "--test_direction", "AtoB") == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --output_path {inputs}:") and "input" in err[0]
    assert digests(inputs) == before and not (tmp_path / "results").exists()


def test_output_path_that_is_a_dataset_folder_is_refused(ckpt, synthetic_root, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    before = digests(root / "testB")
    # AtoB alone reads testA, but its outputs would still replace the testB images of the same names
    assert run_test(ckpt, tmp_path, "--dataroot", str(root), "--output_path", str(root / "testB"),
                    "--test_direction", "AtoB") == 2  # fmt: skip
    assert "--output_path" in capsys.readouterr().err
    assert digests(root / "testB") == before


def test_output_path_below_a_plain_input_folder_is_not_read_back(ckpt, tmp_path):
    inputs = tmp_path / "photos"
    inputs.mkdir()
    noise_image(inputs / "a.png", 0)
    for _ in range(2):  # the rerun must not translate the first run's outputs
        assert run_test(ckpt, tmp_path, "--input_dir", str(inputs), "--output_path", str(inputs / "out"),
                        "--test_direction", "AtoB") == 0  # fmt: skip
    assert os.listdir(inputs / "out") == ["a.png"]


def test_unique_stems_keep_unshared_names_and_number_what_is_still_taken():
    from util.test_inputs import unique_stems

    paths = ["d/a.jpg", "d/a.png", "d/a_png.png", "d/B.PNG", "d/b.png", "d/c.png"]
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    assert unique_stems(stems, paths) == ["a_jpg", "a_png_2", "a_png", "B_PNG", "b_png_2", "c"]
