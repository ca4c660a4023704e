"""Command-line options of U-GAT-IT (official names and defaults), shared by the enhanced model."""

from __future__ import annotations

import argparse

from models.networks.ugatit import Discriminator
from options.base_options import add_flag, add_switch
from options.checks import range_errors

#: the shallowest D that models/networks/ugatit.py builds (3 and 4 layers: the fork's, with stride-1 convs)
MIN_DIS_LAYERS = 3
#: U-GAT-IT's numeric options (and the enhanced model's) and their ranges, checked by :func:`option_errors`
MINIMUMS = {
    "n_res": (0, "residual blocks"),
    "ch": (1, "base width of G and D"),
    "n_global_dis": (MIN_DIS_LAYERS, "global discriminator layers"),
    "n_local_dis": (MIN_DIS_LAYERS, "local discriminator layers"),
    "weight_decay": (0, "Adam L2 weight decay"),
}
INTERVALS = {"ema_beta": ("in [0, 1]", lambda v: 0 <= v <= 1, "EMA decay")}


def parse_light(value: str) -> int:
    """``--light``: official booleans (True = GAP before the MLP) or the fork's pool size (<= 0: full)."""
    lowered = str(value).lower()
    if lowered in ("true", "t", "yes", "y"):
        return 1
    if lowered in ("false", "f", "no", "n"):
        return 0
    try:
        return max(int(value), 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--light: expected True/False or an int, got {value!r}") from None


def add_ugatit_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
    """The options of znxlwm/UGATIT-pytorch ``main.py`` plus the framework's switches for its bugs."""
    parser.set_defaults(
        crop_size=256, load_size=286 if is_train else 256, init_type="pytorch", dataset_mode="ugatit"
    )
    g = parser.add_argument_group("U-GAT-IT (official option names)")
    g.add_argument(
        "--light",
        type=parse_light,
        default=0,
        help="True/1: GAP before the gamma/beta MLP (10.6M-param G); False/0: full MLP on the "
        "flattened map (279M at 256 px); k > 1: pool to k x k first (enhanced fork)",
    )
    g.add_argument("--n_res", type=int, default=4, help="residual blocks in the encoder and in the decoder")
    g.add_argument("--ch", type=int, default=None, help="base width of G and D (sets --ngf and --ndf)")
    g.add_argument(
        "--img_size",
        type=int,
        default=None,
        help="image size S: crop_size = S, load_size = S + 30 when training (official resize)",
    )
    g.add_argument(
        "--ugatit_norm_var",
        default="unbiased",
        choices=["unbiased", "biased"],
        help="ILN/AdaILN variance: unbiased = official PyTorch, biased = TF/paper",
    )
    add_switch(
        g,
        "--ugatit_fused_norm",
        True,
        help="ILN/AdaILN from one var_mean pass and one fused scale-shift (same maths, float rounding "
        "differs); --no-ugatit_fused_norm = the official op sequence (bit-exact)",
    )
    if is_train:
        parser.set_defaults(lr=1e-4, beta1=0.5, beta2=0.999, batch_size=1, max_steps=1_000_000)
        g.add_argument(
            "--iteration",
            dest="max_steps",
            type=int,
            default=argparse.SUPPRESS,
            help="total training iterations (official default 1,000,000)",
        )
        add_flag(g, "--decay_flag", True, "decay lr linearly to 0 over the second half of training")
        g.add_argument("--weight_decay", type=float, default=1e-4, help="Adam L2 weight decay")
        add_switch(
            g,
            "--weight_decay_norms",
            True,
            help="also decay rho/gamma/beta and norm affines (official: every parameter)",
        )
        for name, default in (("adv", 1.0), ("cycle", 10.0), ("identity", 10.0), ("cam", 1000.0)):
            g.add_argument(f"--{name}_weight", type=float, default=default, help=f"weight of the {name} loss")
        g.add_argument("--n_global_dis", type=int, default=7, help="global discriminator depth")
        g.add_argument("--n_local_dis", type=int, default=5, help="local discriminator depth")
        g.add_argument(
            "--ugatit_d_cam_weight",
            default="raw",
            choices=["raw", "sn"],
            help="D CAM feature weighting: raw weight_orig (official) or spectral-normalised (TF)",
        )
        add_switch(
            g,
            "--ugatit_fused_sn",
            True,
            help="D spectral norm as conv(x, W)/sigma instead of conv(x, W/sigma): same maths and u/v "
            "updates, float rounding differs; --no-ugatit_fused_sn = official hook (bit-exact)",
        )
        add_switch(
            g,
            "--ugatit_batch_d",
            True,
            help="with --ugatit_fused_sn: D step judges real and fake in one batched call per D, each half "
            "with its own power iteration (the official numbers of two calls)",
        )
        add_switch(
            g,
            "--ugatit_fused_adam",
            True,
            help="torch's fused Adam kernel (one pass per tensor; same update up to float rounding); "
            "--no-ugatit_fused_adam = the official per-op Adam (bit-exact)",
        )
        add_switch(
            g,
            "--ugatit_fast_d",
            False,
            help="batch real+fake in one D call and use eval-mode D in the G step (not official)",
        )
        g.add_argument(
            "--official_ckpt",
            default="",
            help="initialise all networks from an official <dataset>_params_<iter>.pt file",
        )
    else:
        add_switch(g, "--save_heatmaps", False, help="also write the CAM heatmap of each translation")
        add_switch(
            g,
            "--save_panels",
            False,
            help="write the official test strip: identity, translation, cycle and their heatmaps",
        )
    return parser


def min_image_size(opt: argparse.Namespace) -> int:
    """Testing: a multiple of 4 with a 2x2 bottleneck (the full G: the size it was built for); training: what
    the global and local discriminators need (96 px for the official 7-layer global D)."""
    if not opt.isTrain:
        return opt.crop_size if opt.light == 0 else 8
    # Shallower depths are option_errors' to refuse (validate_options, after this size check).
    depths = [n for n in (opt.n_global_dis, opt.n_local_dis) if n >= MIN_DIS_LAYERS]
    return max((Discriminator(ndf=1, n_layers=n, sn=False).min_input_size for n in depths), default=1)


def option_errors(opt: argparse.Namespace) -> list[str]:
    """Why these options cannot run (empty when they can); the model reports the first at parse time."""
    return range_errors(opt, MINIMUMS, INTERVALS)
