"""UNIT's command-line options: the official config keys as flags, ``--config file.yaml`` import, checks.

Kept apart from ``models/unit_model.py`` so the model file shows the method. Options carry the official
config key names, spelled with a dot (``--gen.dim``) or an underscore (``--gen_dim``).
"""

from __future__ import annotations

import argparse
import os

import yaml

from models.losses.unit import GAN_TYPES
from models.networks.unit import ACTIVATIONS, NORM_TYPES, PAD_TYPES
from options.checks import range_errors

# Official config key -> option dest. Nested keys are "section.key". None: accepted and ignored.
CONFIG_KEYS: dict[str, str | None] = {
    "max_iter": "max_steps", "batch_size": "batch_size", "weight_decay": "weight_decay", "beta1": "beta1",
    "beta2": "beta2", "init": "init_type", "lr": "lr", "lr_policy": "lr_policy", "step_size": "step_size",
    "gamma": "gamma", "gan_w": "gan_w", "recon_x_w": "recon_x_w", "recon_h_w": "recon_h_w",
    "recon_kl_w": "recon_kl_w", "recon_x_cyc_w": "recon_x_cyc_w", "recon_kl_cyc_w": "recon_kl_cyc_w",
    "vgg_w": "vgg_w", "input_dim_a": "input_nc", "input_dim_b": "output_nc", "num_workers": "num_threads",
    "new_size": "load_size", "new_size_a": "load_size", "new_size_b": "load_size",
    "crop_image_height": "crop_size", "crop_image_width": "crop_size", "data_root": "dataroot",
    "snapshot_save_iter": "save_latest_freq", "log_iter": "print_freq", "image_display_iter": "display_freq",
    "image_save_iter": "update_html_freq", "display_size": None,
    "gen.dim": "ngf", "gen.n_downsample": "n_downsample", "gen.n_res": "n_res", "gen.activ": "gen_activ",
    "gen.pad_type": "gen_pad_type", "gen.style_dim": None, "gen.mlp_dim": None,  # MUNIT leftovers in a config
    "dis.dim": "ndf", "dis.n_layer": "n_layer", "dis.num_scales": "num_scales", "dis.norm": "dis_norm",
    "dis.activ": "dis_activ", "dis.pad_type": "dis_pad_type", "dis.gan_type": "gan_type",
}  # fmt: skip
# List mode: "<dest>:<phase>", read by train.py (train keys) or test.py (test keys) only.
CONFIG_KEYS.update(
    {f"data_{kind}_{phase}_{d}": f"{dest}_{d.upper()}:{phase}" for kind, dest in (("folder", "list_root"), ("list", "list"))
     for phase in ("train", "test") for d in "ab"}
)  # fmt: skip
# The framework counts these frequencies in images, the official config in iterations.
_PER_IMAGE_FREQS = ("save_latest_freq", "print_freq", "display_freq", "update_html_freq")


def read_config(path: str) -> tuple[dict, list[str]]:
    """Option defaults from an official UNIT YAML config, and the reasons it cannot be used as is.

    A file that cannot be read or parsed raises ValueError with one line (the parser reports it as an option
    error)."""
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}  # safe_load: the official yaml.load(f) fails on PyYAML >= 6
    except OSError as e:
        raise ValueError(f"--config {path}: cannot read it ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"--config {path}: not valid YAML{where} ({getattr(e, 'problem', None) or e})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"--config {path}: expected a mapping of UNIT config keys, got {type(raw).__name__}")
    flat = {}
    for key, value in raw.items():
        for sub, v in value.items() if isinstance(value, dict) else [(None, value)]:
            flat[f"{key}.{sub}" if sub else key] = v
    values, problems = {}, []
    for key, value in flat.items():
        if key not in CONFIG_KEYS:
            problems.append(f"{key} is not a UNIT config key")
        elif CONFIG_KEYS[key] is not None:
            dest = CONFIG_KEYS[key]
            if dest in values and values[dest] != value:
                problems.append(f"{key}={value} differs from another key mapped to --{dest} ({values[dest]})")
            values[dest] = value
    if values.get("init_type") == "gaussian":  # the framework's name for N(0, 0.02); "default" passes as is
        values["init_type"] = "normal"
    for dest in _PER_IMAGE_FREQS:
        if dest in values:
            values[dest] = values[dest] * values.get("batch_size", 1)
    return values, problems


def _opt(default, kind=None, choices=None, help=None) -> dict:
    kw = {"default": default, "type": kind or type(default), "help": help}
    return {**kw, "choices": choices} if choices else kw


# (flags, dest, argparse kwargs): the official key spelled with a dot, and with an underscore.
_OPTIONS = [
    (("--gen.n_downsample", "--n_downsample"), "n_downsample", _opt(2, help="stride-2 convs in E")),
    (("--gen.n_res", "--n_res"), "n_res", _opt(4, help="ResBlocks in E and in G")),
    (("--gen.activ", "--gen_activ"), "gen_activ", _opt("relu", choices=ACTIVATIONS)),
    (("--gen.pad_type", "--gen_pad_type"), "gen_pad_type", _opt("reflect", choices=PAD_TYPES)),
    (("--unit_shared_enc_blocks",), "unit_shared_enc_blocks", _opt(0, help="last E blocks shared (paper 1)")),
    (
        ("--unit_shared_dec_blocks",),
        "unit_shared_dec_blocks",
        _opt(0, help="first G blocks shared (paper 1)"),
    ),
]
_TRAIN_OPTIONS = [
    (("--dis.n_layer", "--n_layer"), "n_layer", _opt(4)),
    (("--dis.num_scales", "--num_scales"), "num_scales", _opt(3)),
    (("--dis.norm", "--dis_norm"), "dis_norm", _opt("none", choices=NORM_TYPES)),
    (("--dis.activ", "--dis_activ"), "dis_activ", _opt("lrelu", choices=ACTIVATIONS)),
    (("--dis.pad_type", "--dis_pad_type"), "dis_pad_type", _opt("reflect", choices=PAD_TYPES)),
    (("--dis.gan_type", "--gan_type"), "gan_type", _opt("lsgan", choices=GAN_TYPES)),
    (("--gan_w",), "gan_w", _opt(1.0, help="adversarial weight (G and D)")),
    (("--recon_x_w",), "recon_x_w", _opt(10.0, help="L1 x -> E -> G -> x")),
    (("--recon_kl_w",), "recon_kl_w", _opt(0.01, help="mean(h^2) of h_a, h_b")),
    (("--recon_x_cyc_w",), "recon_x_cyc_w", _opt(10.0, help="L1 cycle x -> y -> x")),
    (("--recon_kl_cyc_w",), "recon_kl_cyc_w", _opt(0.01, help="mean(h^2) of the cycle latents")),
    (("--recon_h_w",), "recon_h_w", _opt(0.0, help="documented but never read officially: must be 0")),
    (("--vgg_w",), "vgg_w", _opt(0.0, help="domain-invariant perceptual loss (needs --vgg_weights)")),
    (("--vgg_weights",), "vgg_weights", _opt("", help="local VGG16: official vgg16.weight or torchvision's")),
    (("--weight_decay",), "weight_decay", _opt(1e-4, help="Adam L2 weight decay (G and D)")),
    (("--step_size",), "step_size", _opt(100000, help="iterations between lr decays (--lr_policy step)")),
    (("--gamma",), "gamma", _opt(0.5, help="lr decay factor (--lr_policy step)")),
    (
        ("--unit_fast_step",),
        "unit_fast_step",
        dict(
            default=True,
            action=argparse.BooleanOptionalAction,
            help="one G forward serves the D and G "
            "steps (one noise draw per domain and iteration instead of two) and each decoder upsample + 5x5 "
            "conv runs as a sub-pixel conv (same maths, other float rounding); --no-unit_fast_step: the "
            "official step, bit-exact (docs/unit.md)",
        ),
    ),
]
_ALIASES = [
    (("--gen.dim", "--gen_dim"), "ngf", int), (("--input_dim_a",), "input_nc", int),
    (("--input_dim_b",), "output_nc", int), (("--new_size",), "load_size", int),
    (("--crop_image_height", "--crop_image_width"), "crop_size", int), (("--data_root",), "dataroot", str),
    (("--num_workers",), "num_threads", int),
]  # fmt: skip
_TRAIN_ALIASES = [
    (("--dis.dim", "--dis_dim"), "ndf", int), (("--max_iter",), "max_steps", int),
    (("--snapshot_save_iter",), "save_latest_freq", int), (("--log_iter",), "print_freq", int),
    (("--image_display_iter",), "display_freq", int), (("--image_save_iter",), "update_html_freq", int),
]  # fmt: skip


#: UNIT's numeric options and their smallest values, checked by :func:`option_errors`
MINIMUMS = {
    "n_downsample": (0, "stride-2 convs in E"),
    "n_res": (0, "ResBlocks in E and G"),
    "share_layers": (0, "shared encoder and decoder blocks"),
    "n_layer": (1, "layers of each D scale"),
    "num_scales": (1, "D scales"),
    "weight_decay": (0, "Adam L2 weight decay"),
    "step_size": (1, "iterations between lr decays"),
    "num_style": (0, "samples per input"),
}
#: option -> the flag named in messages: the official config key (``--dis.num_scales``) where there is one
FLAGS = {dest: flags[0] for flags, dest, _ in _OPTIONS + _TRAIN_OPTIONS}


def _dis_too_small(size: int, n_layer: int, num_scales: int) -> bool:
    """True when some D layer would get an input under 2 px (its 4x4 kernel on a pad-1 map fails, as officially)."""
    for _ in range(num_scales):
        s = size
        for _ in range(n_layer):
            if s < 2:
                return True
            s //= 2  # 4x4, stride 2, pad 1
        size = (size + 1) // 2  # AvgPool2d(3, 2, 1)
    return False


def add_unit_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
    """The official config keys (and the framework's switches) as options; official training defaults."""
    g = parser.add_argument_group("UNIT (official config key names)")
    g.add_argument("--config", default="", help="official UNIT YAML config; flags given here override it")
    g.add_argument("--official_checkpoint", default="", help="official gen_XXXXXXXX.pt (training also reads "
                   "dis_XXXXXXXX.pt and optimizer.pt beside it)")  # fmt: skip
    g.add_argument(
        "--share_layers", type=int, default=None, help="shorthand: N shared encoder and decoder blocks"
    )
    for flags, dest, kw in _OPTIONS + (_TRAIN_OPTIONS if is_train else []):
        g.add_argument(*flags, dest=dest, **kw)
    for flags, dest, kind in _ALIASES + (_TRAIN_ALIASES if is_train else []):
        # Another spelling of an existing option; SUPPRESS keeps that option's own default.
        g.add_argument(*flags, dest=dest, type=kind, default=argparse.SUPPRESS, help=f"alias of --{dest}")
    parser.set_defaults(load_size=256, crop_size=256, ngf=64, ndf=64, init_type="kaiming")
    if not is_train:
        g.add_argument("--num_style", type=int, default=0, help="also decode N samples G(h + n) per input")
        g.add_argument("--minmax_output", action=argparse.BooleanOptionalAction, default=False,
                       help="min-max stretch each image like the official save_image(normalize=True)")  # fmt: skip
        return parser
    parser.set_defaults(lr=1e-4, beta1=0.5, beta2=0.999, lr_policy="step", max_steps=1_000_000,
                        save_latest_freq=10000, print_freq=10, display_freq=500, update_html_freq=10000,
                        save_epoch_freq=0)  # fmt: skip
    return parser


def preset_from_config(known: argparse.Namespace, is_train: bool) -> dict:
    """Option defaults read from ``--config`` (flags given on the command line still override them).

    List-mode keys (``data_folder_train_a`` + ``data_list_train_a`` ...) become ``--list_root_A``/``--list_A``
    (train keys for train.py, test keys for test.py).
    """
    if not getattr(known, "config", ""):
        return {}
    phase = "train" if is_train else "test"
    preset = {}
    for key, value in read_config(known.config)[0].items():
        dest, _, when = key.partition(":")
        if (not when or when == phase) and hasattr(known, dest):
            preset[dest] = value
    return preset


def shared_blocks(opt: argparse.Namespace) -> tuple[int, int]:
    """(shared encoder blocks, shared decoder blocks) from ``--share_layers`` or the two explicit options."""
    if opt.share_layers is not None:
        return opt.share_layers, opt.share_layers
    return opt.unit_shared_enc_blocks, opt.unit_shared_dec_blocks


def option_errors(opt: argparse.Namespace) -> list[str]:
    """Why these options cannot run (empty when they can); the model reports them at parse time."""
    problems = read_config(opt.config)[1] if opt.config else []
    if problems:
        return [f"--config {opt.config}: " + "; ".join(problems)]
    errors = range_errors(opt, MINIMUMS, flags=FLAGS)
    if errors:
        return errors
    shared = shared_blocks(opt)
    # fmt: off
    checks = [
        (opt.share_layers is not None and (opt.unit_shared_enc_blocks or opt.unit_shared_dec_blocks),
         "--share_layers is a shorthand for --unit_shared_enc_blocks/--unit_shared_dec_blocks: give one"),
        (max(shared) > opt.n_res or min(shared) < 0, f"shared blocks must be in [0, --gen.n_res={opt.n_res}]"),
    ]
    if opt.isTrain:
        least = 2 ** (opt.n_layer + opt.num_scales - 1)
        checks += [
            (opt.lr_policy not in ("step", "constant"), f"UNIT's --lr_policy is step or constant, not {opt.lr_policy}"),
            (opt.recon_h_w != 0, "--recon_h_w is never read by the official trainer: no hidden reconstruction"),
            (opt.vgg_w > 0 and not os.path.isfile(opt.vgg_weights), f"--vgg_w {opt.vgg_w} needs a local VGG16 "
             f"file via --vgg_weights (got {opt.vgg_weights!r}); nothing is downloaded"),
            (opt.crop_size % 2**opt.n_downsample, f"--crop_size {opt.crop_size} must be divisible by "
             f"2**n_downsample = {2**opt.n_downsample}"),
            (_dis_too_small(opt.crop_size, opt.n_layer, opt.num_scales), f"--crop_size {opt.crop_size} is too "
             f"small for a D of {opt.num_scales} scales x {opt.n_layer} layers: use >= {least} or fewer scales"),
        ]
    # fmt: on
    return [message for failed, message in checks if failed]
