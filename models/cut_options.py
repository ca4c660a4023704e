"""CUT's command-line options (shared by SRUNIT), kept apart from ``models/cut_model.py`` so that the model
file shows the method. Names and defaults are the official ones; the switches added here (speed and memory
levers) default to on and their ``--no-`` form is the official computation.
"""

from __future__ import annotations

from models.networks import NORM_TYPES, build_generator
from options import add_flag, add_switch
from options.checks import range_errors

CUT_MODES = ("CUT", "cut", "FastCUT", "fastcut")
#: CUT's numeric options and their ranges (shared by SRUNIT), checked by :func:`option_errors`
MINIMUMS = {"netF_nc": (1, "width of F's MLPs"), "num_patches": (1, "patches sampled per layer")}
INTERVALS = {"nce_T": ("> 0", lambda v: v > 0, "temperature of the NCE loss")}


def parse_layers(text: str) -> list[int]:
    """``"0,4,8"`` -> ``[0, 4, 8]`` (the official comma-separated layer lists)."""
    return [int(x) for x in str(text).split(",") if x.strip() != ""]


def tap_count(opt) -> int:
    """How many layers of ``--netG`` ``--nce_layers`` may tap: its modules, counted on a width-1 copy."""
    net = build_generator(opt.netG, opt.input_nc, opt.output_nc, 1, "none", False, "normal", 0.02,
                          antialias=not opt.no_antialias, antialias_up=not opt.no_antialias_up)  # fmt: skip
    return len(net.model)


def option_errors(opt) -> list[str]:
    """Why these options cannot run (empty when they can); the model reports the first at parse time."""
    errors = range_errors(opt, MINIMUMS, INTERVALS)
    if not opt.isTrain or errors:
        return errors
    try:
        layers = parse_layers(opt.nce_layers)
    except ValueError:
        return [f"--nce_layers: expected comma-separated integers, got {opt.nce_layers!r}"]
    if not layers:
        return ["--nce_layers must name at least one layer"]
    n = tap_count(opt)
    if any(not 0 <= i < n for i in layers):
        return [f"--nce_layers must index the {n} layers of --netG {opt.netG} (0..{n - 1}), got {opt.nce_layers!r}"]  # fmt: skip
    return []


def add_cut_options(parser, is_train: bool):
    """CUT's options (training ones only when ``is_train``); SRUNIT adds its own after these."""
    parser.add_argument(
        "--CUT_mode",
        default="CUT",
        choices=CUT_MODES,
        help="CUT or FastCUT: selects the defaults of nce_idt, lambda_NCE, flip_equivariance, epochs",
    )
    parser.add_argument("--normG", default=None, choices=NORM_TYPES, help="generator norm (default: --norm)")
    parser.add_argument(
        "--normD", default=None, choices=NORM_TYPES, help="discriminator norm (default: --norm)"
    )
    add_flag(
        parser,
        "--no_antialias",
        help="stride-2 convs instead of blur-pooling in G and D (CycleGAN layout)",
    )
    add_flag(parser, "--no_antialias_up", help="ConvTranspose instead of [blur-upsample, conv] in G")
    # Official CUT defaults: xavier init, no dropout, and the decay-phase resize of its dataset.
    parser.set_defaults(init_type="xavier", no_dropout=True, dataset_mode="cut_unaligned")
    if is_train:
        parser.add_argument("--lambda_GAN", type=float, default=1.0, help="weight of the GAN loss GAN(G(X))")
        parser.add_argument(
            "--lambda_NCE", type=float, default=1.0, help="weight of the NCE loss NCE(G(X), X)"
        )
        add_flag(parser, "--nce_idt", help="also use the NCE loss on the identity mapping NCE(G(Y), Y)")
        parser.add_argument("--nce_layers", default="0,4,8,12,16", help="indices of G's layers used for NCE")
        add_flag(
            parser,
            "--nce_includes_all_negatives_from_minibatch",
            help="negatives from every image of the batch (single-image translation), not only the same one",
        )
        parser.add_argument(
            "--netF",
            default="mlp_sample",
            choices=["sample", "mlp_sample"],
            help="patch embedding: gather only, or gather + 2-layer MLP per layer",
        )
        parser.add_argument("--netF_nc", type=int, default=256, help="width of F's MLPs")
        parser.add_argument("--nce_T", type=float, default=0.07, help="temperature of the NCE loss")
        parser.add_argument("--num_patches", type=int, default=256, help="patches sampled per layer")
        add_flag(
            parser,
            "--flip_equivariance",
            help="flip G's input horizontally with p=0.5 and flip its features back (FastCUT)",
        )
        add_switch(
            parser,
            "--reuse_nce_keys",
            True,
            help="take the NCE keys G_enc(A), G_enc(B) from G's forward pass instead of re-encoding "
            "A and B (official); flipped steps always re-encode",
        )
        add_switch(
            parser,
            "--lean_blur",
            True,
            help="the antialiased blur layers keep no activation for the backward (exact adjoint); "
            "--no-lean_blur: PyTorch's depthwise conv, which keeps its padded input (official)",
        )
        add_switch(
            parser,
            "--free_grads_after_step",
            True,
            help="release each network's gradients right after its optimiser step (the next backward "
            "allocates them anew), so D's are not held through the G step nor G's and F's through the "
            "next forward and D step; --no-free_grads_after_step keeps them until the next zero_grad",
        )
        add_switch(
            parser,
            "--split_idt_backward",
            True,
            help="with --nce_idt: backpropagate the losses of G(A) before running G on B, so the graphs "
            "of the two translations are never alive together (same gradients, less peak memory); "
            "--no-split_idt_backward: G on A and B before one backward, as officially (CUT: one batch-2 "
            "pass on cat(A, B); SRUNIT: two passes, G(A) then G(B))",
        )
        parser.set_defaults(pool_size=0, n_epochs=200, n_epochs_decay=200)
    return parser
