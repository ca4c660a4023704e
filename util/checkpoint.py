"""Complete, self-describing checkpoints written atomically and read without running code.

A checkpoint holds everything needed to continue bit-for-bit: options, every network, optimisers,
schedulers, the AMP scaler, model state beyond networks (image pools, queues, EMA copies, task schedules),
the position in training and all RNG states. Files are written to a temporary name and renamed, so a crash
or a kill during saving never leaves a half-written ``latest.pth``.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

FORMAT = "unpaired-i2i-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or belongs to another model or configuration."""


def atomic_save(obj: Any, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(obj, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_file(path: str) -> dict:
    """Load any .pth/.pt/.ckpt safely (``weights_only=True``) onto the CPU."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc


def is_framework_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_checkpoint(path: str, model_name: str | None = None) -> dict:
    """Load one of our checkpoints and check it belongs to ``model_name``."""
    ckpt = load_file(path)
    if not is_framework_checkpoint(ckpt):
        raise CheckpointError(f"{path} is not a checkpoint of this framework (no '{FORMAT}' header)")
    if model_name is not None and ckpt.get("model") != model_name:
        raise CheckpointError(
            f"{path} was written by model {ckpt.get('model')!r}, but --model is {model_name!r}; "
            f"pass --model {ckpt.get('model')} or another --name"
        )
    return ckpt


def checkpoint_path(expr_dir: str, label: str | int) -> str:
    return os.path.join(expr_dir, f"{label}.pth")


# ---------------------------------------------------------------- RNG state
def rng_state() -> dict:
    """All global RNG states as plain tensors and tuples (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- official files
def clean_state_dict(state: dict, reference: dict | None = None) -> dict:
    """Make an official state_dict loadable into our module.

    Strips ``module.`` (DataParallel/DDP saves, every CPU save of the CUT/SRUNIT repos) and ``_orig_mod.``
    (torch.compile) prefixes, drops the InstanceNorm running statistics of pre-0.4 files, and fills constant
    buffers (the CUT blur ``filt`` kernels) that older files lack from ``reference`` (our module's state).
    """
    cleaned = {}
    for key, value in state.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix) :]
        key = key.replace("._orig_mod.", ".")
        if (
            reference is not None
            and key not in reference
            and key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")
        ):
            continue
        cleaned[key] = value
    if reference is not None:
        for key, value in reference.items():
            if key not in cleaned and key.endswith("filt"):
                cleaned[key] = value
    return cleaned
