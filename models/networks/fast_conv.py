"""Faster float32 convolutions on CPU: Winograd forward and input gradient, GEMM weight gradient.

On CPU, PyTorch runs every convolution through oneDNN's direct kernels, and the translation models of this
project spend most of a training step in stride-1 3x3 convolutions over 32x32-128x128 feature maps (the
ResNet blocks, the up/down convolutions of the antialiased generators). For those shapes two pieces that
already ship with PyTorch are faster, measured on one AVX2 core:

- the forward and the input gradient through NNPACK (``torch._nnpack_spatial_convolution``, one image per
  call: its batched entry point chooses a slower algorithm), which uses Winograd/FFT transforms: about 25%
  fewer seconds at 32x32 with 256 channels, 35-50% at 64x64;
- the weight gradient as k*k matrix products over shifted views of the flattened input (no im2col copy),
  about twice as fast as oneDNN's backward-weights kernel.

A conv+backward of the CUT generator's ResNet block drops from 63 ms to 50 ms, a CUT training step by
about 24%. Results differ from the direct kernels by float32 rounding (relative 1e-5, the size of the
differences between cuDNN's algorithms). ``--no-fast_cpu_convs`` keeps PyTorch's own convolution.

Only plain ``nn.Conv2d`` modules are switched (their class becomes ``FastCPUConv2d``; parameters, buffers,
hooks and state_dict keys are untouched), and each call still falls back to PyTorch's convolution unless
it is float32 on CPU, outside autocast, stride 1, no dilation or groups, zero padding, and big enough to
gain (see ``fast_path_applies``). The backward is written with differentiable operations, so gradient
penalties (R1) that differentiate through it work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Below these sizes the transforms cost more than they save (measured: 3x slower for the 3-channel
#: 7x7 input convolution, 13% slower at 16x16 maps).
MIN_IN_CHANNELS = 32
MIN_OUTPUT_PIXELS = 32 * 32
KERNEL_SIZES = (3, 5, 7)


def nnpack_ready() -> bool:
    """Whether NNPACK can run here; the check also initialises it (its kernels fail before that)."""
    return torch.backends.nnpack.is_available()


def _nnpack_conv(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int) -> Tensor:
    """NNPACK convolution one image at a time (its batched path picks a slower algorithm).

    Images after the first are written into one preallocated output instead of concatenated at the end,
    so at most one image's result is held twice (less allocator churn, a lower resident peak).
    """
    pad = [padding, padding]
    first = torch._nnpack_spatial_convolution(x[:1], weight, bias, pad)
    if x.shape[0] == 1:
        return first
    out = first.new_empty((x.shape[0], *first.shape[1:]))
    out[:1] = first
    del first
    for i in range(1, x.shape[0]):
        out[i : i + 1] = torch._nnpack_spatial_convolution(x[i : i + 1], weight, bias, pad)
    return out


def conv_weight_grad(x: Tensor, grad_out: Tensor, kernel: int, padding: int) -> Tensor:
    """d loss / d weight of a stride-1 convolution, as ``kernel**2`` matrix products over shifted views.

    With the (padded) input flattened row by row, the input pixel under kernel tap (i, j) of output pixel
    (h, w) sits at ``(h * Wp + w) + (i * Wp + j)``. Laying the output gradient out on the same row length
    ``Wp`` (zeros in the extra columns) turns each tap into one product ``grad_out @ x_shifted^T`` whose
    right operand is a strided view: no im2col buffer. The last ``kernel - 1`` positions, which would read
    past the end, only meet those zeros and are dropped.
    """
    if padding:
        x = F.pad(x, (padding,) * 4)
    n, c_in, hp, wp = x.shape
    c_out, ho, wo = grad_out.shape[1:]
    span = ho * wp - (kernel - 1)
    flat_x = x.reshape(n, c_in, hp * wp)
    flat_g = F.pad(grad_out, (0, wp - wo)).reshape(n, c_out, ho * wp)[:, :, :span]
    if torch.is_grad_enabled():  # a double backward (gradient penalty) differentiates this: no out= writes
        taps = [
            torch.einsum("not,nit->oi", flat_g, flat_x[:, :, i * wp + j : i * wp + j + span])
            for i in range(kernel)
            for j in range(kernel)
        ]
        return torch.stack(taps, dim=-1).view(c_out, c_in, kernel, kernel)
    taps = grad_out.new_empty(kernel * kernel, c_out, c_in)
    for i in range(kernel):
        for j in range(kernel):
            shifted = flat_x[:, :, i * wp + j : i * wp + j + span]
            tap = taps[i * kernel + j]
            torch.mm(flat_g[0], shifted[0].t(), out=tap)
            for b in range(1, n):
                tap.addmm_(flat_g[b], shifted[b].t())
    return taps.permute(1, 2, 0).reshape(c_out, c_in, kernel, kernel)


def pad_backward(grad: Tensor, padding: tuple[int, int, int, int], mode: str = "reflect") -> Tensor:
    """Gradient of ``F.pad(x, padding, mode)`` (``padding`` = left, right, top, bottom) w.r.t. ``x``.

    Each border row / column is added onto the interior one it copies (reflect: padded row ``top - k``
    copies input row ``k``; replicate: every top row copies row 0; constant: nothing), rows first, then
    columns, in place on ``grad`` (which is consumed), so one copy of the result is the only allocation.
    About three times faster on CPU than PyTorch's reflection-pad backward for this project's shapes; the
    sums differ from it only in order (float rounding). Differentiable (double backward).
    """
    left, right, top, bottom = padding
    h, w = grad.shape[-2] - top - bottom, grad.shape[-1] - left - right
    _fold_borders(grad, -2, top, bottom, h, mode)
    rows = grad[..., top : top + h, :]
    _fold_borders(rows, -1, left, right, w, mode)
    return rows[..., left : left + w].contiguous()


def _fold_borders(grad: Tensor, dim: int, before: int, after: int, size: int, mode: str) -> None:
    """Add the ``before``/``after`` border slices along ``dim`` onto the interior slices they were copied from."""
    if mode == "reflect":
        for k in range(1, before + 1):
            grad.select(dim, before + k).add_(grad.select(dim, before - k))
        for k in range(1, after + 1):
            grad.select(dim, before + size - 1 - k).add_(grad.select(dim, before + size - 1 + k))
    elif mode == "replicate":
        if before:
            grad.select(dim, before).add_(grad.narrow(dim, 0, before).sum(dim))
        if after:
            grad.select(dim, before + size - 1).add_(grad.narrow(dim, before + size, after).sum(dim))
    elif mode != "constant":
        raise ValueError(f"pad_backward: unknown mode {mode!r} (reflect, replicate or constant)")


class _FastConv(torch.autograd.Function):
    """Stride-1 convolution with zero ``padding`` or, if ``reflect`` > 0, reflection padding done here.

    With reflection padding the unpadded input is saved (the padded copy is rebuilt in the backward): the
    padded tensor a separate ``ReflectionPad2d`` would hand to the conv, and the conv would keep until the
    backward, never stays alive.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, padding: int, reflect: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.reflect, ctx.has_bias = padding, reflect, bias is not None
        padded = F.pad(x, (reflect,) * 4, mode="reflect") if reflect else x
        return _nnpack_conv(padded, weight, bias, padding)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        kernel, padding, reflect = weight.shape[-1], ctx.padding, ctx.reflect
        grad_out = grad_out.contiguous()
        grad_x = grad_w = grad_b = None
        # Weight gradient first: its padded copies of x and grad_out are freed before grad_x is allocated.
        if ctx.needs_input_grad[1]:
            padded = F.pad(x, (reflect,) * 4, mode="reflect") if reflect else x
            grad_w = conv_weight_grad(padded, grad_out, kernel, padding)
            del padded
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        if ctx.needs_input_grad[0]:
            # The input gradient is the "full" correlation of grad_out with the flipped, transposed kernel.
            flipped = weight.flip(2, 3).transpose(0, 1).contiguous()
            grad_x = _nnpack_conv(grad_out, flipped, None, kernel - 1 - padding)
            if reflect:
                grad_x = pad_backward(grad_x, (reflect,) * 4, "reflect")
        return grad_x, grad_w, grad_b, None, None


def _cpu_autocast_on() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


def _capturing_graph() -> bool:
    """TorchScript, tracing, ONNX export or torch.compile: a recorded graph must hold portable convolutions,
    not this autograd Function around NNPACK (the exporters cannot inline it, and the file must run where
    NNPACK does not)."""
    return (
        torch.jit.is_scripting()
        or torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
    )


def fast_path_applies(conv: nn.Conv2d, x: Tensor, reflect: int = 0) -> bool:
    """Whether this call of ``conv`` on ``x`` takes the fast path (else PyTorch's own convolution).

    ``reflect``: reflection padding the conv applies to ``x`` first (a fused ``ReflectionPad2d``).
    """
    k, pad = conv.kernel_size, conv.padding
    if not (x.device.type == "cpu" and x.dtype == torch.float32 and conv.weight.dtype == torch.float32):
        return False
    if x.dim() != 4 or _cpu_autocast_on() or _capturing_graph():
        return False
    if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros":
        return False
    if isinstance(pad, str) or k[0] != k[1] or k[0] not in KERNEL_SIZES or pad[0] != pad[1] or pad[0] >= k[0]:
        return False
    if reflect and (pad != (0, 0) or min(x.shape[2:]) <= reflect):
        return False
    grow = 2 * (pad[0] + reflect) - k[0] + 1
    out_h, out_w = x.shape[2] + grow, x.shape[3] + grow
    return conv.in_channels >= MIN_IN_CHANNELS and out_h * out_w >= MIN_OUTPUT_PIXELS and nnpack_ready()


class FastCPUConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose eligible CPU calls use the fast path; same parameters and state_dict keys.

    ``reflect_padding`` > 0 when the ``ReflectionPad2d`` before it was fused into it (see ``fuse_reflect_pads``).
    """

    reflect_padding: int = 0

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        reflect = self.reflect_padding
        if fast_path_applies(self, input, reflect):
            return _FastConv.apply(input, weight, bias, self.padding[0], reflect)
        if reflect:
            input = F.pad(input, (reflect,) * 4, mode="reflect")
        return super()._conv_forward(input, weight, bias)


class FusedReflectionPad(nn.Module):
    """Stands where a ``ReflectionPad2d`` was after the next conv took over its padding: passes ``x`` on.

    The original module is kept (unregistered: it has no parameters or buffers, so state_dict keys do not
    change) to put back when the fast path is switched off.
    """

    def __init__(self, original: nn.ReflectionPad2d) -> None:
        super().__init__()
        self.__dict__["original"] = original

    def forward(self, x: Tensor) -> Tensor:
        return x

    def extra_repr(self) -> str:
        return f"done by the next conv: {self.original}"


def _tapped_sequentials(module: nn.Module) -> set[int]:
    """Sequentials whose layer outputs are read by index (generators with ``encode``, CUT's NCE taps)."""
    tapped = set()
    for m in module.modules():
        seq = getattr(m, "model", None) if hasattr(m, "encode") else None
        if isinstance(seq, nn.Sequential):
            tapped.add(id(seq))
    return tapped


def fuse_reflect_pads(module: nn.Module) -> int:
    """Let each ``FastCPUConv2d`` (unpadded) do the ``ReflectionPad2d`` right before it; returns the count.

    Skipped inside Sequentials that are tapped by layer index (a tap of the pad's output would change) and
    for convs with hooks or spectral norm (code that reads their weights may run the convolution itself).
    """
    tapped, fused = _tapped_sequentials(module), 0
    for seq in module.modules():
        if not isinstance(seq, nn.Sequential) or id(seq) in tapped:
            continue
        keys = list(seq._modules)
        for key, nxt in zip(keys, keys[1:]):
            pad, conv = seq._modules[key], seq._modules[nxt]
            if type(pad) is not nn.ReflectionPad2d or type(conv) is not FastCPUConv2d:
                continue
            if len(set(pad.padding)) != 1 or conv.padding != (0, 0) or conv.in_channels < MIN_IN_CHANNELS:
                continue
            if conv._forward_pre_hooks or conv._forward_hooks or hasattr(conv, "weight_orig"):
                continue  # spectral norm: its users (U-GAT-IT's fused SN) may call F.conv2d on the weights
            conv.reflect_padding = pad.padding[0]
            seq._modules[key] = FusedReflectionPad(pad)
            fused += 1
    return fused


def _unfuse_reflect_pads(module: nn.Module) -> None:
    for seq in module.modules():
        for key, child in list(seq._modules.items()):
            if isinstance(child, FusedReflectionPad):
                seq._modules[key] = child.original
            elif isinstance(child, FastCPUConv2d) and child.reflect_padding:
                del child.reflect_padding  # back to the class default, 0


def use_fast_cpu_convs(module: nn.Module, enabled: bool = True) -> int:
    """Switch every plain ``nn.Conv2d`` under ``module`` to ``FastCPUConv2d`` (or back); returns the count.

    Reflection pads right before a switched conv are fused into it (``fuse_reflect_pads``). Subclasses of
    ``nn.Conv2d`` are left alone: they may override the forward. Copies made later with ``copy.deepcopy``
    (EMA generators, frozen encoders) keep the class of the module they copy.
    """
    if enabled and not nnpack_ready():
        return 0
    if not enabled:
        _unfuse_reflect_pads(module)
    source, target = (nn.Conv2d, FastCPUConv2d) if enabled else (FastCPUConv2d, nn.Conv2d)
    switched = 0
    for m in module.modules():
        if type(m) is source:
            m.__class__ = target
            switched += 1
    if enabled:
        fuse_reflect_pads(module)
    return switched
