"""Parse-time value checks: a bad number fails here with one line naming the option, not deep in a network.

Each model states its smallest image size (``BaseModel.min_image_size``) and, for models that count
iterations, the option that sets their length (``BaseModel.length_option``); this module enforces both
together with the ranges every model shares.
"""

from __future__ import annotations

import argparse
import sys
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
}


def given_options(parser: argparse.ArgumentParser, args: list[str] | None) -> set[str]:
    """Destinations of the options spelled out on the command line (not defaults or presets)."""
    table = parser._option_string_actions  # option string -> action; argparse keeps no public table
    given = set()
    for token in sys.argv[1:] if args is None else args:
        action = table.get(token.split("=", 1)[0]) if token.startswith("-") else None
        if action is not None:
            given.add(action.dest)
    return given


def check_ranges(opt: Any, parser: argparse.ArgumentParser) -> None:
    """Every shared numeric option within its range."""
    for key, (low, what) in MINIMUMS.items():
        value = getattr(opt, key, None)
        if value is not None and value < low:
            parser.error(f"--{key} must be >= {low:g} ({what}), got {value}")


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
