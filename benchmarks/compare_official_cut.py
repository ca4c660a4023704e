"""Side-by-side speed (and peak memory) of the official CUT / FastCUT / SRUNIT step and ours, in one process.

    python -m benchmarks.compare_official_cut --official CUT_PATH [--srunit_official SRUNIT_PATH]
        [--mode cut|fastcut|srunit] [--crop_size 128 --iters 6 --memory] [-- OUR_TRAIN_OPTIONS...]

``CUT_PATH`` is an extracted checkout of taesungp/contrastive-unpaired-translation, ``SRUNIT_PATH`` one of
SeanJia/SRUNIT (needed for ``--mode srunit``). Nothing of them is vendored: their ``models`` packages are
imported at run time under other names (see ``compare_official_cyclegan``). Everything after ``--`` is
passed to our option parser (e.g. ``-- --no-reuse_nce_keys`` times our official-order path).

The official F creates its MLPs at its first call, inside the official ``data_dependent_initialize``
(forward, D and G backward, no step). That runs first, on the benchmark batch; then the official G, D and F
state_dicts are loaded into ours with ``strict=True``, so both start from the same weights (the official
step zeroes the gradients the init leaves). SRUNIT runs with the SR loss active (epoch 1 > inact_epochs 0)
and ours with ``--sr_noise_mode fixed`` (the official perturbation; the sampled mode costs the same).
Steps are timed alternately (official, ours, ours, official, ...); prints one JSON object. SRUNIT's two sides
take the same flips / SR layers at each step (``same_draws``): use ``--iters`` a multiple of 10 for SRUNIT.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import SimpleNamespace

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.compare_official_cyclegan import SHARED_PACKAGES, make_batch  # noqa: E402
from benchmarks.side_by_side import (  # noqa: E402
    add_run_options,
    compare_alternately,
    current_rss_mb,
    measure_alone,
    official_modules,
    report,
)

MODES = ("cut", "fastcut", "srunit")


def load_official_class(path: str, module: str, cls: str, prefix: str):
    """Import ``module.cls`` from the checkout at ``path``, keeping our own packages in ``sys.modules``."""
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, *module.split(".")) + ".py"):
        raise FileNotFoundError(f"{path} has no {module.replace('.', '/')}.py")
    with official_modules(SHARED_PACKAGES, prefix, path):
        return getattr(importlib.import_module(module), cls)


def official_class(cfg: argparse.Namespace):
    if cfg.mode == "srunit":
        return load_official_class(
            cfg.srunit_official, "models.srunit_model", "SRUNITModel", "_official_srunit"
        )
    return load_official_class(cfg.official, "models.cut_model", "CUTModel", "_official_cut")


def official_options(cfg: argparse.Namespace, device: torch.device) -> SimpleNamespace:
    """The attributes the official CUT / SRUNIT constructors and steps read (their parser defaults)."""
    fast = cfg.mode == "fastcut"
    return SimpleNamespace(
        isTrain=True,
        gpu_ids=[device.index or 0] if device.type == "cuda" else [],
        checkpoints_dir=os.devnull,
        name="compare",
        preprocess="resize_and_crop",
        direction="AtoB",
        input_nc=3,
        output_nc=3,
        ngf=64,
        ndf=64,
        netG="resnet_9blocks",
        netD="basic",
        n_layers_D=3,
        normG="instance",
        normD="instance",
        no_dropout=True,
        init_type="xavier",
        init_gain=0.02,
        no_antialias=False,
        no_antialias_up=False,
        gan_mode="lsgan",
        lr=0.0002,
        beta1=0.5,
        beta2=0.999,
        batch_size=cfg.batch_size,
        CUT_mode="FastCUT" if fast else "CUT",
        lambda_GAN=1.0,
        lambda_NCE=10.0 if fast else 1.0,
        nce_idt=not fast,
        flip_equivariance=fast,
        nce_layers="0,4,8,12,16",
        nce_includes_all_negatives_from_minibatch=False,
        netF="mlp_sample",
        netF_nc=256,
        nce_T=0.07,
        num_patches=256,
        # SRUNIT only (ignored by CUT): SR loss active from epoch 1.
        reg_type="v2",
        reg=0.001,
        reg_noise=0.001,
        reg_layers="0,1,2,3,4",
        inact_epochs=0,
        D_noise=0.0,
        verbose=False,
    )


def our_options(cfg: argparse.Namespace, device: torch.device):
    from options import TrainOptions

    args = ["--model", "srunit" if cfg.mode == "srunit" else "cut", "--dataroot", os.devnull]
    args += ["--gpu_ids", str(device.index or 0) if device.type == "cuda" else "-1"]
    args += ["--crop_size", str(cfg.crop_size), "--load_size", str(cfg.crop_size)]
    args += ["--batch_size", str(cfg.batch_size)]
    if cfg.mode == "fastcut":
        args += ["--CUT_mode", "FastCUT"]
    if cfg.mode == "srunit":
        args += ["--inact_epochs", "0", "--sr_noise_mode", "fixed"]
    return TrainOptions().parse(args + cfg.ours, save=False)


def official_step(model, srunit: bool):
    """The official training step as a call without arguments (SRUNIT's takes the epoch)."""
    return (lambda: model.optimize_parameters(1)) if srunit else model.optimize_parameters


def build_official(cfg: argparse.Namespace, device: torch.device, batch: dict, cls=None):
    model = (cls or official_class(cfg))(official_options(cfg, device))
    for name in ("netG", "netF", "netD"):
        getattr(model, name).to(device)
    model.data_dependent_initialize(batch)  # creates F's MLPs (official: lazily, at the first call)
    model.set_input(batch)
    return model


def build_ours(cfg: argparse.Namespace, device: torch.device, batch: dict, opt=None):
    import models
    from util.runtime import Runtime

    model = models.create_model(opt if opt is not None else our_options(cfg, device)).to(device)
    model.runtime = Runtime(device)
    model.set_input(batch)
    return model


def copy_weights(official, ours) -> None:
    for name in ("netG", "netF", "netD"):
        getattr(ours, name).load_state_dict(getattr(official, name).state_dict(), strict=True)


def same_draws(cfg: argparse.Namespace, steps: int, official=None, ours=None) -> None:
    """Make both sides take the same random branches at each step: flips (FastCUT) and SR layers (SRUNIT).

    The cost and the memory of a step depend on them (a flipped step re-encodes the keys; decoding from SR
    layer 0 runs all of G, from 16 about half), and the two codebases draw from different RNGs (NumPy /
    torch), so without this the per-pair ratios and the peaks compare different work. Every other step is
    flipped; the SR layers go 0, 1, 2, 3, 4 in turn. Our draws are injected; the official module's
    ``np.random.random`` / ``np.random.choice`` are answered from the same sequences.
    """
    import numpy as np

    flips = [i % 2 == 1 for i in range(steps)] if cfg.mode == "fastcut" else []
    layers = [i % 5 for i in range(steps)] if cfg.mode == "srunit" else []
    if ours is not None:
        ours.inject_draws(flip=list(flips), sr_choice=list(layers))
    if official is None:
        return
    flip_queue, layer_queue = [0.0 if f else 1.0 for f in flips], list(layers)

    def random() -> float:
        return flip_queue.pop(0) if flip_queue else np.random.random()

    def choice(options, size):
        return np.array([layer_queue.pop(0)]) if layer_queue else np.random.choice(options, size)

    # The official model module's own globals (its name in sys.modules may be ours: see official_modules).
    type(official).forward.__globals__["np"] = SimpleNamespace(
        random=SimpleNamespace(random=random, choice=choice)
    )


def compare_speed(cfg: argparse.Namespace, device: torch.device) -> dict:
    batch = make_batch(cfg, device)
    official = build_official(cfg, device, batch)
    ours = build_ours(cfg, device, batch)
    copy_weights(official, ours)
    same_draws(cfg, cfg.warmup + cfg.iters, official, ours)
    torch.backends.cudnn.benchmark = cfg.cudnn_benchmark  # the official BaseModel sets it process-wide
    steps = {"official": official_step(official, cfg.mode == "srunit"), "ours": ours.optimize_parameters}
    return compare_alternately(steps, cfg.iters, cfg.warmup, device)


def memory_alone(which: str, cfg: argparse.Namespace, device: torch.device) -> dict:
    """Build and step one implementation only (in its own subprocess); both codebases are imported first."""
    cls = official_class(cfg)
    opt = our_options(cfg, device)
    rss_imports = current_rss_mb()
    batch = make_batch(cfg, device)
    steps = cfg.warmup + cfg.mem_iters
    if which == "official":
        official = build_official(cfg, device, batch, cls)
        same_draws(cfg, steps, official=official)
        step = official_step(official, cfg.mode == "srunit")
    else:
        ours = build_ours(cfg, device, batch, opt)
        same_draws(cfg, steps, ours=ours)
        step = ours.optimize_parameters
    return measure_alone(step, rss_imports, cfg.warmup + cfg.mem_iters, device)


def parse_args(argv: list[str]) -> argparse.Namespace:
    own, ours = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True, help="extracted taesungp/contrastive-unpaired-translation")
    p.add_argument("--srunit_official", default="", help="extracted SeanJia/SRUNIT (for --mode srunit)")
    p.add_argument("--mode", default="cut", choices=MODES)
    p.add_argument("--crop_size", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=1)
    add_run_options(p, iters=6, mem_iters=2)
    p.add_argument(
        "--cudnn_benchmark",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the official BaseModel turns it on process-wide; both run with this value",
    )
    args = p.parse_args(own)
    args.ours = ours
    if args.mode == "srunit" and not args.srunit_official:
        p.error("--mode srunit needs --srunit_official PATH")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = parse_args(argv)
    cfg.official = os.path.abspath(cfg.official)  # the memory subprocesses run from the repository root
    cfg.srunit_official = os.path.abspath(cfg.srunit_official) if cfg.srunit_official else ""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    # The official code draws flips and patch ids from NumPy's global RNG.
    import numpy as np

    np.random.seed(cfg.seed)
    config = {k: getattr(cfg, k) for k in ("mode", "crop_size", "batch_size", "iters", "warmup")}
    config["ours_extra"] = " ".join(cfg.ours)
    return report(argv, "benchmarks.compare_official_cut", cfg, torch.device(cfg.device), compare_speed,
                  memory_alone, config, ("--srunit_official", cfg.srunit_official))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
