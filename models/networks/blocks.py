"""Building blocks of the CycleGAN/CUT networks: the residual block and CUT's antialiased resampling layers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fast_conv import pad_backward
from .norms import get_norm_layer

_PAD_LAYERS: dict[str, type[nn.Module]] = {
    "reflect": nn.ReflectionPad2d,
    "refl": nn.ReflectionPad2d,
    "replicate": nn.ReplicationPad2d,
    "repl": nn.ReplicationPad2d,
    "zero": nn.ZeroPad2d,
}


def _pad_layer(pad_type: str) -> type[nn.Module]:
    if pad_type not in _PAD_LAYERS:
        raise ValueError(f"unknown pad_type {pad_type!r}; valid types: {', '.join(_PAD_LAYERS)}")
    return _PAD_LAYERS[pad_type]


class ResnetBlock(nn.Module):
    """``x + conv_block(x)`` with two 3x3 convs; keys ``conv_block.1``/``.5`` (``.6`` after a Dropout(0.5))."""

    def __init__(
        self,
        dim: int,
        padding_type: str = "reflect",
        norm: str = "instance",
        use_dropout: bool = False,
        use_bias: bool = True,
    ) -> None:
        super().__init__()
        if padding_type not in ("reflect", "replicate", "zero"):
            raise ValueError(f"unknown padding_type {padding_type!r}; valid types: reflect, replicate, zero")
        norm_layer = get_norm_layer(norm)
        layers: list[nn.Module] = []
        for second in (False, True):
            # 'zero' pads inside the conv, so the official indices shift by one there; kept for key parity.
            conv_pad = 1 if padding_type == "zero" else 0
            if padding_type != "zero":
                layers.append(_pad_layer(padding_type)(1))
            layers += [nn.Conv2d(dim, dim, kernel_size=3, padding=conv_pad, bias=use_bias), norm_layer(dim)]
            if not second:
                layers.append(nn.ReLU(True))
                if use_dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


def binomial_filter(filt_size: int) -> Tensor:
    """The ``filt_size``x``filt_size`` binomial blur (outer product of a Pascal row), summing to 1."""
    if filt_size < 1:
        raise ValueError(f"filt_size must be >= 1, got {filt_size}")
    row = torch.tensor([float(math.comb(filt_size - 1, k)) for k in range(filt_size)])
    filt = row[:, None] * row[None, :]
    return filt / filt.sum()


class _BlurFilter(nn.Module):
    """Holds a fixed depthwise filter as the persistent buffer ``filt`` (C, 1, k, k), as the CUT files do.

    The filter is a constant, so a state_dict without ``filt`` (other tools drop constant buffers) still loads
    with ``strict=True``: the missing key is filled from the module's own value before loading.

    ``lean_backward`` (default True): the training graph keeps no activation for this layer (``_PaddedBlur``);
    False: PyTorch's convolution, which keeps the padded input (the official computation, bit for bit).
    """

    lean_backward: bool = True

    def __init__(self, channels: int, filt: Tensor) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1))

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # state_dict here is load_state_dict's private copy, so filling it does not touch the caller's dict.
        state_dict.setdefault(prefix + "filt", self.filt.detach().clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


_PAD_MODES = {nn.ReflectionPad2d: "reflect", nn.ReplicationPad2d: "replicate", nn.ZeroPad2d: "constant"}


class _PaddedBlur(torch.autograd.Function):
    """Pad, then a depthwise (transposed) convolution with a fixed filter; nothing is saved for the backward.

    The gradient of a fixed linear filter w.r.t. its input does not depend on the input, but PyTorch's
    convolution saves its (padded) input for a weight gradient nobody asks for: at 128 px that is 13 MB per
    pass of the CUT generator (its two blur-pools), twice per step. Here the backward is the adjoint filter
    followed by the pad's adjoint; both are differentiable ops, so a double backward works.
    """

    @staticmethod
    def forward(ctx, x, filt, padding, mode, stride, transposed, conv_padding):
        ctx.save_for_backward(filt)
        ctx.args = (padding, mode, stride, transposed, conv_padding, x.shape[-2:], x.dtype)
        padded = F.pad(x, padding, mode=mode)
        groups = x.shape[1]
        if transposed:
            return F.conv_transpose2d(padded, filt, stride=stride, padding=conv_padding, groups=groups)
        return F.conv2d(padded, filt, stride=stride, groups=groups)

    @staticmethod
    def backward(ctx, grad):
        (filt,) = ctx.saved_tensors
        padding, mode, stride, transposed, conv_padding, (h, w), dtype = ctx.args
        filt, groups = filt.to(grad.dtype), grad.shape[1]
        if transposed:
            grad_padded = F.conv2d(grad, filt, stride=stride, padding=conv_padding, groups=groups)
        else:
            hp, wp = h + padding[2] + padding[3], w + padding[0] + padding[1]
            k = filt.shape[-1]
            extra = (hp - ((grad.shape[-2] - 1) * stride + k), wp - ((grad.shape[-1] - 1) * stride + k))
            grad_padded = F.conv_transpose2d(grad, filt, stride=stride, groups=groups, output_padding=extra)
        return pad_backward(grad_padded, padding, mode).to(dtype), None, None, None, None, None, None


def _padded_blur(
    module: nn.Module, x: Tensor, stride: int, transposed: bool, conv_padding: int = 0
) -> Tensor:
    """The blur through ``_PaddedBlur`` when autograd records it; plain ops otherwise (inference, export
    tracing: an autograd Function would be an opaque Python call in a TorchScript or ONNX graph), or when
    the module's ``lean_backward`` is off."""
    pad = module.pad
    recorded = torch.is_grad_enabled() and x.requires_grad
    if not (recorded and module.lean_backward) or torch.jit.is_tracing() or torch.jit.is_scripting():
        conv = F.conv_transpose2d if transposed else F.conv2d
        extra = {"padding": conv_padding} if transposed else {}
        return conv(pad(x), module.filt, stride=stride, groups=x.shape[1], **extra)
    padding = tuple(pad.padding) if len(pad.padding) == 4 else (pad.padding,) * 4
    return _PaddedBlur.apply(x, module.filt, padding, _PAD_MODES[type(pad)], stride, transposed, conv_padding)


class Downsample(_BlurFilter):
    """Antialiased downsampling (Zhang 2019) used by CUT: pad, depthwise binomial blur, stride.

    With the defaults: reflection pad 1, [1,2,1]x[1,2,1]/16 blur, stride 2, so H -> ceil(H/2).
    """

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2, pad_type: str = "reflect") -> None:
        super().__init__(channels, binomial_filter(filt_size))
        lo, hi = (filt_size - 1) // 2, filt_size // 2  # the official [floor, ceil] of (k-1)/2
        self.pad = _pad_layer(pad_type)((lo, hi, lo, hi))
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return _padded_blur(self, x, self.stride, transposed=False)


class Upsample(_BlurFilter):
    """Antialiased upsampling used by CUT: replication pad 1, strided depthwise transposed blur, crop.

    The filter is the binomial blur times stride**2 (each output phase sums to 1, so constants stay constant);
    the official crop (first row/column, and the last one for even filters) makes the output exactly 2H x 2W.
    """

    def __init__(self, channels: int, filt_size: int = 4, stride: int = 2, pad_type: str = "repl") -> None:
        super().__init__(channels, binomial_filter(filt_size) * stride**2)
        self.pad = _pad_layer(pad_type)(1)
        self.stride = stride
        self.conv_padding = 1 + (filt_size - 1) // 2
        self.crop_end = filt_size % 2 == 0

    def forward(self, x: Tensor) -> Tensor:
        out = _padded_blur(self, x, self.stride, transposed=True, conv_padding=self.conv_padding)[
            :, :, 1:, 1:
        ]
        return out[:, :, :-1, :-1] if self.crop_end else out


def use_lean_blur(module: nn.Module, enabled: bool = True) -> int:
    """Set ``lean_backward`` of every blur layer under ``module``; returns how many there are."""
    layers = [m for m in module.modules() if isinstance(m, _BlurFilter)]
    for layer in layers:
        layer.lean_backward = enabled
    return len(layers)


def fill_missing_buffers(module: nn.Module, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Return a copy of ``state_dict`` with every blur ``filt`` buffer of ``module`` it lacks filled in.

    ``load_state_dict`` already does this by itself (see ``_BlurFilter``); use this to compare key sets or to
    re-save an official file in the complete layout.
    """
    out = dict(state_dict)
    for name, sub in module.named_modules():
        if isinstance(sub, _BlurFilter):
            out.setdefault(f"{name}.filt" if name else "filt", sub.filt.detach().clone())
    return out
