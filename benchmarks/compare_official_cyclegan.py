"""Side-by-side speed (and peak memory) of the official CycleGAN step and ours, in one process.

    python -m benchmarks.compare_official_cyclegan --official PATH [--crop_size 128 --iters 6 --memory]

``PATH`` is an extracted checkout of taesungp/contrastive-unpaired-translation (whose CycleGAN copy has the
junyanz step and, with ``no_antialias``/``no_antialias_up``, the junyanz networks; this is the checkout the
script was validated with) or of junyanz/pytorch-CycleGAN-and-pix2pix (the options passed cover both).
Nothing of it is vendored here: its ``models`` and ``util`` packages are imported from ``PATH`` at run time
under other names, so they do not clash with ours.

Both models get the same weights (the official state_dicts are loaded into ours with ``strict=True``) and
the same batch; their ``optimize_parameters`` calls are timed alternately (official, ours, official, ...)
so that load drift on a shared machine hits both alike. ``--memory`` also measures the peak resident set
(CPU) or peak allocated memory (CUDA) of each implementation alone, each in a fresh subprocess. Prints one
JSON object.
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

from benchmarks.side_by_side import (  # noqa: E402
    add_run_options,
    compare_alternately,
    current_rss_mb,
    measure_alone,
    official_modules,
    report,
)

# Top-level package names both codebases use; while the official code is imported they must resolve to it.
SHARED_PACKAGES = ("models", "util", "data", "options")
OFFICIAL_PREFIX = "_official_cyclegan"


def load_official_cyclegan(path: str):
    """Import the official ``CycleGANModel`` class from the checkout at ``path``.

    Our own ``models``/``util`` modules (if already imported) are set aside during the import and put back
    afterwards; the official modules stay reachable only as ``_official_cyclegan.<name>`` in ``sys.modules``
    and through the returned class, so both implementations can live in one process.
    """
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, "models", "cycle_gan_model.py")):
        raise FileNotFoundError(
            f"{path} does not look like a CycleGAN/CUT checkout (no models/cycle_gan_model.py)"
        )
    with official_modules(SHARED_PACKAGES, OFFICIAL_PREFIX, path):
        module = importlib.import_module("models.cycle_gan_model")
    return module.CycleGANModel


def official_options(cfg: argparse.Namespace, device: torch.device) -> SimpleNamespace:
    """The attributes the official constructors read, for both the junyanz and the CUT-repo versions."""
    gpu_ids = [device.index or 0] if device.type == "cuda" else []
    return SimpleNamespace(
        isTrain=True,
        gpu_ids=gpu_ids,
        device=device,
        checkpoints_dir=os.devnull,
        name="compare",
        preprocess="resize_and_crop",
        direction="AtoB",
        input_nc=3,
        output_nc=3,
        ngf=cfg.ngf,
        ndf=cfg.ndf,
        netG=cfg.netG,
        netD="basic",
        n_layers_D=3,
        norm=cfg.norm,
        normG=cfg.norm,
        normD=cfg.norm,
        no_dropout=True,
        init_type="normal",
        init_gain=0.02,
        no_antialias=True,  # CUT-repo copy: the CycleGAN layout (strided convs, ConvTranspose)
        no_antialias_up=True,
        pool_size=cfg.pool_size,
        gan_mode=cfg.gan_mode,
        lr=0.0002,
        beta1=0.5,
        beta2=0.999,
        lambda_A=10.0,
        lambda_B=10.0,
        lambda_identity=cfg.lambda_identity,
        amp=False,  # the CUT-repo copy reads it and never defines it
        lr_policy="linear",
        epoch_count=1,
        n_epochs=100,
        n_epochs_decay=100,
        continue_train=False,
        verbose=False,
    )


def our_options(cfg: argparse.Namespace, device: torch.device):
    from options import TrainOptions

    args = [
        "--model",
        "cycle_gan",
        # Any path: no data is read here, and naming one stops the parser generating the synthetic set.
        "--dataroot",
        os.devnull,
        "--gpu_ids",
        str(device.index or 0) if device.type == "cuda" else "-1",
        "--crop_size",
        str(cfg.crop_size),
        "--load_size",
        str(cfg.crop_size),
        "--batch_size",
        str(cfg.batch_size),
        "--ngf",
        str(cfg.ngf),
        "--ndf",
        str(cfg.ndf),
        "--netG",
        cfg.netG,
        "--norm",
        cfg.norm,
        "--pool_size",
        str(cfg.pool_size),
        "--gan_mode",
        cfg.gan_mode,
        "--lambda_identity",
        str(cfg.lambda_identity),
    ]
    return TrainOptions().parse(args, save=False)


def build(which: str, cfg: argparse.Namespace, device: torch.device, official_cls=None, opt=None):
    """``which`` in {"official", "ours"}; returns a model ready for ``set_input``/``optimize_parameters``.

    ``opt`` overrides the options (for ours: an already parsed ``our_options`` result).
    """
    if which == "official":
        model = official_cls(opt if opt is not None else official_options(cfg, device))
        for name in ("netG_A", "netG_B", "netD_A", "netD_B"):
            getattr(model, name).to(device)
        return model
    import models
    from util.runtime import Runtime

    model = models.create_model(opt if opt is not None else our_options(cfg, device)).to(device)
    model.runtime = Runtime(device)
    return model


def copy_weights(official, ours) -> None:
    """Official state_dicts into our networks (``strict=True``: the keys must be the official ones)."""
    for name in ("netG_A", "netG_B", "netD_A", "netD_B"):
        getattr(ours, name).load_state_dict(getattr(official, name).state_dict(), strict=True)


def make_batch(cfg: argparse.Namespace, device: torch.device) -> dict:
    gen = torch.Generator().manual_seed(cfg.seed)
    shape = (cfg.batch_size, 3, cfg.crop_size, cfg.crop_size)
    a = torch.rand(shape, generator=gen) * 2 - 1
    b = torch.rand(shape, generator=gen) * 2 - 1
    paths = [f"{i}.png" for i in range(cfg.batch_size)]
    return {"A": a.to(device), "B": b.to(device), "A_paths": paths, "B_paths": paths}


def compare_speed(cfg: argparse.Namespace, device: torch.device) -> dict:
    official_cls = load_official_cyclegan(cfg.official)
    official = build("official", cfg, device, official_cls)
    ours = build("ours", cfg, device)
    copy_weights(official, ours)
    # The official BaseModel switches cudnn.benchmark on for this process; pin one value for both.
    torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
    batch = make_batch(cfg, device)
    official.set_input(batch)
    ours.set_input(batch)
    steps = {"official": official.optimize_parameters, "ours": ours.optimize_parameters}
    return compare_alternately(steps, cfg.iters, cfg.warmup, device)


def memory_alone(which: str, cfg: argparse.Namespace, device: torch.device) -> dict:
    """Build and step one implementation only (this runs in its own subprocess).

    Both codebases are imported (and our options parsed, which imports every registered model and
    dataset: torchvision, scipy, ...) before ``rss_after_imports_mb`` is read, whichever one is measured,
    so ``peak_minus_imports_mb`` is what the networks, optimisers and steps cost, not a difference in what
    got imported.
    """
    official_cls = load_official_cyclegan(cfg.official)
    opt = our_options(cfg, device)
    rss_imports = current_rss_mb()
    if which == "ours":
        official_cls = None
    torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
    model = build(which, cfg, device, official_cls, opt if which == "ours" else None)
    model.set_input(make_batch(cfg, device))
    return measure_alone(model.optimize_parameters, rss_imports, cfg.warmup + cfg.mem_iters, device)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True, help="extracted official checkout (junyanz or CUT repo)")
    p.add_argument("--crop_size", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--netG", default="resnet_9blocks")
    p.add_argument("--norm", default="instance", choices=["instance", "batch"])
    p.add_argument("--gan_mode", default="lsgan", choices=["lsgan", "vanilla"])
    p.add_argument("--lambda_identity", type=float, default=0.5)
    p.add_argument("--pool_size", type=int, default=50)
    add_run_options(p, iters=6, mem_iters=2)
    p.add_argument(
        "--cudnn_benchmark",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the official BaseModel turns it on process-wide; both run with this value",
    )
    args = p.parse_args(argv)
    if not os.path.isfile(os.path.join(args.official, "models", "cycle_gan_model.py")):
        p.error(f"--official {args.official}: not a CycleGAN/CUT checkout (no models/cycle_gan_model.py)")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = parse_args(argv)
    cfg.official = os.path.abspath(cfg.official)  # the memory subprocesses run from the repository root
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    keys = ("crop_size", "batch_size", "ngf", "ndf", "netG", "norm", "gan_mode", "pool_size")
    config = {k: getattr(cfg, k) for k in keys}
    return report(argv, "benchmarks.compare_official_cyclegan", cfg, torch.device(cfg.device), compare_speed,
                  memory_alone, config)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
