"""Complete, self-describing checkpoints written atomically and read without running code.

A checkpoint holds everything needed to continue bit-for-bit: options, every network, optimisers,
schedulers, the AMP scaler, model state beyond networks (image pools, queues, EMA copies, task schedules),
the position in training and all RNG states. Files are written to a temporary name, flushed, renamed and the
folder entry flushed too, so a crash, a kill or a full disk during saving never damages the previous file;
temp files of killed writers are removed at the next start (:func:`remove_orphan_temps`).
"""

from __future__ import annotations

import os
import pickle
import random
import re
import zipfile
from typing import Any

import numpy as np
import torch

FORMAT = "unpaired-i2i-checkpoint"
VERSION = 1
_TEMP = re.compile(r"\.tmp(\d+)$")
_NUMBERED = re.compile(r"^(iter_)?\d+\.pth$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or belongs to another model or configuration."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (disk full, no permission); the previous file is untouched."""


def atomic_save(obj: Any, path: str) -> None:
    """Write ``obj`` to ``path`` so that ``path`` is either the old file or the complete new one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(obj, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(folder)  # the rename itself must survive a power loss
    except (OSError, RuntimeError) as exc:  # torch's zip writer reports ENOSPC/EFBIG as RuntimeError
        previous = "the previous file is intact" if os.path.exists(path) else "no earlier file existed"
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise CheckpointWriteError(f"could not write checkpoint {path} ({reason}); {previous}") from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def fsync_dir(folder: str) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_orphan_temps(folder: str) -> list[str]:
    """Delete ``*.tmp<pid>`` files left by writers that were killed mid-save; returns their names.

    Called by the run that holds the folder's lock, so no other live process can be writing these files;
    this process's own temp name is spared all the same.
    """
    if not os.path.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        match = _TEMP.search(name)
        if match and int(match.group(1)) != os.getpid():
            try:
                os.remove(os.path.join(folder, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def prune_numbered(folder: str, keep_last: int) -> list[str]:
    """Keep the newest ``keep_last`` numbered checkpoints (``<epoch>.pth``, ``iter_<step>.pth``); latest/best stay.

    Newest by modification time, then name: epoch and iteration numbers count different things, the write
    order is what they share.
    """
    if keep_last <= 0 or not os.path.isdir(folder):
        return []
    numbered = [n for n in os.listdir(folder) if _NUMBERED.match(n)]
    numbered.sort(key=lambda n: (os.stat(os.path.join(folder, n)).st_mtime_ns, n))
    doomed = numbered[: max(0, len(numbered) - keep_last)]
    for name in doomed:
        os.remove(os.path.join(folder, name))
    return doomed


def load_file(path: str) -> dict:
    """Load any .pth/.pt/.ckpt safely (``weights_only=True``) onto the CPU."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(describe_unreadable(path, exc)) from exc


def describe_unreadable(path: str, exc: Exception) -> str:
    """Say what an unloadable file is: empty, truncated, refused, or not a PyTorch file at all."""
    size = os.path.getsize(path)
    if size == 0:
        return f"checkpoint {path} is empty (0 bytes); it was never completely written"
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip() is not None
        except (zipfile.BadZipFile, OSError, EOFError):
            damaged = True
        if damaged:
            return f"checkpoint {path} is truncated or damaged ({size} bytes)"
    if isinstance(exc, pickle.UnpicklingError) and "weights_only" in str(exc):
        return (
            f"refused to load {path}: it holds objects other than tensors and plain containers "
            f"(checkpoints are read with weights_only=True)"
        )
    if head != b"PK\x03\x04" and not head.startswith(b"\x80"):
        return f"{path} is not a checkpoint of this framework (not a PyTorch file, {size} bytes)"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot read checkpoint {path} ({size} bytes): {first}"


def is_framework_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_checkpoint(path: str, model_name: str | None = None, retry: str = "another --name") -> dict:
    """Load one of our checkpoints and check it belongs to ``model_name`` (see :func:`check_model`)."""
    return check_model(load_own_file(path), path, model_name, retry)


def check_model(ckpt: dict, path: str, model_name: str | None, retry: str = "another --name") -> dict:
    """``ckpt`` if ``model_name`` wrote it (or is None); else one line naming both models and the ways out.

    ``retry`` is the other way out (``another --pretrained_name`` for the file a fine-tuning run starts from:
    another ``--name`` would not change which file is read).
    """
    if model_name is not None and ckpt.get("model") != model_name:
        raise CheckpointError(
            f"{path} was written by model {ckpt.get('model')!r}, but --model is {model_name!r}; "
            f"pass --model {ckpt.get('model')} or {retry}"
        )
    return ckpt


def load_own_file(path: str) -> dict:
    """Load ``path`` and check it is a checkpoint of this framework (any model)."""
    ckpt = load_file(path)
    if not is_framework_checkpoint(ckpt):
        raise CheckpointError(f"{path} is not a checkpoint of this framework (no '{FORMAT}' header)")
    return ckpt


def checkpoint_path(expr_dir: str, label: str | int) -> str:
    return os.path.join(expr_dir, f"{label}.pth")


# ---------------------------------------------------------------- finiteness
def floating_tensors(tree: Any) -> list[torch.Tensor]:
    """Every floating-point tensor inside nested dicts, lists and tuples."""
    if torch.is_tensor(tree):
        return [tree] if tree.is_floating_point() and tree.numel() else []
    if isinstance(tree, dict):
        return [t for value in tree.values() for t in floating_tensors(value)]
    if isinstance(tree, (list, tuple)):
        return [t for value in tree for t in floating_tensors(value)]
    return []


def count_non_finite(tree: Any) -> tuple[int, int]:
    """(non-finite tensors, all floating tensors) in ``tree``, with one host read per device and dtype.

    Max-abs norms (``_foreach_norm`` with ord=inf, one fused kernel per group) are NaN or inf exactly when a
    tensor holds a NaN or an inf, and unlike the 2-norm they cannot overflow for large finite weights.
    """
    tensors = floating_tensors(tree)
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t.detach())
    bad = 0
    for group in groups.values():
        norms = torch.stack(torch._foreach_norm(group, float("inf")))
        bad += int((~torch.isfinite(norms)).sum())
    return bad, len(tensors)


# ---------------------------------------------------------------- RNG state
def rng_state() -> dict:
    """All of this process's RNG states as plain tensors and tuples (loadable with weights_only=True).

    CUDA: only the current device's generator (``cuda_device`` names it). Each process of a multi-GPU run
    drives one device, and reading every device's state would open a context on each GPU from each process.
    """
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        device = torch.cuda.current_device()
        state["cuda"] = [torch.cuda.get_rng_state(device)]
        state["cuda_device"] = device
    return state


def set_rng_state(state: dict) -> None:
    """Restore :func:`rng_state`; CUDA states are restored where they fit the devices visible now.

    A per-process state (``cuda_device`` present) goes to this process's current device. An older file holding
    one state per GPU visible at save time restores the first ``min(saved, visible)`` of them.
    """
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if not cuda or not torch.cuda.is_available():
        return
    if "cuda_device" in state:
        torch.cuda.set_rng_state(cuda[0], torch.cuda.current_device())
        return
    for index in range(min(len(cuda), torch.cuda.device_count())):
        torch.cuda.set_rng_state(cuda[index], index)


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
