"""LiSS's command-line options (official names and defaults) and their checks.

Kept apart from ``models/liss_model.py`` so the model file shows the method. The names and defaults follow
vict0rsch/LiSS ``options/train_options.py`` and ``LiSSModel``; options starting with ``--liss_`` are ours (fixes
of official bugs, kept off by default, and speed levers that keep the official computation one flag away).
"""

from __future__ import annotations

import argparse
import itertools

from models.liss_training import SCHEDULES
from models.networks.liss import JIGSAW_SIZE, classifier_map_size, parse_tasks, patch_map_size

LAMBDA_KEY = {"rotation": "lambda_R", "jigsaw": "lambda_J", "depth": "lambda_D", "gray": "lambda_G"}
BOOL = argparse.BooleanOptionalAction


def _opt(*flags: str, **kwargs) -> tuple[tuple[str, ...], dict]:
    return flags, kwargs


# Official names and defaults (vict0rsch/LiSS options/train_options.py and LiSSModel); cycle/identity weights
# share CycleGAN's attribute names, with the official spellings as aliases.
COMMON_OPTIONS = [
    _opt(
        "--auxiliary_tasks",
        default="rotation, gray, depth, jigsaw",
        help="comma list of rotation, jigsaw, depth, gray (they always run in that order)",
    ),
    _opt(
        "--liss_fix_head_norm",
        action=BOOL,
        default=False,
        help="heads' last norm for its real 128 channels (official: 256); needed by --norm batch",
    ),
]
TEST_OPTIONS = [
    _opt("--liss_panels", default="", help="comma list of depth, gray: also save these heads' outputs")
]
TRAIN_OPTIONS = [
    _opt("--lambda_A", "--lambda_CA", dest="lambda_A", type=float, default=10.0, help="cycle A->B->A weight"),
    _opt("--lambda_B", "--lambda_CB", dest="lambda_B", type=float, default=10.0, help="cycle B->A->B weight"),
    _opt("--lambda_identity", "--lambda_I", dest="lambda_identity", type=float, default=0.5,
         help="identity weight, relative to lambda_A/lambda_B"),
    _opt("--lambda_DA", type=float, default=1.0, help="weight of G_A's adversarial loss"),
    _opt("--lambda_DB", type=float, default=1.0, help="weight of G_B's adversarial loss"),
    *[_opt(f"--{LAMBDA_KEY[t]}", type=float, default=1.0, help=f"{t} task weight") for t in LAMBDA_KEY],
    _opt("--lambda_DR", type=float, default=1.0, help="G-side discriminator-rotation weight (--D_rotation)"),
    _opt("--lambda_distillation", type=float, default=5.0, help="L1 to the reference encoders' features"),
    _opt("--task_schedule", default="parallel", choices=SCHEDULES),
    _opt("--rotation_acc_threshold", type=float, default=0.2, help="test accuracy above which rotation passes"),
    _opt("--jigsaw_acc_threshold", type=float, default=0.2, help="test accuracy above which jigsaw is done"),
    _opt("--depth_loss_threshold", type=float, default=0.5, help="test loss below which depth is done"),
    _opt("--gray_loss_threshold", type=float, default=0.5, help="test loss below which gray is done"),
    _opt("--i_loss_threshold", type=float, default=0.5, help="unused (kept for official command lines)"),
    *[_opt(f"--lr_{t}", type=float, default=0.0, help=f"lr of the {t} heads (0: --lr)") for t in LAMBDA_KEY],
    _opt("--encoder_merge_ratio", type=float, default=1.0, help="a in ref = a * encoder + (1 - a) * ref"),
    _opt("--D_rotation", action=BOOL, default=False, help="SSGAN rotation heads in the discriminators"),
    _opt("--repr_mode", default="freeze", choices=["freeze", "flow", "distillation"],
         help="representational schedules: what the encoders do once translation starts"),
    _opt("--jigsaw_size", type=int, default=JIGSAW_SIZE, help="side of the jigsaw window (3x3 tiles)"),
    _opt("--liss_legacy_optim", action=BOOL, default=False,
         help="torch_optimizer RAdam: shared step-size cache, --lr_rotation/--lr_jigsaw ignored"),
    _opt("--liss_idt_own_encoder", action=BOOL, default=False,
         help="identity G_A(B) as CycleGAN (official: G_A's decoder on G_B's encoding)"),
    _opt("--liss_val_phase", default="test", help="split the schedule is validated on (official: test)"),
    _opt("--liss_reuse_encodings", action=BOOL, default=True,
         help="compute once what the official step computes twice: the unrotated rotation view reuses the "
         "image's encoding, the gray encoder's first conv reads one luma channel, unread encodings are skipped "
         "(same maths, other float rounding); --no-liss_reuse_encodings: the official computation"),
    _opt("--liss_split_backward", action=BOOL, default=True,
         help="backpropagate the jigsaw and gray tasks right after their forward passes (they read only their "
         "own inputs): lower peak memory, gradients summed in another order; --no-: one backward (official)"),
]  # fmt: skip


def add_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
    # The official loader draws a flip and never applies it (known official bug 5): no flips by default.
    # --netG and --netD are not read: the generator is always LiSS's and every D a RotationalNLayerDiscriminator.
    parser.set_defaults(no_dropout=True, no_flip=True)
    for flags, kwargs in COMMON_OPTIONS + (TRAIN_OPTIONS if is_train else TEST_OPTIONS):
        parser.add_argument(*flags, **kwargs)
    if is_train:
        parser.set_defaults(dataset_mode="liss")
    return parser


def head_min_size(opt: argparse.Namespace) -> int:
    """Training the rotation/jigsaw heads: their flattened map needs >= 2 px, so crops of >= 84 px."""
    try:
        heads = opt.isTrain and {"rotation", "jigsaw"} & set(parse_tasks(opt.auxiliary_tasks))
    except ValueError:  # check_options names the bad task
        return 0
    return next(s for s in itertools.count(4, 4) if classifier_map_size(s) >= 2) if heads else 0


def check_options(opt: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Reject at parse time what the networks cannot run (the official code fails later, or silently)."""
    try:
        tasks = parse_tasks(opt.auxiliary_tasks)
    except ValueError as exc:
        parser.error(f"--auxiliary_tasks: {exc}")
    if opt.input_nc != 3 or opt.output_nc != 3:
        parser.error("--model liss needs RGB images (--input_nc 3 --output_nc 3)")
    if opt.norm == "batch" and not opt.liss_fix_head_norm:
        parser.error("--norm batch needs --liss_fix_head_norm (official heads norm 128 channels as 256)")
    if not opt.isTrain:
        return
    if opt.lr_policy != "linear":
        parser.error("--model liss decays the lr itself once translation runs: keep --lr_policy linear")
    if "jigsaw" in tasks and (opt.jigsaw_size % 3 or opt.jigsaw_size > opt.crop_size):
        parser.error(f"--jigsaw_size must be a multiple of 3 and at most --crop_size {opt.crop_size}, got "
                     f"{opt.jigsaw_size}")  # fmt: skip
    crops = {"rotation": opt.crop_size, "jigsaw": opt.jigsaw_size}
    sizes = {t: classifier_map_size(crops[t]) for t in tasks if t in crops}
    if len(set(sizes.values())) > 1 or any(s < 2 for s in sizes.values()):
        hint = "e.g. --crop_size 256 --jigsaw_size 222 (official) or --crop_size 96 --jigsaw_size 84"
        parser.error(f"the rotation/jigsaw heads need one map size >= 2, got {sizes}: use {hint}")
    if ("rotation" in tasks or opt.D_rotation) and "crop" not in opt.preprocess:
        parser.error("the rotation task needs square crops: use a --preprocess with crop")
    if opt.D_rotation and ("rotation" not in tasks or patch_map_size(opt.crop_size, opt.n_layers_D) < 2):
        parser.error("--D_rotation needs the rotation task and --crop_size >= 32")
