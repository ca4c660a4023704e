"""Side-by-side speed (and peak memory) of the official U-GAT-IT iteration and ours, in one process.

    python -m benchmarks.compare_official_ugatit --official PATH [--light --img_size 128 --iters 4 --memory]

``PATH`` is an extracted checkout of znxlwm/UGATIT-pytorch (``UGATIT.py``, ``networks.py``, ``dataset.py``).
Nothing of it is vendored here: its modules are imported from ``PATH`` at run time under other names
(``utils.py`` needs OpenCV and the removed ``scipy.misc`` for its image helpers, which training does not use,
so an empty stand-in is imported in its place). The official ``UGATIT`` object is built by its own
``__init__``/``build_model`` (on a one-image dummy dataset in a temporary folder, which its loaders need), and
its step is the body of the official ``UGATIT.train()`` loop, from ``# Update D`` to the ρ clipping, cut out of
the source at run time and executed as a method: no copy of it lives in this repository. Data loading and the
lr-decay lines of that loop are left out on both sides.

Both models get the same weights (the official state_dicts are loaded into ours with ``strict=True``) and the
same batch; official and ours iterations alternate so that load drift on a shared machine hits both alike.
Our side is ``optimize_parameters`` plus ``on_step_end`` (ρ clipping, scheduler). ``--ours_args`` passes
extra options to our model (e.g. ``--no-ugatit_fused_sn`` for the bit-exact path). ``--memory`` also measures
the peak resident set (CPU) or peak allocated memory (CUDA) of each implementation alone, each in a fresh
subprocess with both codebases imported. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import shlex
import sys
import tempfile
import textwrap
import types
from types import SimpleNamespace

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.compare_official_cyclegan import build, make_batch  # noqa: E402
from benchmarks.side_by_side import (  # noqa: E402
    add_run_options,
    compare_alternately,
    current_rss_mb,
    measure_alone,
    official_modules,
    report,
)

OFFICIAL_MODULES = ("networks", "dataset", "utils", "UGATIT")
OFFICIAL_PREFIX = "_official_ugatit"
NETS = ("genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB")
STEP_START, STEP_END = "# Update D", "self.genB2A.apply(self.Rho_clipper)"


def load_official_ugatit(path: str):
    """The official ``UGATIT`` class and its training-step body (a function of ``self, real_A, real_B``)."""
    path = os.path.abspath(path)
    with official_modules(OFFICIAL_MODULES, OFFICIAL_PREFIX) as official:
        # utils.py holds only sampling/test helpers; UGATIT.py gets os, numpy and torch through its star import.
        stand_in = sys.modules["utils"] = types.ModuleType("utils")
        stand_in.os, stand_in.np, stand_in.torch = os, importlib.import_module("numpy"), torch
        for name in ("networks", "dataset", "UGATIT"):
            spec = importlib.util.spec_from_file_location(name, os.path.join(path, f"{name}.py"))
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    cls = official["UGATIT"].UGATIT
    source = inspect.getsource(cls.train)
    start, end = source.index(STEP_START), source.index(STEP_END) + len(STEP_END)
    body = textwrap.dedent(source[source.rindex("\n", 0, start) + 1 : end])
    namespace = dict(vars(official["UGATIT"]))
    code = "def official_step(self, real_A, real_B):\n" + textwrap.indent(body, "    ")
    exec(compile(code, os.path.join(path, "UGATIT.py"), "exec"), namespace)
    return cls, namespace["official_step"]


class OfficialRunner:
    """The official ``UGATIT`` object (built by its own code) behind ``set_input``/``optimize_parameters``."""

    def __init__(self, cls, step_fn, cfg: argparse.Namespace, device: torch.device) -> None:
        args = SimpleNamespace(
            light=cfg.light, result_dir=os.devnull, dataset="bench", iteration=1_000_000, decay_flag=True,
            batch_size=cfg.batch_size, print_freq=1000, save_freq=100000, lr=1e-4, weight_decay=1e-4,
            ch=cfg.ch, adv_weight=1, cycle_weight=10, identity_weight=10, cam_weight=1000, n_res=cfg.n_res,
            n_dis=6, img_size=cfg.img_size, img_ch=3, device=str(device), benchmark_flag=False, resume=False,
        )  # fmt: skip
        from PIL import Image

        cwd = os.getcwd()
        with tempfile.TemporaryDirectory() as tmp:  # build_model opens dataset/<name>/{train,test}{A,B}
            for part in ("trainA", "trainB", "testA", "testB"):
                os.makedirs(os.path.join(tmp, "dataset", "bench", part))
                Image.new("RGB", (8, 8)).save(os.path.join(tmp, "dataset", "bench", part, "0.png"))
            os.chdir(tmp)
            try:
                self.ugatit = cls(args)
                self.ugatit.build_model()
            finally:
                os.chdir(cwd)
        for name in NETS:
            getattr(self.ugatit, name).train()
        self.step_fn = step_fn

    def set_input(self, batch: dict) -> None:
        self.real_A, self.real_B = batch["A"], batch["B"]

    def optimize_parameters(self) -> None:
        self.step_fn(self.ugatit, self.real_A, self.real_B)


class OurRunner:
    """Our model; one iteration = ``optimize_parameters`` + ``on_step_end`` (the official ρ clipping)."""

    def __init__(self, model) -> None:
        self.model = model

    def set_input(self, batch: dict) -> None:
        self.model.set_input(batch)

    def optimize_parameters(self) -> None:
        self.model.optimize_parameters()
        self.model.on_step_end()


def our_options(cfg: argparse.Namespace, device: torch.device):
    from options import TrainOptions

    args = ["--model", "ugatit", "--dataroot", os.devnull, "--gpu_ids", str(device.index or 0) if device.type == "cuda" else "-1",
            "--img_size", str(cfg.img_size), "--light", str(cfg.light), "--ch", str(cfg.ch), "--n_res", str(cfg.n_res),
            "--batch_size", str(cfg.batch_size), *shlex.split(cfg.ours_args)]  # fmt: skip
    return TrainOptions().parse(args, save=False)


def build_pair(cfg, device, which=("official", "ours")) -> dict:
    cls, step_fn = load_official_ugatit(cfg.official)
    opt = our_options(cfg, device)
    rss_imports = current_rss_mb()
    runners = {}
    torch.manual_seed(cfg.seed)
    if "official" in which:
        runners["official"] = OfficialRunner(cls, step_fn, cfg, device)
    if "ours" in which:
        model = build("ours", cfg, device, opt=opt)
        model.setup()
        if "official" in runners:  # a memory run alone keeps our own (seeded) initial weights
            for name in NETS:
                state = getattr(runners["official"].ugatit, name).state_dict()
                getattr(model, name).load_state_dict(state, strict=True)
        runners["ours"] = OurRunner(model)
    batch = make_batch(
        SimpleNamespace(seed=cfg.seed, batch_size=cfg.batch_size, crop_size=cfg.img_size), device
    )
    for runner in runners.values():
        runner.set_input(batch)
    return {"runners": runners, "rss_after_imports_mb": rss_imports}


def compare_speed(cfg: argparse.Namespace, device: torch.device) -> dict:
    runners = build_pair(cfg, device)["runners"]
    steps = {name: runner.optimize_parameters for name, runner in runners.items()}
    return compare_alternately(steps, cfg.iters, cfg.warmup, device)


def memory_alone(which: str, cfg: argparse.Namespace, device: torch.device) -> dict:
    """Build (both codebases imported, only ``which`` kept) and step one implementation in this process."""
    built = build_pair(cfg, device, which=(which,))
    step = built["runners"][which].optimize_parameters
    return measure_alone(step, built["rss_after_imports_mb"], cfg.warmup + cfg.mem_iters, device)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True, help="extracted znxlwm/UGATIT-pytorch checkout")
    p.add_argument("--light", action=argparse.BooleanOptionalAction, default=True, help="light G (default)")
    p.add_argument("--img_size", type=int, default=128)
    p.add_argument("--ch", type=int, default=64)
    p.add_argument("--n_res", type=int, default=4)
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--ours_args", default="", help="extra options for our model, one quoted string")
    add_run_options(p, iters=4, mem_iters=1)
    args = p.parse_args(argv)
    if not os.path.isfile(os.path.join(args.official, "UGATIT.py")):
        p.error(f"--official {args.official}: not a UGATIT-pytorch checkout (no UGATIT.py)")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = parse_args(argv)
    cfg.official = os.path.abspath(cfg.official)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    keys = ("light", "img_size", "ch", "n_res", "batch_size", "ours_args", "iters", "warmup")
    config = {k: getattr(cfg, k) for k in keys}
    return report(argv, "benchmarks.compare_official_ugatit", cfg, torch.device(cfg.device), compare_speed,
                  memory_alone, config)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
