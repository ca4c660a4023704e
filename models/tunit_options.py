"""TUNIT's command-line options and their checks, kept apart from ``models/tunit_model.py`` so that the model
file shows the method. The flags carry clovaai/tunit's constants (``main.py``, ``tools/ops.py``) as defaults;
the comments name their official spelling where it differs.
"""

from __future__ import annotations

import argparse

from data.class_folder_dataset import layout_error
from models.tunit_support import parse_widths
from options import add_switch
from options.checks import range_errors

# (flag, type, default, help) tables: the official names and constants of main.py / tools/ops.py.
NET_OPTIONS = (
    ("--output_k", int, 10, "number of pseudo domains K (C.disc outputs, D heads)"),
    ("--sty_dim", int, 128, "style code size (C.cont outputs)"),
    ("--tunit_g_nf", int, 0, "G stem width (0: official 64, or 32 from 256 px)"),
    ("--tunit_g_nf_mlp", int, 256, "G style-MLP width"),
    ("--tunit_c_widths", str, "", "guiding-net trunk, e.g. 64,M,128,M (empty: VGG11)"),
)
TRAIN_OPTIONS = (
    ("--p_semi", float, 0.0, "labelled fraction: 0 unsupervised, 1 supervised, else semi-supervised"),
    ("--tunit_d_nf", int, 0, "D stem width (0: official 64, or 32 from 256 px)"),
    ("--tunit_d_max_nf", int, 1024, "D width cap"),
    ("--lambda_adv", float, 1.0, "official w_adv"),
    ("--lambda_rec", float, 0.1, "official w_rec: image reconstruction"),
    ("--lambda_sty", float, 0.01, "official w_vec: style contrastive"),
    ("--lambda_r1", float, 10.0, "official w_gp: R1 penalty"),
    ("--lambda_iic", float, 5.0, "weight of IIC (labelled iterations: of the CE) in the C loss"),
    ("--tunit_c_gan_factor", float, 0.1, "C-loss factor in the GAN phase (and sup/semi-unlabelled)"),
    ("--moco_k", int, 1024, "MoCo queue length"),
    ("--moco_t", float, 0.07, "MoCo temperature"),
    ("--ema_beta", float, 0.999, "EMA decay of C_ema and G_ema"),
    ("--c_weight_decay", float, 1e-3, "Adam weight decay (L2) of C"),
    ("--gd_weight_decay", float, 1e-4, "RMSprop weight decay (L2) of G and D"),
    ("--tunit_epoch_iters", int, 1000, "official --iters: iterations per epoch (EMA buffer copy)"),
    ("--tunit_epochs", int, 200, "official --epochs: training length in epochs"),
    ("--tunit_gan_start", int, -1, "iteration the GAN starts (-1: official; 65k when unsupervised)"),
    ("--tunit_ema_start", int, -1, "iteration of G_ema := G, then its EMA (-1: official; 66k)"),
    ("--tunit_semi_warm_epochs", int, 20, "semi: epochs of labelled-only iterations (official unsup_start)"),
    ("--tunit_official_ckpt", str, "", "initialise nets and optimisers from an official model_N.ckpt"),
    ("--tunit_start_iter", int, 0, "iterations already done (with --tunit_official_ckpt: N * iters)"),
)
TEST_OPTIONS = (
    ("--tunit_style_dir", str, "", "images for the styles, searched recursively (empty: --dataroot)"),
    ("--tunit_styles", str, "", "a .pt file with precomputed cluster styles ({'styles': (K, sty_dim)})"),
    ("--tunit_max_style_images", int, 0, "style images, evenly spaced (0: 2000 for clusters, 8 references)"),
)


#: TUNIT's numeric options and their smallest values (0 where it means "the official default"), read by
#: :func:`option_errors`
MINIMUMS = {
    "output_k": (1, "pseudo domains"),
    "sty_dim": (1, "style code size"),
    "tunit_g_nf": (0, "G stem width; 0: official"),
    "tunit_g_nf_mlp": (1, "G style-MLP width"),
    "tunit_d_nf": (0, "D stem width; 0: official"),
    "tunit_d_max_nf": (1, "D width cap"),
    "moco_k": (1, "MoCo queue length"),
    "tunit_epoch_iters": (1, "iterations per epoch"),
    "tunit_epochs": (1, "epochs"),
    "tunit_semi_warm_epochs": (0, "epochs"),
    "tunit_start_iter": (0, "iterations"),
    "c_weight_decay": (0, "Adam L2 weight decay of C"),
    "gd_weight_decay": (0, "RMSprop L2 weight decay of G and D"),
    "tunit_max_style_images": (0, "images; 0: the default"),
}
INTERVALS = {
    "moco_t": ("> 0", lambda v: v > 0, "MoCo temperature"),
    "ema_beta": ("in [0, 1]", lambda v: 0 <= v <= 1, "EMA decay"),
}


def _add_table(parser: argparse.ArgumentParser, table) -> None:
    for flag, kind, default, help in table:
        parser.add_argument(flag, type=kind, default=default, help=help)


def add_tunit_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
    """TUNIT's options and the official defaults of the framework's shared ones."""
    # Official: 128 px squares (Resize, aspect not kept), batch 32, lr 1e-4, Adam betas (0.9, 0.999).
    parser.set_defaults(dataset_mode="tunit", load_size=128, crop_size=128, preprocess="resize_and_crop")
    _add_table(parser, NET_OPTIONS)
    if is_train:
        parser.set_defaults(batch_size=32, lr=1e-4, beta1=0.9, beta2=0.999)
        _add_table(parser, TRAIN_OPTIONS)
        add_switch(
            parser,
            "--tunit_official_step",
            False,
            help="run the official iteration op for op (bit-exact with clovaai/tunit) instead of the "
            "faster one that shares guiding-net passes, runs one D backward and one D call in the G step, and "
            "returns freed heap memory to the OS before the D step (docs/tunit.md, Speed)",
        )
        add_switch(
            parser,
            "--tunit_queue_reset_each_epoch",
            False,
            help="official quirk Q1: every epoch restarts from the startup queue",
        )
        return parser
    _add_table(parser, TEST_OPTIONS)
    parser.add_argument(
        "--tunit_style",
        default="cluster",
        choices=["cluster", "reference"],
        help="cluster-average styles (paper figures) or one style per reference image",
    )
    parser.add_argument(
        "--tunit_cluster_net",
        default="C_ema",
        choices=["C_ema", "C"],
        help="which guiding net assigns the clusters (official grids use C)",
    )
    add_switch(
        parser,
        "--tunit_fid_official",
        False,
        help="per-class FID by the official training-time protocol (quirks F1/F2: ImageNet-normalised, "
        "nearest-resized, unquantised Inception input; n_t fakes from m x e reference draws; training "
        "images as reals) instead of the standard pytorch-fid one (docs/tunit.md, Per-class FID)",
    )
    return parser


def option_errors(opt: argparse.Namespace) -> list[str]:
    """Why these options cannot run (empty when they can); the model reports the first at parse time."""
    errors = range_errors(opt, MINIMUMS, INTERVALS) + width_errors(opt)
    if opt.isTrain and opt.dataset_mode != "tunit":
        errors.append(
            f"--dataset_mode: TUNIT trains on --dataset_mode tunit (two augmented views of each image, "
            f"DATAROOT[/<phase>]/<class>/<images>), got {opt.dataset_mode}"
        )
    if opt.isTrain and opt.dataroot and not getattr(opt, "synthetic_data", False):
        errors += [e for e in [layout_error(opt.dataroot, opt.phase)] if e]  # trainA/trainB: no classes
    if opt.input_nc != 3 or opt.output_nc != 3:
        errors.append(
            "TUNIT's networks take RGB images: use --input_nc 3 --output_nc 3 (gray images are expanded)"
        )
    if opt.crop_size < 32 or opt.crop_size & (opt.crop_size - 1):
        errors.append(f"TUNIT needs a power-of-two --crop_size >= 32, got {opt.crop_size}")
    if opt.isTrain and not 0.0 <= opt.p_semi <= 1.0:
        errors.append(f"--p_semi must be in [0, 1], got {opt.p_semi}")
    if opt.isTrain and opt.load_size != opt.crop_size:
        errors.append("TUNIT resizes to a square: use --load_size equal to --crop_size")
    return errors


def width_errors(opt: argparse.Namespace) -> list[str]:
    """``--tunit_c_widths``: comma-separated positive widths and ``M`` max-pools, at most log2(--crop_size) of them."""
    try:
        widths = parse_widths(opt.tunit_c_widths)
    except ValueError:
        widths = ()
    if not widths or any(w != "M" and w < 1 for w in widths):
        return [f"--tunit_c_widths: expected comma-separated positive integers and M (max-pool), e.g. "
                f"64,M,128,M, got {opt.tunit_c_widths!r}"]  # fmt: skip
    pools = widths.count("M")
    if 2**pools > opt.crop_size:
        return [f"--tunit_c_widths: {pools} max-pools shrink --crop_size {opt.crop_size} below one pixel"]
    return []
