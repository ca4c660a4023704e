"""Test-time options taken from the checkpoint: the architecture a model was trained with is not repeated.

Our checkpoints store every training option under ``"options"``; each model declares which of them shape its
networks (``BaseModel.architecture_options``). test.py, export.py and rescore use those values as defaults, so
``--ngf 16`` forgotten at test time no longer breaks loading; a flag given explicitly that contradicts the
checkpoint is refused with both values. The training folder (``--dataroot``, unless it was the synthetic data),
``--crop_size`` and ``--preprocess`` are taken as plain defaults that any flag overrides. Official checkpoints
(no options inside) change nothing.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import torch

import models
from util import checkpoint as ckpt_io

from .base_options import reads_dataroot


def saved_options(path: str) -> tuple[str | None, dict]:
    """(model name, training options) stored in our checkpoint at ``path``; (None, {}) for any other file.

    Memory-mapped, so reading the options of a large checkpoint costs no copy of its weights; an unreadable
    file is left for the loader to report with its reason.
    """
    if not os.path.isfile(path):
        return None, {}
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # corrupt, truncated or legacy files: the weight loader says what is wrong
        return None, {}
    if not ckpt_io.is_framework_checkpoint(ckpt) or not isinstance(ckpt.get("options"), dict):
        return None, {}
    return ckpt.get("model"), ckpt["options"]


def architecture_from_checkpoint(
    path: str, model: str | None = None, known: argparse.Namespace | None = None
) -> dict:
    """The architecture options stored in checkpoint ``path`` (empty for official files or no file).

    ``model`` is the ``--model`` that will load it (default: the checkpoint's own); ``known`` the options
    parsed so far (``--model test`` picks G_A's or G_B's channels from ``--model_suffix``).
    """
    saved_model, saved = saved_options(path)
    if not saved:
        return {}
    name = model or saved_model
    return models.find_model_class(name).architecture_from(saved, known or argparse.Namespace())


def with_checkpoint_model(args: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``args`` with ``--model`` taken from the experiment's checkpoint when the command line names none.

    ``python test.py --name EXP`` then runs the model EXP was trained with, as its architecture options;
    an explicit ``--model`` (e.g. ``--model test`` on a cycle_gan checkpoint) is always kept.
    """
    if any(a == "--model" or a.startswith("--model=") for a in args):
        return args
    known, _ = parser.parse_known_args(args)
    saved_model, _ = saved_options(experiment_checkpoint(known))
    if saved_model is None or saved_model == known.model or saved_model not in models.model_names():
        return args
    print(f"note: --model {saved_model} (from {experiment_checkpoint(known)})")
    return ["--model", saved_model, *args]


def experiment_checkpoint(known: argparse.Namespace) -> str:
    """The checkpoint test.py loads for these options: ``<checkpoints_dir>/<name>/<epoch>.pth``."""
    return ckpt_io.checkpoint_path(os.path.join(known.checkpoints_dir, known.name), known.epoch)


def apply_checkpoint_architecture(
    parser: argparse.ArgumentParser, known: argparse.Namespace, given: set[str]
) -> None:
    """Make the checkpoint's architecture the parser defaults; refuse explicit flags that contradict it."""
    path = experiment_checkpoint(known)
    arch = {
        k: v
        for k, v in architecture_from_checkpoint(path, known.model, known).items()
        if hasattr(known, k)
    }
    if "img_size" in given:  # U-GAT-IT's --img_size sets --crop_size
        given = given | {"crop_size"}
    conflicts = [f"--{k} {getattr(known, k)} (checkpoint: {v})" for k, v in arch.items()
                 if k in given and getattr(known, k) != v]  # fmt: skip
    if conflicts:
        parser.error(
            f"{', '.join(conflicts)}: {path} was trained with other architecture options; "
            f"drop the flag (test.py reads them from the checkpoint) or pick another --name/--epoch"
        )
    if arch:
        parser.set_defaults(**arch)


#: what test.py takes from our checkpoints as plain defaults, in the order the note names them
DATA_OPTIONS = ("dataroot", "crop_size", "load_size", "preprocess")


def apply_checkpoint_data(
    parser: argparse.ArgumentParser, known: argparse.Namespace, chosen: set[str], *, dataroot: bool
) -> str:
    """Make the checkpoint's preprocessing (and, with ``dataroot``, its training folder) the parser defaults.

    ``--load_size`` follows ``--crop_size`` as in the CycleGAN/CUT test options, except under the
    ``scale_width`` modes, where it is the width the images were scaled to in training (and is taken too).

    Unlike the architecture these are only defaults: ``chosen`` (flags given, or set by a model preset such as
    U-GAT-IT's ``--img_size``) always win. A training folder that is gone is refused rather than the synthetic
    data translated silently. Returns the note naming what was taken ("" if nothing).
    """
    path = experiment_checkpoint(known)
    _, saved = saved_options(path)
    taken = {k: saved[k] for k in ("crop_size", "preprocess") if k in saved and k not in chosen}
    if dataroot and "dataroot" not in chosen and training_dataroot(saved) and reads_dataroot(known):
        taken["dataroot"] = training_dataroot(saved)
        if not os.path.isdir(taken["dataroot"]):
            parser.error(f"--dataroot {taken['dataroot']} (from {path}) no longer exists: "
                         "pass --dataroot DATA or --input_dir FOLDER")  # fmt: skip
    if not taken:
        return ""
    preprocess = known.preprocess if "preprocess" in chosen else taken.get("preprocess", known.preprocess)
    if preprocess.startswith("scale_width") and "load_size" not in chosen and saved.get("load_size"):
        taken["load_size"] = saved["load_size"]  # the width the model saw its images at, not the crop's
    changed = [k for k in DATA_OPTIONS if k in taken and parser.get_default(k) != taken[k]]
    if "crop_size" in taken and "load_size" not in chosen and "load_size" not in taken:
        taken["load_size"] = None  # test-time load_size follows crop_size (the CycleGAN convention)
    parser.set_defaults(**taken)
    shown = " ".join(f"--{k} {taken[k]}" for k in changed)
    return f"note: {shown} (from {path})" if changed else ""


def training_dataroot(saved: dict) -> str:
    """The image folder a run of our framework was trained on ("" for the synthetic data or list files)."""
    return (saved.get("dataroot") or "") if saved.get("synthetic_data") is False else ""


def drop_train_only(
    args: list[str], test_parser: argparse.ArgumentParser, train_parser: Callable[[list[str]], argparse.ArgumentParser]
) -> tuple[list[str], list[str]]:
    """Split ``args`` into what test.py parses and the training-only flags it ignores (as the CycleGAN code).

    A flag the test parser does not know but the training parser of the same model does (``--lambda_NCE 2``,
    ``--n_epochs 5``) is dropped with its value; anything neither knows is kept, so it is still refused.
    ``train_parser`` builds the training parser for ``args`` (only when something is unknown).
    """
    _, unknown = test_parser.parse_known_args(args)
    if not unknown:
        return args, []
    _, still_unknown = train_parser(args).parse_known_args(unknown)
    ignored = _subsequence_minus(unknown, still_unknown)
    kept, pos = [], 0
    for token in args:  # remove the ignored tokens in order: each one is a later token of args
        if pos < len(ignored) and token == ignored[pos]:
            pos += 1
        else:
            kept.append(token)
    return kept, ignored


def _subsequence_minus(tokens: list[str], removed: list[str]) -> list[str]:
    """``tokens`` without the subsequence ``removed`` (both in command-line order)."""
    out, pos = [], 0
    for token in tokens:
        if pos < len(removed) and token == removed[pos]:
            pos += 1
        else:
            out.append(token)
    return out
