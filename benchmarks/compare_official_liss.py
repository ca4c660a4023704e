"""Side-by-side speed (and peak memory) of the official LiSS step and ours, in one process.

    python -m benchmarks.compare_official_liss --official PATH [--crop_size 128 --auxiliary_tasks rotation,gray]
        [--task_schedule parallel --iters 4 --memory --ours "--no-liss_fast"]

``PATH`` is an extracted checkout of vict0rsch/LiSS. Nothing of it is vendored here: its ``models`` and
``util`` packages are imported from ``PATH`` at run time under other names (as in
``compare_official_cyclegan``). The official model imports ``torch_optimizer`` (RAdam); when that package is
not installed, its RAdam is replaced by ``models.liss_training.LegacyRAdam``, which computes the same updates
(the JSON says which one ran). comet.ml is only touched through ``model.exp``: a do-nothing stand-in.

Both models get the same weights (the official state_dicts load into ours with ``strict=True``) and the same
batch: random images, their four quarter turns (as the dataset makes them), luma images, a jigsaw window and
a depth map. The official rotation/jigsaw heads hard-code a 4x4 map (``Linear(2048)``, 256-px crops) and its
D rotation heads a 30x30 one; at other crops their Linear weights are resized in place (same parameter
objects, so the optimisers still hold them) to the sizes ours computes. ``--task_schedule`` sets the
schedule's first stage on both sides (e.g. ``sequential``: encoders and the first task's heads only).
``optimize_parameters`` is timed alternately (official, ours, ours, official, ...). ``--memory`` measures
each implementation alone in a fresh subprocess. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import types
from types import SimpleNamespace

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.compare_official_cyclegan import SHARED_PACKAGES, build  # noqa: E402
from benchmarks.side_by_side import (  # noqa: E402
    add_run_options,
    compare_alternately,
    current_rss_mb,
    measure_alone,
    official_modules,
    report,
)

OFFICIAL_PREFIX = "_official_liss"
NETS = ("netG_A", "netG_B", "netD_A", "netD_B", "netD_A_gray", "netD_B_gray")


def _torch_optimizer_module() -> tuple[types.ModuleType, str]:
    """The real ``torch_optimizer`` if installed, else a module whose RAdam is our LegacyRAdam."""
    try:
        return importlib.import_module("torch_optimizer"), "torch_optimizer.RAdam"
    except ImportError:
        from models.liss_training import LegacyRAdam

        shim = types.ModuleType("torch_optimizer")
        shim.RAdam = LegacyRAdam
        return shim, "models.liss_training.LegacyRAdam (torch_optimizer not installed)"


def load_official_liss(path: str) -> tuple[type, str]:
    """The official ``LiSSModel`` class from the checkout at ``path`` and the name of the RAdam it uses."""
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, "models", "liss_model.py")):
        raise FileNotFoundError(f"{path} does not look like a LiSS checkout (no models/liss_model.py)")
    optim_module, optim_name = _torch_optimizer_module()
    saved_optim = sys.modules.get("torch_optimizer")
    sys.modules["torch_optimizer"] = optim_module
    try:
        with official_modules(SHARED_PACKAGES, OFFICIAL_PREFIX, path):
            for package in SHARED_PACKAGES:
                folder = os.path.join(path, package)
                if os.path.isdir(folder) and not os.path.isfile(os.path.join(folder, "__init__.py")):
                    # The official util/ has no __init__.py: as a namespace portion it would lose to our util.
                    sys.modules[package] = types.ModuleType(package)
                    sys.modules[package].__path__ = [folder]
            module = importlib.import_module("models.liss_model")
    finally:
        if saved_optim is None:
            sys.modules.pop("torch_optimizer", None)
    return module.LiSSModel, optim_name


class _NoExperiment:
    """What the official model calls on its comet.ml experiment (``model.exp``): nothing is logged."""

    params: dict = {}

    def log_parameter(self, *args, **kwargs) -> None:
        pass

    log_metric = log_text = log_parameter


def our_options(cfg: argparse.Namespace, device: torch.device):
    from options import TrainOptions

    args = ["--model", "liss", "--dataroot", os.devnull, "--gpu_ids", str(device.index or 0)
            if device.type == "cuda" else "-1", "--crop_size", str(cfg.crop_size), "--load_size",
            str(cfg.crop_size), "--jigsaw_size", str(cfg.jigsaw_size), "--batch_size", str(cfg.batch_size),
            "--ngf", str(cfg.ngf), "--ndf", str(cfg.ndf), "--auxiliary_tasks", cfg.auxiliary_tasks,
            "--task_schedule", cfg.task_schedule, *(["--D_rotation"] if cfg.D_rotation else []),
            *shlex.split(cfg.ours)]  # fmt: skip
    return TrainOptions().parse(args, save=False)


def official_options(opt) -> SimpleNamespace:
    """Our parsed options under the official names (the official constructors read a flat namespace)."""
    off = SimpleNamespace(**{k: v for k, v in vars(opt).items() if not k.startswith("_")})
    off.gpu_ids, off.netG, off.netD, off.model = opt.gpu_ids, "liss", "rotational", "liss"
    off.lambda_CA, off.lambda_CB, off.lambda_I = opt.lambda_A, opt.lambda_B, opt.lambda_identity
    return off


def _resize_linear(linear: nn.Linear, in_features: int) -> None:
    """Give an official head's Linear ``in_features`` inputs, keeping its Parameter objects."""
    if linear.in_features != in_features:
        weight = torch.empty(linear.out_features, in_features, device=linear.weight.device)
        linear.weight.data = weight.normal_(0.0, 0.02)  # the official init
        linear.in_features = in_features


def build_official(official_cls, opt, device: torch.device):
    """The official model for ``opt``, its heads' Linear layers sized as ours are for this crop."""
    from models.networks.liss import classifier_map_size, parse_tasks, patch_map_size

    model = official_cls(official_options(opt))
    model.exp = _NoExperiment()
    crop = opt.jigsaw_size if parse_tasks(opt.auxiliary_tasks) == ("jigsaw",) else opt.crop_size
    head_in = 128 * classifier_map_size(crop) ** 2
    for name in NETS:
        if hasattr(model, name):
            net = getattr(model, name).to(device)
            if name.startswith("netG"):
                _resize_linear(net.rotation[-1], head_in)
                _resize_linear(net.jigsaw[-1], head_in)
            else:
                _resize_linear(net.rotation[-1], patch_map_size(opt.crop_size, opt.n_layers_D) ** 2)
    return model


def make_batch(cfg: argparse.Namespace, device: torch.device) -> dict:
    """What LiSSDataset yields for ``batch_size`` images, built from random pixels."""
    gen = torch.Generator().manual_seed(cfg.seed)
    n, s, j = cfg.batch_size, cfg.crop_size, cfg.jigsaw_size
    batch = {"A_paths": [f"{i}.png" for i in range(n)], "B_paths": [f"{i}.png" for i in range(n)]}
    for X in "AB":
        real = torch.rand((n, 3, s, s), generator=gen) * 2 - 1
        labels = torch.stack([torch.randperm(4, generator=gen) for _ in range(n)])
        turns = [torch.cat([torch.rot90(real[i], int(k), (1, 2)) for k in labels[i]]) for i in range(n)]
        luma = (real * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        batch.update({
            X: real, f"{X}_rotation": torch.stack(turns), f"{X}_rotation_target": labels,
            f"{X}_gray": luma.repeat(1, 3, 1, 1), f"{X}_jigsaw": real[:, :, :j, :j].flip(-1).contiguous(),
            f"{X}_jigsaw_target": torch.randint(0, 64, (n,), generator=gen),
            f"{X}_depth_target": torch.rand((n, 1, s, s), generator=gen, dtype=torch.float64) * 4,
        })  # fmt: skip
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def official_batch(batch: dict) -> dict:
    return {{"A": "A_real", "B": "B_real"}.get(k, k): v for k, v in batch.items()}


def build_pair(cfg: argparse.Namespace, device: torch.device, which: str = "both"):
    """(official or None, ours or None, name of the official RAdam): same weights, batch set."""
    official_cls, optim_name = load_official_liss(cfg.official)
    opt = our_options(cfg, device)
    torch.manual_seed(cfg.seed)
    official = build_official(official_cls, opt, device) if which != "ours" else None
    ours = build("ours", cfg, device, opt=opt) if which != "official" else None
    batch = make_batch(cfg, device)
    if official is not None:
        official.set_input(official_batch(batch))
    if ours is not None:
        if official is not None:
            for name in NETS:
                if hasattr(official, name):
                    getattr(ours, name).load_state_dict(getattr(official, name).state_dict(), strict=True)
        ours.set_input(batch)
    return official, ours, optim_name


def compare_speed(cfg: argparse.Namespace, device: torch.device) -> dict:
    official, ours, optim_name = build_pair(cfg, device)
    torch.backends.cudnn.benchmark = cfg.cudnn_benchmark  # the official BaseModel turns it on
    steps = {"official": official.optimize_parameters, "ours": ours.optimize_parameters}
    return {"official_radam": optim_name, **compare_alternately(steps, cfg.iters, cfg.warmup, device)}


def memory_alone(which: str, cfg: argparse.Namespace, device: torch.device) -> dict:
    """Build and step one implementation only (in its own subprocess); both codebases are imported first."""
    load_official_liss(cfg.official)
    our_options(cfg, device)
    rss_imports = current_rss_mb()
    torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
    official, ours, _ = build_pair(cfg, device, which)
    model = official if which == "official" else ours
    return measure_alone(model.optimize_parameters, rss_imports, cfg.warmup + cfg.mem_iters, device)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True, help="extracted vict0rsch/LiSS checkout")
    p.add_argument("--crop_size", type=int, default=128)
    p.add_argument("--jigsaw_size", type=int, default=0, help="0: 222 at 256-px crops, else 111 at 128")
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--auxiliary_tasks", default="rotation, gray, depth, jigsaw")
    p.add_argument("--task_schedule", default="parallel", help="its first stage runs on both sides")
    p.add_argument("--D_rotation", action="store_true")
    p.add_argument(
        "--ours", default="", help="extra train.py options for our side, e.g. '--no-liss_reuse_encodings'"
    )
    add_run_options(p, iters=4, mem_iters=2)
    p.add_argument("--cudnn_benchmark", action=argparse.BooleanOptionalAction, default=True)
    args = p.parse_args(argv)
    if not os.path.isfile(os.path.join(args.official, "models", "liss_model.py")):
        p.error(f"--official {args.official}: not a LiSS checkout (no models/liss_model.py)")
    if args.jigsaw_size == 0:
        args.jigsaw_size = 222 if args.crop_size >= 209 else 111
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = parse_args(argv)
    cfg.official = os.path.abspath(cfg.official)  # the memory subprocesses run from the repository root
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    keys = ("crop_size", "jigsaw_size", "batch_size", "ngf", "ndf", "auxiliary_tasks", "task_schedule",
            "D_rotation", "ours")  # fmt: skip
    config = {k: getattr(cfg, k) for k in keys}
    return report(argv, "benchmarks.compare_official_liss", cfg, torch.device(cfg.device), compare_speed,
                  memory_alone, config)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
