"""Normalisation-layer factories shared by the CycleGAN-family networks (CycleGAN, CUT, SRUNIT, LiSS)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

NormFactory = Callable[[int], nn.Module]

NORM_TYPES: tuple[str, ...] = ("batch", "instance", "none")


def _identity(num_features: int) -> nn.Module:
    return nn.Identity()


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 unless it is already float32 or float64: statistics and normalisations that
    underflow or lose digits in half precision (sums of squares, variances, unit vectors) run on this."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def get_norm_layer(norm_type: str) -> NormFactory:
    """Return a factory ``num_features -> nn.Module`` for ``norm_type``.

    As in the official repos: ``batch`` is affine with running statistics; ``instance`` has neither
    (so it contributes no state_dict keys, which the official checkpoints rely on); ``none`` is an identity.
    """
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "none":
        return _identity
    raise ValueError(f"unknown norm {norm_type!r}; valid norms: {', '.join(NORM_TYPES)}")


def norm_uses_bias(norm_type: str) -> bool:
    """Whether convolutions followed by this norm carry a bias.

    The official rule is ``use_bias = norm_layer.func == nn.InstanceNorm2d``: only instance norm gets a bias.
    BatchNorm's affine shift makes a bias redundant; ``none`` (a plain function there, not a partial) also ends
    up without one. Keeping that rule keeps the state_dict keys of official files for every norm.
    """
    get_norm_layer(norm_type)  # validates the name
    return norm_type == "instance"
