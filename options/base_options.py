"""Options shared by training and testing.

Parsing happens in three passes so that a model and a dataset mode can add their own options (as in the
CycleGAN/CUT codebases): read ``--model`` and ``--dataset_mode``, let both add flags, then parse strictly.
Derived values are computed once in :func:`finalize` and the result is frozen: nothing may change options
after parsing, which removes a whole class of "who mutated opt" bugs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

import data
import models
from util.distributed import validate_training_options

from . import machine
from .checks import (
    check_epoch_label,
    check_image_size,
    check_length_options,
    check_name,
    check_ranges,
    format_suffix,
    given_options,
)

DEFAULT_NAME = "experiment_name"


def str2bool(value: str | bool) -> bool:
    """Accept the CUT-style ``--flag True/False`` as well as a bare ``--flag``."""
    if isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ("yes", "true", "t", "y", "1"):
        return True
    if lowered in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {value!r}")


def add_flag(parser: argparse.ArgumentParser, name: str, default: bool = False, help: str = "") -> None:
    """A legacy ``--no_x``/``--x`` switch: bare flag means True, ``--x False`` is accepted too."""
    parser.add_argument(name, type=str2bool, nargs="?", const=True, default=default, help=help)


def add_switch(parser: argparse.ArgumentParser, name: str, default: bool, help: str = "") -> None:
    """An on/off option spelled ``--x`` / ``--no-x``: how every faster default offers the official path back."""
    parser.add_argument(name, action=argparse.BooleanOptionalAction, default=default, help=help)


#: a run of this many characters without a space in an error message is a pasted value, not words
_LONG_TOKEN = re.compile(r"\S{201,}")


class OneLineErrorParser(argparse.ArgumentParser):
    """An option error is one line: the 40-line usage block argparse prints first would hide it, and a value of
    thousands of characters (``--crop_size 999...``) is shown by its start and its length."""

    #: set by :meth:`BaseOptions.build_parser`: an unknown flag then gets a suggestion (options.suggest)
    suggests = False

    def error(self, message: str):
        if self.suggests:
            from .suggest import hint  # imports every model: only on an error

            extra = hint(message, self)
            message = f"{message}; {extra}" if extra else message
        message = _LONG_TOKEN.sub(lambda m: f"{m.group()[:40]}... ({len(m.group())} characters)", message)
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


class FrozenOptions(argparse.Namespace):
    """Namespace that refuses assignment once parsing is done."""

    def __setattr__(self, key: str, value: Any) -> None:
        if self.__dict__.get("_frozen", False):
            raise AttributeError(f"options are read-only after parsing (tried to set {key!r})")
        super().__setattr__(key, value)

    def freeze(self) -> FrozenOptions:
        self.__dict__["_frozen"] = True
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in sorted(vars(self).items()) if not k.startswith("_")}

    def was_given(self, key: str) -> bool:
        """True when the option was spelled out on the command line, not left at its default or a preset.

        Some messages only make sense for a choice the user made: the default ``--gpu_ids 0`` on a machine
        without CUDA is no request for a GPU. Options not made by parsing count as not given.
        """
        return key in self.__dict__.get("_given", ())

    def replace(self, **changes: Any) -> FrozenOptions:
        """A frozen copy with some values changed (the test loop derives per-pass options this way)."""
        copy = FrozenOptions(**{**self.to_dict(), **changes})
        copy._given = self.__dict__.get("_given", frozenset())
        return copy.freeze()


class GroupedParser:
    """The parser as a model or dataset mode sees it: flags it adds land in a help group named after it."""

    def __init__(self, parser: argparse.ArgumentParser, title: str) -> None:
        self._parser = parser
        self._group = parser.add_argument_group(title)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        return self._group.add_argument(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


class BaseOptions:
    """Builds the parser; subclasses add train or test options."""

    is_train = False
    #: False for tools that load a model but read no images (export.py): no dataset is looked for or made
    reads_data = True

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        g = parser.add_argument_group("experiment")
        g.add_argument(
            "--dataroot",
            default=None,
            help="dataset folder (trainA, trainB, ...); omitted: a built-in synthetic dataset is made and used "
            "(test.py: the folder the checkpoint was trained on, when it was trained on one)",
        )
        g.add_argument(
            "--name", default=DEFAULT_NAME, help="experiment name; checkpoints go to checkpoints_dir/name"
        )
        g.add_argument("--model", default="cycle_gan", choices=models.model_names(), help="model to use")
        g.add_argument(
            "--gpu_ids", default="0", help="e.g. 0  0,1,2  -1 for CPU (falls back to CPU without CUDA)"
        )
        g.add_argument("--checkpoints_dir", default="./checkpoints")
        g.add_argument(
            "--seed", type=int, default=0, help="seeds weights, data order, augmentation and pools"
        )
        g.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"], help="mixed precision")
        add_switch(
            g,
            "--fast_cpu_convs",
            True,
            help="on CPU, run big stride-1 float32 convolutions through NNPACK (Winograd) with a GEMM weight "
            "gradient: ~25%% faster steps, float32 rounding differences only; --no-fast_cpu_convs: "
            "PyTorch's own convolution (bit-identical to the official code's)",
        )
        add_switch(g, "--compile", False, help="torch.compile each network's forward (docs/gpu.md); "
                   "switches the CPU fast convolutions off")  # fmt: skip
        add_switch(g, "--channels_last", False, help="channels-last memory format for the networks (faster "
                   "convolutions on recent GPUs); switches the CPU fast convolutions off")  # fmt: skip
        add_switch(g, "--tf32", False, help="TF32 matmuls and convolutions on CUDA (faster, ~1e-3 relative "
                   "error); off: float32 stays exact (PyTorch's own default enables TF32 convolutions)")  # fmt: skip
        add_flag(g, "--verbose", help="print network architectures")
        add_flag(g, "--dry_run", help="build the model and data, print networks and parameter counts, exit")
        add_flag(g, "--no_progress", help="no tqdm progress bars")
        g.add_argument(
            "--suffix", default="", help="appended to --name, formatted with the options: {model}_{netG}"
        )

        g = parser.add_argument_group("networks")
        g.add_argument("--input_nc", type=int, default=3, choices=[1, 3], help="channels of input images")
        g.add_argument("--output_nc", type=int, default=3, choices=[1, 3], help="channels of output images")
        g.add_argument("--ngf", type=int, default=64, help="generator filters in the last conv layer")
        g.add_argument("--ndf", type=int, default=64, help="discriminator filters in the first conv layer")
        g.add_argument("--netD", default="basic", choices=["basic", "n_layers", "pixel"])
        g.add_argument(
            "--netG",
            default="resnet_9blocks",
            choices=["resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128"],
        )
        g.add_argument("--n_layers_D", type=int, default=3, help="only used if netD is n_layers")
        g.add_argument("--norm", default="instance", choices=["instance", "batch", "none"])
        g.add_argument(
            "--init_type", default="normal", choices=["normal", "xavier", "kaiming", "orthogonal", "pytorch"]
        )
        g.add_argument("--init_gain", type=float, default=0.02)
        add_flag(g, "--no_dropout", help="no dropout in the generator")

        g = parser.add_argument_group("data")
        g.add_argument("--dataset_mode", default="unaligned", choices=data.dataset_modes())
        g.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"])
        add_flag(g, "--serial_batches", help="take images in order (no shuffling, B partner by index)")
        g.add_argument(
            "--num_threads",
            type=int,
            default=None,
            help="data loading worker processes (default: from the usable cores, 0 on 1-2 cores)",
        )
        g.add_argument(
            "--torch_threads",
            type=int,
            default=0,
            help="torch threads per process; 0: the cores left after the workers (or OMP_NUM_THREADS)",
        )
        g.add_argument("--batch_size", type=int, default=1)
        g.add_argument("--load_size", type=int, default=286, help="scale images to this size")
        g.add_argument("--crop_size", type=int, default=256, help="then crop to this size")
        g.add_argument("--max_dataset_size", type=int, default=sys.maxsize, help="cap on images per domain")
        for letter in "AB":
            g.add_argument(
                f"--list_{letter}",
                default="",
                help=f"text file naming the domain-{letter} images, one per line (replaces <dataroot>/<phase>{letter})",
            )
            g.add_argument(
                f"--list_root_{letter}",
                default="",
                help=f"folder the relative lines of --list_{letter} start from (default: the list file's folder)",
            )
        g.add_argument(
            "--preprocess",
            default="resize_and_crop",
            choices=["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"],
        )
        add_flag(g, "--no_flip", help="no random horizontal flips")
        g.add_argument("--display_winsize", type=int, default=256, help="display and HTML image size")
        g.add_argument(
            "--epoch", default="latest", help="which checkpoint to load: latest, best or an epoch number"
        )
        # Imported here, not at the top: util.metrics imports options.
        from util.metrics.evaluate import add_eval_options

        add_eval_options(parser, self.is_train)
        return parser

    # ------------------------------------------------------------------ parsing
    def build_parser(self, args: list[str] | None) -> argparse.ArgumentParser:
        """Three passes: base options, then the model's, then the dataset mode's (the model may change its default).

        ``--help`` is added last, so that ``--model X --help`` lists X's options and its dataset mode's.
        """
        parser = OneLineErrorParser(
            description="Unpaired image-to-image translation",
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
            allow_abbrev=False,
            add_help=False,
        )
        parser.suggests = True
        parser = self.initialize(parser)
        known, _ = parser.parse_known_args(args)
        model_class = models.find_model_class(known.model)
        model_class.modify_commandline_options(GroupedParser(parser, f"{known.model} options"), self.is_train)
        known, _ = parser.parse_known_args(args)
        try:
            presets = model_class.preset_defaults(known, self.is_train)
        except ValueError as e:  # e.g. a --config file that cannot be read: one line, as for any option error
            parser.error(str(e))
        if presets:
            parser.set_defaults(**presets)
            known, _ = parser.parse_known_args(args)
        title = f"dataset mode {known.dataset_mode} options"
        data.get_option_setter(known.dataset_mode)(GroupedParser(parser, title), self.is_train)
        parser.add_argument("-h", "--help", action="help", help="show this help (with --model X: X's options)")
        return parser

    def parse(self, args: list[str] | None = None, *, save: bool = True) -> FrozenOptions:
        parser = self.build_parser(args)
        opt = parser.parse_args(args, namespace=FrozenOptions())
        opt.isTrain = self.is_train
        given = given_options(parser, args)
        opt._given = frozenset(given)
        check_ranges(opt, parser, given)
        finalize(opt, parser, reads_data=self.reads_data)
        check_name(opt, parser)
        check_epoch_label(opt, parser)
        model_class = models.find_model_class(opt.model)
        check_length_options(model_class, opt, given, parser)
        check_image_size(model_class, opt, parser)
        model_class.validate_options(opt, parser)
        validate_training_options(opt, parser, models.find_model_class(opt.model))
        opt.freeze()
        self.parser = parser
        if save:
            self.save(opt)
        return opt

    def save(self, opt: FrozenOptions) -> None:
        """Print and write the options of a parsed ``opt``; train.py calls it once its checks have passed."""
        if not opt.dry_run:
            print(format_options(opt, self.parser))
            save_options(opt, self.parser, train=self.is_train)


def finalize(opt: FrozenOptions, parser: argparse.ArgumentParser, *, reads_data: bool = True) -> None:
    """Every derived value, computed once. ``reads_data`` False (export.py): no dataset is needed, so the
    synthetic one is neither generated nor used."""
    if opt.suffix:
        opt.name = f"{opt.name}_{format_suffix(opt, parser)}"
    try:
        gpu_ids = [int(x) for x in str(opt.gpu_ids).split(",") if x.strip() != ""]
    except ValueError:
        parser.error(f"--gpu_ids: expected comma-separated integers (-1 for CPU), got {opt.gpu_ids!r}")
    opt.gpu_ids = [g for g in gpu_ids if g >= 0]
    if opt.load_size is None:  # test.py: no resize beyond the crop unless asked
        opt.load_size = opt.crop_size
    if opt.batch_size < 1:
        parser.error(f"--batch_size must be >= 1, got {opt.batch_size}")
    cores, processes = machine.usable_cores(), machine.local_processes()
    if opt.num_threads is None:
        opt.num_threads = machine.default_workers(cores, processes)
    if opt.torch_threads == 0:
        opt.torch_threads = machine.default_torch_threads(cores, max(opt.num_threads, 0), processes)
    opt.synthetic_data = opt.dataroot is None and reads_data and reads_dataroot(opt)
    if opt.synthetic_data:
        opt.dataroot = default_synthetic_root(opt)
    elif opt.dataroot is None:  # test.py on a plain folder, a video or a camera, export.py: no dataset
        opt.dataroot = getattr(opt, "input_dir", "") or ""


def reads_dataroot(opt: argparse.Namespace) -> bool:
    """Whether these options read images from ``--dataroot``: not test.py on a plain folder, a video or a
    camera, nor a run whose list files name both domains' images."""
    standalone_input = not getattr(opt, "isTrain", False) and (
        getattr(opt, "input_dir", "") or getattr(opt, "video", "") or getattr(opt, "camera", -1) >= 0
    )
    listed = bool(getattr(opt, "list_A", "") and getattr(opt, "list_B", ""))  # both domains from list files
    return not standalone_input and not listed


def default_synthetic_root(opt: FrozenOptions) -> str:
    """With no --dataroot the built-in synthetic dataset is generated (deterministically) and used."""
    from datasets.make_synthetic import make_synthetic

    layout = "class_folder" if opt.dataset_mode in ("class_folder", "tunit") else "unaligned"
    root = os.path.join("datasets", f"synthetic_{layout}")
    return make_synthetic(root, layout=layout, size=64, seed=0)


def format_options(opt: FrozenOptions, parser: argparse.ArgumentParser) -> str:
    lines = ["----------------- Options ---------------"]
    for key, value in opt.to_dict().items():
        default = parser.get_default(key)
        note = f"\t[default: {default}]" if default is not None and value != default else ""
        lines.append(f"{key:>25}: {value!s:<30}{note}")
    lines.append("----------------- End -------------------")
    return "\n".join(lines)


def save_options(opt: FrozenOptions, parser: argparse.ArgumentParser, *, train: bool) -> None:
    """opt.txt for people, opt.json for tools (and for checkpoint compatibility checks).

    test.py writes its record into an existing experiment folder only: a mistyped ``--name`` must not leave an
    empty experiment behind (it then stops with one line saying which weights it looked for).
    """
    expr_dir = os.path.join(opt.checkpoints_dir, opt.name)
    if not train and not os.path.isdir(expr_dir):
        return
    os.makedirs(expr_dir, exist_ok=True)
    stem = "train_opt" if train else "test_opt"
    with open(os.path.join(expr_dir, "opt.txt" if train else "test_opt.txt"), "w") as f:
        f.write(format_options(opt, parser) + "\n")
    with open(os.path.join(expr_dir, f"{stem}.json"), "w") as f:
        json.dump(opt.to_dict(), f, indent=2, default=str)
