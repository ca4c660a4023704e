"""Shared network building blocks: norms, init, residual/antialiasing blocks, generators, discriminators."""

from __future__ import annotations

from torch import nn

from .blocks import Downsample, ResnetBlock, Upsample, binomial_filter, fill_missing_buffers, use_lean_blur
from .discriminators import DISCRIMINATORS, NLayerDiscriminator, PixelDiscriminator, build_discriminator
from .generators import (
    GENERATORS,
    ResnetGenerator,
    UnetGenerator,
    UnetSkipConnectionBlock,
    build_generator,
    size_multiple,
)
from .init import INIT_TYPES, init_weights
from .norms import NORM_TYPES, get_norm_layer, norm_uses_bias


def count_parameters(module: nn.Module) -> int:
    """Number of parameter values (trainable or frozen); buffers such as the blur filters are not counted."""
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "INIT_TYPES",
    "NORM_TYPES",
    "Downsample",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "UnetSkipConnectionBlock",
    "Upsample",
    "binomial_filter",
    "build_discriminator",
    "build_generator",
    "count_parameters",
    "fill_missing_buffers",
    "use_lean_blur",
    "get_norm_layer",
    "init_weights",
    "norm_uses_bias",
    "size_multiple",
]
