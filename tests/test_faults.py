"""Fault injection: kills at random steps and during saves, signals, full disks, bad data, several processes.

A killed run resumed with ``--continue_train`` must end bit-identical to a run that was never interrupted.
The default run covers cycle_gan (epoch-based, image pools) and unit (iteration-based); ``pytest -m faults``
runs the same probes for every model (see docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import TINY, _command_line

import train
from data.samplers import EpochSampler
from util.checkpoint import load_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")

# A run of train.main in a child that kills itself: "step K" right after step K (saves every 2 steps), or
# "save K" in the middle of its K-th checkpoint write (half the temp file on disk).
KILLER = """
import os, signal, sys
sys.path.insert(0, {root!r})
import torch, train
from util import trainer
mode, k = sys.argv[1], int(sys.argv[2])
if mode == "step":
    after = trainer.Trainer.after_step
    def after_step(self, *args):
        after(self, *args)
        if self.global_step == k:
            os.kill(os.getpid(), signal.SIGKILL)
    trainer.Trainer.after_step = after_step
else:
    real_save, count = torch.save, [0]
    def save(obj, f, *args, **kwargs):
        count[0] += 1
        real_save(obj, f, *args, **kwargs)
        if count[0] == k:
            with open(f, "r+b") as fh:
                fh.truncate(os.path.getsize(f) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    torch.save = save
sys.exit(train.main(sys.argv[3:]))
"""

_TUNIT = ["--output_k", "4", "--sty_dim", "16", "--tunit_g_nf", "8", "--tunit_g_nf_mlp", "32", "--tunit_d_nf",
          "8", "--tunit_d_max_nf", "32", "--tunit_c_widths", "4,M,8,M,16,M,16,M,16,M", "--moco_k", "8",
          "--tunit_gan_start", "2", "--tunit_ema_start", "2"]  # fmt: skip
_UGATIT = ["--ch", "4", "--img_size", "96", "--load_size", "96", "--crop_size", "96"]
_CUT = ["--netF_nc", "16", "--num_patches", "16"]
# model -> (dataset layout, its tiny options); iteration-based models get --max_steps as their length
MODELS = {
    "cycle_gan": ("unaligned", ["--model", "cycle_gan", "--pool_size", "2"]),
    "unit": ("unaligned", ["--model", "unit", "--num_scales", "2"]),
    "cut": ("unaligned", ["--model", "cut", *_CUT]),
    "fastcut": ("unaligned", ["--model", "cut", "--CUT_mode", "FastCUT", *_CUT]),
    "srunit": ("unaligned", ["--model", "srunit", *_CUT]),
    "liss": ("depths", ["--model", "liss", "--jigsaw_size", "84", "--load_size", "96", "--crop_size", "96"]),
    "ugatit": ("unaligned", ["--model", "ugatit", "--light", "True", *_UGATIT]),
    "ugatit_enhanced": ("unaligned", ["--model", "ugatit_enhanced", "--light", "True", *_UGATIT]),
    "tunit": ("class_folder", ["--model", "tunit", "--batch_size", "2", *_TUNIT]),
}
DEFAULT = ("cycle_gan", "unit")
STEPS = 6


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, str]:
    from datasets.make_synthetic import make_synthetic

    base = tmp_path_factory.mktemp("fault_data")
    made = {}
    for layout, size in (("unaligned", 32), ("class_folder", 32), ("depths", 96)):
        kind = "unaligned" if layout == "depths" else layout
        made[layout] = make_synthetic(
            str(base / layout), layout=kind, size=size, n_train=4, n_test=1, seed=0, depths=layout == "depths"
        )
    return made


def model_args(roots, tmp_path, model: str, name: str, *extra: str) -> list[str]:
    layout, args = MODELS[model]
    length = ["--max_steps", str(STEPS)]
    return _command_line(
        TINY, args[1], roots[layout], name, str(tmp_path / "ck"), [*args[2:], *length, *extra]
    )


def run_killer(mode: str, k: int, argv: list[str]) -> subprocess.CompletedProcess:
    code = KILLER.format(root=ROOT)
    proc = subprocess.run([sys.executable, "-c", code, mode, str(k), *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def assert_same_training_state(a: dict, b: dict) -> None:
    assert a["progress"] == b["progress"]
    for net, state in a["networks"].items():
        for key, value in state.items():
            assert torch.equal(value, b["networks"][net][key]), f"{net}.{key} differs after the faults"
    for name, opt_state in a["optimizers"].items():
        for i, entry in opt_state["state"].items():
            for key, value in entry.items():
                if torch.is_tensor(value):
                    assert torch.equal(value, b["optimizers"][name]["state"][i][key]), f"optimizer {name}"


def kill_and_resume(roots, tmp_path, model: str, seed: int, kill_at_step: bool = True) -> None:
    """Reference run; then kill at a random step, kill during a later save, resume to the end: identical.

    A kill during a save also kills at a step: the resumed run replays the steps since the previous save.
    """
    rng = random.Random(seed)
    ref = model_args(roots, tmp_path, model, "ref", "--save_latest_freq", "1000")
    assert train.main(ref) == 0
    argv = model_args(roots, tmp_path, model, "faulty", "--save_latest_freq", str(2 * _batch(model)))
    if kill_at_step:
        run_killer("step", rng.randrange(2, STEPS - 1), argv)
        run_killer("save", 1, [*argv, "--continue_train"])  # the resumed run's first save
    else:
        run_killer("save", 2 + rng.randrange(2), argv)  # the save at step 4 or 6
    folder = tmp_path / "ck" / "faulty"
    assert [f for f in os.listdir(folder) if ".tmp" in f], "the kill during the save left no temp file"
    assert train.main([*argv, "--continue_train"]) == 0
    assert not [f for f in os.listdir(folder) if ".tmp" in f]
    a = load_checkpoint(str(tmp_path / "ck" / "ref" / "latest.pth"))
    b = load_checkpoint(str(folder / "latest.pth"))
    assert_same_training_state(a, b)


def _batch(model: str) -> int:
    args = MODELS[model][1]
    return int(args[args.index("--batch_size") + 1]) if "--batch_size" in args else 1


@pytest.mark.parametrize("model", DEFAULT)
def test_sigkill_during_a_save_resumes_bit_identically(roots, tmp_path, model):
    kill_and_resume(roots, tmp_path, model, seed=int(os.environ.get("FAULT_SEED", "0")), kill_at_step=False)


@pytest.mark.faults
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_resumes_bit_identically_after_sigkills(roots, tmp_path, model):
    kill_and_resume(roots, tmp_path, model, seed=int(os.environ.get("FAULT_SEED", "1")))


@pytest.mark.faults
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_nan_stop_leaves_a_loadable_finite_checkpoint(
    roots, tmp_path, model, capsys, monkeypatch
):
    """Weights turn NaN right after the save of step 2: that save stays the last, loadable and finite."""
    from util import trainer as trainer_module
    from util.checkpoint import count_non_finite

    after = trainer_module.Trainer.after_step

    def poison_after_step_2(self, *args):
        after(self, *args)
        if self.global_step == 2:
            with torch.no_grad():
                next(iter(self.model.networks().values())).parameters().__next__().fill_(float("nan"))

    monkeypatch.setattr(trainer_module.Trainer, "after_step", poison_after_step_2)
    argv = model_args(roots, tmp_path, model, "nan", "--save_latest_freq", str(_batch(model)))
    assert train.main(argv) == 1
    err = capsys.readouterr().err
    assert "non-finite" in err and "latest.pth from step 2 is kept" in err, err
    ckpt = load_checkpoint(str(tmp_path / "ck" / "nan" / "latest.pth"))
    assert ckpt["progress"]["global_step"] == 2
    assert count_non_finite([ckpt["networks"], ckpt["optimizers"], ckpt["model_state"]])[0] == 0


# ---------------------------------------------------------------- signals, disk, data
def test_double_ctrl_c_exits_quietly_and_says_what_happened(train_args, tmp_path):
    argv = train_args("--n_epochs", "500", "--print_freq", "1", "--num_threads", "2")
    proc = subprocess.Popen([sys.executable, "train.py", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    deadline = time.time() + 240
    for line in proc.stdout:
        if line.startswith("(epoch: 1, iters: 2"):
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole group, DataLoader workers too
            time.sleep(float(os.environ.get("CTRL_C_GAP", "0.05")))
            os.killpg(proc.pid, signal.SIGINT)
            break
        assert time.time() < deadline, "training never reached iteration 2"
    rest = proc.communicate(timeout=240)[0]
    assert rest.count("received signal") == 1 and "Traceback" not in rest, rest
    if proc.returncode == -signal.SIGINT:  # the second one came after the save, as Python was exiting
        assert "resume with --continue_train" in rest
        return
    assert proc.returncode == 128 + signal.SIGINT, rest
    outcomes = ("save had finished", "save was skipped", "save in progress was abandoned")
    assert "stopped by a second signal" in rest and any(o in rest for o in outcomes), rest


def test_file_size_limit_during_a_save_keeps_the_old_checkpoint(train_args, tmp_path, capsys):
    """A real write failure (RLIMIT_FSIZE, SIGXFSZ ignored): one line, the previous checkpoint intact."""
    assert train.main(train_args("--max_steps", "2")) == 0
    latest = tmp_path / "checkpoints" / "exp" / "latest.pth"
    limit = latest.stat().st_size // 2

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as a shell's ulimit -f with the signal ignored
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        status = train.main(train_args("--max_steps", "4", "--continue_train"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not write checkpoint" in err[0], err
    assert "previous file is intact" in err[0], err
    assert load_checkpoint(str(latest))["progress"]["global_step"] == 2
    assert not [f for f in os.listdir(latest.parent) if ".tmp" in f]


def test_corrupt_image_read_by_a_worker_is_one_line(tmp_path, synthetic_root, capsys):
    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    victim = sorted((root / "trainA").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:60])
    argv = _command_line(TINY, "cycle_gan", str(root), "bad", str(tmp_path / "ck"), ["--num_threads", "2"])
    assert train.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and victim.name in err[0] and "worker" not in err[0], err


@pytest.mark.parametrize(
    "heights,extra,expected",
    [([48, 50], ["--batch_size", "1"], "50 after --preprocess scale_width: --model cycle_gan trains on sides "
                                        "that are multiples of 4"),
     ([48, 56], ["--batch_size", "2", "--num_threads", "2"], "images of different sizes in one batch"),
     ([4, 4], ["--batch_size", "1", "--preprocess", "none"], "32 x 4 after --preprocess none: --model cycle_gan "
                                                             "with these options trains on sides of at least")],
)  # fmt: skip
def test_images_that_keep_their_aspect_ratio_get_one_line(tmp_path, capsys, heights, extra, expected):
    """--preprocess scale_width: a height the generator cannot keep, two shapes in one batch, a side under the
    networks' smallest (before: a padding error deep inside the generator)."""
    import numpy as np
    from PIL import Image

    for folder in ("trainA", "trainB"):
        os.makedirs(tmp_path / "data" / folder)
        for i, height in enumerate(heights):
            Image.fromarray(np.zeros((height, 32, 3), np.uint8)).save(tmp_path / "data" / folder / f"{i}.png")
    argv = _command_line(TINY, "cycle_gan", str(tmp_path / "data"), "aspect", str(tmp_path / "ck"),
                         ["--preprocess", "scale_width", "--no_flip", "--serial_batches", "--max_steps", "2",
                          *extra])  # fmt: skip
    assert train.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and str(tmp_path / "data" / "trainA") in err[0], err


def test_symlink_loop_in_a_class_folder_is_skipped_with_one_warning(tmp_path, capsys):
    from data.image_io import list_images
    from datasets.make_synthetic import make_synthetic

    root = make_synthetic(str(tmp_path / "cls"), layout="class_folder", size=16, n_train=3, n_test=1, seed=0)
    train_dir = os.path.join(root, "train")
    first = sorted(d for d in os.listdir(train_dir) if os.path.isdir(os.path.join(train_dir, d)))[0]
    folder = os.path.join(train_dir, first)
    expected = list_images(folder, recursive=True)
    os.symlink(folder, os.path.join(folder, "self"))
    os.symlink(train_dir, os.path.join(folder, "up"))
    assert list_images(folder, recursive=True) == expected
    assert capsys.readouterr().out.count("link loop") == 2


# ---------------------------------------------------------------- several processes (gloo on CPU)
needs_torchrun = pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun not installed")


def torchrun(*runs: list[str]) -> None:
    """2-process runs of train.py, launched together (start-up, not training, is most of their time)."""
    procs = [
        subprocess.Popen([TORCHRUN, "--standalone", "--nproc_per_node", "2", "train.py", *argv], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for argv in runs
    ]  # fmt: skip
    for proc in procs:
        out = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, out[-3000:]


def random_inception(folder) -> str:
    """A randomly initialised FID Inception saved as a weights file: the evaluation pipeline runs without a download."""
    from util.metrics.inception import FIDInceptionV3

    torch.manual_seed(0)
    path = str(folder / "inception.pth")
    torch.save(FIDInceptionV3().state_dict(), path)
    return path


@needs_torchrun
def test_two_process_resume_is_exact_and_a_one_process_resume_continues_at_the_same_image(
    train_args, tmp_path
):
    """Per-rank pools and RNGs come back per rank; a 1-process resume reads the epoch's remaining images."""
    common = ["--n_epochs", "1", "--n_epochs_decay", "1", "--max_dataset_size", "6", "--pool_size", "2",
              "--lr", "0.001", "--save_epoch_freq", "0"]  # fmt: skip
    evaluation = ["--eval_freq", "2", "--fid_weights", random_inception(tmp_path), "--fid_dims", "64",
                  "--fid_cache_dir", "none"]  # fmt: skip
    torchrun(train_args(*common, name="straight"), train_args(*common, "--max_steps", "2", name="resumed"),
             train_args(*common, *evaluation, name="evaluated"))  # fmt: skip
    ck = tmp_path / "checkpoints"
    # rank 0 scored steps 2, 4 and 6; every rank saved its state into best.pth at the best one, and the
    # evaluation left the training untouched
    with open(ck / "evaluated" / "eval_history.json") as f:
        history = json.load(f)
    assert [h["step"] for h in history] == [2, 4, 6]
    best = load_checkpoint(str(ck / "evaluated" / "best.pth"))
    assert best["progress"]["global_step"] == min(history, key=lambda h: h["fid"])["step"]
    assert len(best["per_rank"]) == 2
    assert_same_training_state(
        load_checkpoint(str(ck / "straight" / "latest.pth")),
        load_checkpoint(str(ck / "evaluated" / "latest.pth")),
    )
    shutil.copytree(ck / "resumed", ck / "single")
    stopped = load_checkpoint(str(ck / "single" / "latest.pth"))
    assert stopped["progress"]["epoch_images"] == 4 and len(stopped["per_rank"]) == 2
    torchrun(train_args(*common, "--continue_train", name="resumed"))
    assert_same_training_state(
        load_checkpoint(str(ck / "straight" / "latest.pth")),
        load_checkpoint(str(ck / "resumed" / "latest.pth")),
    )

    from options import TrainOptions
    from util.trainer import Trainer

    opt = TrainOptions().parse(
        train_args(*common, "--continue_train", "--max_steps", "4", name="single"), save=False
    )
    trainer = Trainer(opt)
    seen, set_input = [], trainer.model.set_input
    trainer.model.set_input = lambda batch: (seen.extend(batch["A_paths"]), set_input(batch))
    trainer.fit()
    sampler = EpochSampler(6, shuffle=True, seed=0)
    sampler.set_epoch(1)
    paths = trainer.dataset.A_paths
    assert seen == [paths[i % len(paths)] for i in list(sampler)[4:6]]


@needs_torchrun
def test_a_non_finite_loss_on_one_rank_stops_every_rank(tmp_path):
    """The lazy loss flag is all-reduced when read: rank 0, whose losses are finite, stops as well."""
    script = tmp_path / "flag.py"
    script.write_text(
        "import sys, torch, torch.distributed as dist\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from util.nonfinite import LossWatch, NonFiniteLossError\n"
        "dist.init_process_group('gloo')\n"
        "watch = LossWatch(torch.device('cpu'))\n"
        "bad = float('nan') if dist.get_rank() == 1 else 1.0\n"
        "watch.observe({'G': torch.tensor(bad)}, 3)\n"
        "try:\n"
        "    watch.raise_if_bad(all_reduce=True)\n"
        "    sys.exit(2)\n"
        "except NonFiniteLossError as exc:\n"
        "    print(f'rank {dist.get_rank()}: {exc}')\n"
        "dist.destroy_process_group()\n"
    )
    proc = subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node", "2", str(script)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "rank 0: a loss became non-finite in another process" in proc.stdout
    assert "rank 1: non-finite loss (G) first at step 3" in proc.stdout
