"""Side-by-side speed (and peak memory) of the official UNIT step and ours, in one process.

    python -m benchmarks.compare_official_unit --official PATH [--crop_size 128 --iters 4 --memory]

``PATH`` is an extracted checkout of mingyuliutw/UNIT (branch ``master``; its ``trainer.py``, ``networks.py``
and ``utils.py`` sit at the top level). Nothing of it is vendored here: its modules are imported from ``PATH``
at run time under other names. Two of its imports cannot work today and are stubbed for the import only:
``torch.utils.serialization`` (removed in torch 1.0; only the VGG loader used it) and its ``data`` module
(data loaders, not needed for a step; the name would clash with our ``data`` package). On CPU its ``.cuda()``
calls (noise, nsgan targets) are made no-ops for the whole process.

One official iteration is ``dis_update``, ``gen_update``, ``update_learning_rate`` (its ``train.py`` loop; the
scheduler step moved after the updates, which costs the same); ours is ``optimize_parameters`` then
``on_step_end``. Both get the same weights (the official state_dicts are loaded into ours with ``strict=True``)
and the same batch, and their steps are timed alternately (official, ours, official, ...), so that load drift
on a shared machine hits both alike. ``--memory`` also measures the peak resident set (CPU) or peak
allocated memory (CUDA) of each alone, each in a fresh subprocess. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import types

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.compare_official_cyclegan import make_batch  # noqa: E402
from benchmarks.side_by_side import (  # noqa: E402
    add_run_options,
    compare_alternately,
    current_rss_mb,
    measure_alone,
    official_modules,
    report,
)

# Top-level module names of the official checkout; ``data`` is also ours.
OFFICIAL_MODULES = ("trainer", "networks", "utils", "data")
OFFICIAL_PREFIX = "_official_unit"


def load_official_unit(path: str, device: torch.device):
    """Import the official ``UNIT_Trainer`` class from the checkout at ``path`` (see the module docstring)."""
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, "trainer.py")):
        raise FileNotFoundError(f"{path} does not look like a mingyuliutw/UNIT checkout (no trainer.py)")
    serialization = types.ModuleType("torch.utils.serialization")
    serialization.load_lua = None
    try:
        with official_modules(OFFICIAL_MODULES, OFFICIAL_PREFIX, path):
            data = types.ModuleType("data")
            data.ImageFilelist = data.ImageFolder = None
            sys.modules.update({"torch.utils.serialization": serialization, "data": data})
            module = importlib.import_module("trainer")
    finally:
        sys.modules.pop("torch.utils.serialization", None)
    if device.type == "cpu":
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    return module.UNIT_Trainer


def official_config(cfg: argparse.Namespace) -> dict:
    """The official ``configs/unit_*_folder.yaml`` training values (vgg_w 0), with this run's widths."""
    return dict(
        lr=1e-4, beta1=0.5, beta2=0.999, weight_decay=1e-4, lr_policy="step", step_size=100000, gamma=0.5,
        init="kaiming", gan_w=1, recon_x_w=10, recon_kl_w=0.01, recon_x_cyc_w=10, recon_kl_cyc_w=0.01, vgg_w=0,
        input_dim_a=3, input_dim_b=3, batch_size=cfg.batch_size,
        gen=dict(dim=cfg.dim, activ="relu", n_downsample=2, n_res=cfg.n_res, pad_type="reflect"),
        dis=dict(dim=cfg.dim, norm="none", activ="lrelu", n_layer=4, gan_type=cfg.gan_type,
                 num_scales=cfg.num_scales, pad_type="reflect"),
    )  # fmt: skip


def our_options(cfg: argparse.Namespace, device: torch.device):
    from options import TrainOptions

    args = ["--model", "unit", "--dataroot", os.devnull, "--display_id", "0",
            "--gpu_ids", str(device.index or 0) if device.type == "cuda" else "-1",
            "--crop_size", str(cfg.crop_size), "--load_size", str(cfg.crop_size),
            "--batch_size", str(cfg.batch_size), "--gen.dim", str(cfg.dim), "--dis.dim", str(cfg.dim),
            "--n_res", str(cfg.n_res), "--num_scales", str(cfg.num_scales), "--gan_type", cfg.gan_type,
            *cfg.ours_args.split()]  # fmt: skip
    return TrainOptions().parse(args, save=False)


class OfficialStep:
    """The official ``train.py`` loop body behind the ``set_input`` / ``optimize_parameters`` interface."""

    def __init__(self, trainer_cls, cfg: argparse.Namespace, device: torch.device) -> None:
        self.hyperparameters = official_config(cfg)
        self.trainer = trainer_cls(self.hyperparameters).to(device)
        self.trainer.train()

    def set_input(self, batch: dict) -> None:
        self.x_a, self.x_b = batch["A"], batch["B"]

    def optimize_parameters(self) -> None:
        self.trainer.dis_update(self.x_a, self.x_b, self.hyperparameters)
        self.trainer.gen_update(self.x_a, self.x_b, self.hyperparameters)
        self.trainer.update_learning_rate()


class OurStep:
    """Our model's iteration: ``optimize_parameters`` then the per-step schedule."""

    def __init__(self, opt, device: torch.device) -> None:
        import models
        from util.runtime import Runtime

        self.model = models.create_model(opt).to(device)
        self.model.runtime = Runtime(device)
        self.model.setup()

    def set_input(self, batch: dict) -> None:
        self.model.set_input(batch)

    def optimize_parameters(self) -> None:
        self.model.optimize_parameters()
        self.model.on_step_end()


def copy_weights(official: OfficialStep, ours: OurStep) -> None:
    for name in ("gen_a", "gen_b", "dis_a", "dis_b"):
        getattr(ours.model, name).load_state_dict(getattr(official.trainer, name).state_dict(), strict=True)


def compare_speed(cfg: argparse.Namespace, device: torch.device) -> dict:
    official = OfficialStep(load_official_unit(cfg.official, device), cfg, device)
    ours = OurStep(our_options(cfg, device), device)
    copy_weights(official, ours)
    batch = make_batch(cfg, device)
    official.set_input(batch)
    ours.set_input(batch)
    steps = {"official": official.optimize_parameters, "ours": ours.optimize_parameters}
    return compare_alternately(steps, cfg.iters, cfg.warmup, device)


def memory_alone(which: str, cfg: argparse.Namespace, device: torch.device) -> dict:
    """Build and step one implementation only (in its own subprocess); both codebases are imported and our
    options parsed before the resident set is read, so the peak over it compares what the networks,
    optimisers and steps cost, not what got imported."""
    official_cls = load_official_unit(cfg.official, device)
    opt = our_options(cfg, device)
    rss_imports = current_rss_mb()
    step = OfficialStep(official_cls, cfg, device) if which == "official" else OurStep(opt, device)
    step.set_input(make_batch(cfg, device))
    return measure_alone(step.optimize_parameters, rss_imports, cfg.warmup + cfg.mem_iters, device)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True, help="extracted mingyuliutw/UNIT checkout (master)")
    p.add_argument("--crop_size", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--dim", type=int, default=64, help="gen.dim and dis.dim")
    p.add_argument("--n_res", type=int, default=4)
    p.add_argument("--num_scales", type=int, default=3)
    p.add_argument("--gan_type", default="lsgan", choices=["lsgan", "nsgan"])
    p.add_argument("--ours_args", default="", help="extra options for our model, e.g. '--no-unit_fast_step'")
    add_run_options(p, iters=4, mem_iters=1)
    args = p.parse_args(argv)
    if not os.path.isfile(os.path.join(args.official, "trainer.py")):
        p.error(f"--official {args.official}: not a mingyuliutw/UNIT checkout (no trainer.py)")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = parse_args(argv)
    cfg.official = os.path.abspath(cfg.official)  # the memory subprocesses run from the repository root
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    torch.backends.cudnn.benchmark = True  # the official train.py turns it on; ours runs with the same value
    keys = ("crop_size", "batch_size", "dim", "n_res", "num_scales", "gan_type", "ours_args")
    config = {k: getattr(cfg, k) for k in keys}
    return report(argv, "benchmarks.compare_official_unit", cfg, torch.device(cfg.device), compare_speed,
                  memory_alone, config)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
