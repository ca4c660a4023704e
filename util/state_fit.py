"""Loading a state_dict into a network with one line that says why it does not fit.

PyTorch's ``load_state_dict`` error lists every missing, unexpected and mismatched tensor (65 lines for a
ResNet generator with another ``--ngf``); the first difference is what tells a user which option is wrong.
"""

from __future__ import annotations

from torch import nn

from util.checkpoint import CheckpointError


def first_mismatch(expected: dict, found: dict) -> str:
    """The first tensor that differs between a network's own state and a file's ("" when they fit)."""
    for key, tensor in expected.items():
        if key not in found:
            return f"{key} is missing from the file"
        if tuple(found[key].shape) != tuple(tensor.shape):
            return f"{key} has shape {list(found[key].shape)} in the file, {list(tensor.shape)} here"
    extra = [k for k in found if k not in expected]
    return f"the file has {extra[0]}, which this network lacks" if extra else ""


def load_fitting(net: nn.Module, state: dict, name: str, source: str) -> None:
    """``net.load_state_dict(state)``, or a one-line CheckpointError naming ``name`` and the first difference."""
    why = first_mismatch(net.state_dict(), state)
    if why:
        raise CheckpointError(
            f"{source}: the weights of {name} do not fit this network ({why}): "
            f"was it trained with other architecture options (--netG, --ngf, --norm, --no_dropout, ...)?"
        )
    net.load_state_dict(state)
