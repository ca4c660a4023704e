"""Parse-time value checks: a bad number fails here with one line naming the option, not deep in a network.

Each model states its smallest image size (``BaseModel.min_image_size``) and, for models that count
iterations, the option that sets their length (``BaseModel.length_option``); this module enforces both
together with the ranges every model shares. A model's own ranges sit in its ``models/<model>_options.py``
(``MINIMUMS``/``INTERVALS`` tables read by its ``option_errors`` through :func:`range_errors`).

Wording: a value out of range reads ``--X must be >= 1 (what it counts), got 0``; a value of the wrong form
(a list, a format string, a name) reads ``--X: expected ..., got ...``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any

#: option -> (smallest valid value, what the value counts); checked for every model
MINIMUMS: dict[str, tuple[float, str]] = {
    "num_threads": (0, "data loading workers"),
    "torch_threads": (0, "torch threads per process (0: chosen from the machine)"),
    "batch_size": (1, "images per batch"),
    "ngf": (1, "generator filters"),
    "ndf": (1, "discriminator filters"),
    "n_layers_D": (1, "discriminator layers"),
    "load_size": (1, "pixels"),
    "crop_size": (1, "pixels"),
    "n_epochs": (0, "epochs"),
    "n_epochs_decay": (0, "epochs"),
    "max_steps": (0, "iterations"),
    "display_winsize": (1, "pixels"),
    "num_test": (0, "images"),
    "web_keep_last": (0, "epochs of web images (0: all)"),
    "lr": (0, "learning rate; 0 freezes the weights"),
    "max_dataset_size": (1, "images per domain; 0 would leave an epoch without a batch"),
    "init_gain": (0, "scale of the initial weights"),
    "pool_size": (0, "generated images buffered for D; 0: none"),
    "epoch_count": (1, "number of the first epoch; epochs count from 1"),
    "lr_decay_iters": (1, "epochs between x0.1 decays of --lr_policy step"),
}
#: option -> (the range in words, test, what the value is); checked for every model
INTERVALS: dict[str, tuple[str, Callable[[float], bool], str]] = {
    "beta1": ("in [0, 1)", lambda v: 0 <= v < 1, "Adam's first-moment decay"),
    "beta2": ("in [0, 1)", lambda v: 0 <= v < 1, "Adam's second-moment decay"),
}
#: largest image side an option may ask for: a typo of a few digits must not reach the image resize
MAX_PIXELS = 65536
PIXEL_OPTIONS = ("load_size", "crop_size", "display_winsize", "img_size")


def option_strings(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Option destination -> the flag that declared it first (UNIT's ``num_scales`` -> ``--dis.num_scales``)."""
    flags: dict[str, str] = {}
    for action in parser._actions:  # argparse keeps no public table of its actions
        long = [s for s in action.option_strings if s.startswith("--")]
        if long:
            flags.setdefault(action.dest, long[0])
    return flags


def range_errors(
    opt: Any,
    minimums: dict[str, tuple[float, str]],
    intervals: dict[str, tuple[str, Callable[[float], bool], str]] | None = None,
    flags: dict[str, str] | None = None,
) -> list[str]:
    """One message per option of the tables that this ``opt`` has and whose value is out of range.

    Options a model or phase does not have (``getattr`` gives None) and unset optional ones (None) are skipped.
    """
    flags = flags or {}
    errors = []
    for key, (low, what) in minimums.items():
        value = getattr(opt, key, None)
        if value is not None and value < low:
            errors.append(f"{flags.get(key, '--' + key)} must be >= {low:g} ({what}), got {value}")
    for key, (words, valid, what) in (intervals or {}).items():
        value = getattr(opt, key, None)
        if value is not None and not valid(value):
            errors.append(f"{flags.get(key, '--' + key)} must be {words} ({what}), got {value}")
    return errors


def number_errors(opt: Any, flags: dict[str, str], first: Iterable[str] = ()) -> list[str]:
    """Floats that are nan or infinite, integers beyond 64 bits and image sizes beyond :data:`MAX_PIXELS`.

    Options in ``first`` (those spelled out on the command line) are reported before derived or preset ones.
    """
    first = set(first)
    errors = []
    for key in sorted((k for k in vars(opt) if not k.startswith("_")), key=lambda k: k not in first):
        value, flag = getattr(opt, key), flags.get(key, f"--{key}")
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(f"{flag}: expected a finite number, got {value}")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.maxsize:
            try:
                digits = str(len(str(abs(value))))
            except ValueError:  # beyond Python's int-to-str limit (argparse read it below that limit)
                digits = "thousands of"
            errors.append(f"{flag}: expected an integer of at most 19 digits, got one of {digits} digits")
        elif key in PIXEL_OPTIONS and isinstance(value, int) and value > MAX_PIXELS:
            errors.append(f"{flag} must be <= {MAX_PIXELS} (pixels), got {value}")
    return errors


def given_options(parser: argparse.ArgumentParser, args: list[str] | None) -> set[str]:
    """Destinations of the options spelled out on the command line (not defaults or presets)."""
    table = parser._option_string_actions  # option string -> action; argparse keeps no public table
    given = set()
    for token in sys.argv[1:] if args is None else args:
        action = table.get(token.split("=", 1)[0]) if token.startswith("-") else None
        if action is not None:
            given.add(action.dest)
    return given


def check_ranges(opt: Any, parser: argparse.ArgumentParser, given: Iterable[str] = ()) -> None:
    """Every number finite and of a sane size, every shared numeric option within its range (before
    :func:`options.base_options.finalize` computes anything from them)."""
    flags = option_strings(parser)
    errors = number_errors(opt, flags, given) + range_errors(opt, MINIMUMS, INTERVALS, flags)
    if errors:
        parser.error(errors[0])


def format_suffix(opt: Any, parser: argparse.ArgumentParser) -> str:
    """``--suffix`` formatted with the options (``{model}_{netG}``); a field that is no option fails in one line."""
    fields = {k: v for k, v in vars(opt).items() if not k.startswith("_")}
    try:
        return opt.suffix.format(**fields)
    except KeyError as e:
        parser.error(
            f"--suffix: unknown field {{{e.args[0]}}} in {opt.suffix!r}; expected option names: "
            + ", ".join(sorted(fields))
        )
    except (ValueError, IndexError, AttributeError, TypeError) as e:
        parser.error(
            f"--suffix: expected a format string of option names like {{model}}_{{netG}}, got {opt.suffix!r} ({e})"
        )


def check_name(opt: Any, parser: argparse.ArgumentParser) -> None:
    """``--name`` (with its ``--suffix``) is one folder inside ``--checkpoints_dir``: an empty name would write
    into the checkpoints root, and a path (``a/b``, ``..``) somewhere else."""
    name = opt.name
    if name.strip() in ("", ".", "..") or "/" in name or "\\" in name:
        option = "--name (with --suffix)" if opt.suffix else "--name"
        parser.error(
            f"{option}: expected one folder name, without '/' or '\\' and not '.' or '..' (experiments go to "
            f"--checkpoints_dir/<name>; use --checkpoints_dir for another place), got {name!r}"
        )


def check_epoch_label(opt: Any, parser: argparse.ArgumentParser) -> None:
    """``--epoch`` names a checkpoint file in the experiment folder (``latest``, ``best``, ``5``, ``iter_200``):
    a path (``../other/latest``) would read, and under ``--continue_train`` branch from, another folder."""
    label = str(opt.epoch)
    if label.strip() in ("", ".", "..") or "/" in label or "\\" in label:
        parser.error(
            f"--epoch: expected a checkpoint name of the experiment (latest, best, an epoch number or iter_N), "
            f"got {label!r}; another experiment's checkpoints: --name, or --pretrained_name to start from them"
        )


def check_length_options(model_class: type, opt: Any, given: set[str], parser: argparse.ArgumentParser) -> None:
    """Iteration-based models refuse --n_epochs/--n_epochs_decay instead of silently ignoring them."""
    length = getattr(model_class, "length_option", None)
    used = sorted(k for k in ("n_epochs", "n_epochs_decay") if k in given)
    if opt.isTrain and length and used:
        flags = " and ".join(f"--{k}" for k in used)
        parser.error(
            f"--model {opt.model} counts iterations and ignores {flags}: set the training length with {length}"
        )


def input_size(opt: Any) -> int | None:
    """The square size the networks see, or None when images keep their own size (--preprocess none)."""
    if opt.preprocess == "none":
        return None
    if "crop" in opt.preprocess:
        return opt.crop_size
    return opt.load_size  # resize / scale_width: the (shorter) side the images are scaled to


def check_image_size(model_class: type, opt: Any, parser: argparse.ArgumentParser) -> None:
    """The model's smallest image size and, in training, the size multiple its generator keeps, checked before
    any network is built (test.py pads smaller or odd-sized images instead)."""
    size, minimum = input_size(opt), model_class.min_image_size(opt)
    if size is None:
        return
    option = "--img_size" if getattr(opt, "img_size", None) else "--crop_size"
    if option == "--crop_size" and "crop" not in opt.preprocess:
        option = "--load_size"
    if size < minimum:
        parser.error(
            f"{option} {size} is too small: --model {opt.model} with these options needs images of at least "
            f"{minimum} x {minimum} (see the model table in README.md)"
        )
    multiple = model_class.training_size_multiple(opt) if opt.isTrain else 1
    if size % multiple:
        below = size - size % multiple
        parser.error(
            f"{option} {size} is not a multiple of {multiple}: --model {opt.model}'s generator would return "
            f"another size than it is given (use {below} or {below + multiple})"
        )
