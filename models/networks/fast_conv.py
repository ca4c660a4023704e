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
    """NNPACK convolution one image at a time (its batched path picks a slower algorithm)."""
    pad = [padding, padding]
    outs = [torch._nnpack_spatial_convolution(x[i : i + 1], weight, bias, pad) for i in range(x.shape[0])]
    return outs[0] if len(outs) == 1 else torch.cat(outs)


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
    taps = []
    for i in range(kernel):
        for j in range(kernel):
            shifted = flat_x[:, :, i * wp + j : i * wp + j + span]
            if n == 1:
                taps.append(flat_g[0] @ shifted[0].t())
            else:
                taps.append(torch.bmm(flat_g, shifted.transpose(1, 2)).sum(0))
    return torch.stack(taps, dim=-1).view(c_out, c_in, kernel, kernel)


class _FastConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, padding: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.has_bias = padding, bias is not None
        return _nnpack_conv(x, weight, bias, padding)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        kernel, padding = weight.shape[-1], ctx.padding
        grad_out = grad_out.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            # The input gradient is the "full" correlation of grad_out with the flipped, transposed kernel.
            flipped = weight.flip(2, 3).transpose(0, 1).contiguous()
            grad_x = _nnpack_conv(grad_out, flipped, None, kernel - 1 - padding)
        if ctx.needs_input_grad[1]:
            grad_w = conv_weight_grad(x, grad_out, kernel, padding)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None


def _cpu_autocast_on() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


def fast_path_applies(conv: nn.Conv2d, x: Tensor) -> bool:
    """Whether this call of ``conv`` on ``x`` takes the fast path (else PyTorch's own convolution)."""
    k, pad = conv.kernel_size, conv.padding
    if not (x.device.type == "cpu" and x.dtype == torch.float32 and conv.weight.dtype == torch.float32):
        return False
    if x.dim() != 4 or _cpu_autocast_on() or torch.jit.is_scripting():
        return False
    if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros":
        return False
    if isinstance(pad, str) or k[0] != k[1] or k[0] not in KERNEL_SIZES or pad[0] != pad[1] or pad[0] >= k[0]:
        return False
    out_h, out_w = x.shape[2] + 2 * pad[0] - k[0] + 1, x.shape[3] + 2 * pad[1] - k[1] + 1
    return conv.in_channels >= MIN_IN_CHANNELS and out_h * out_w >= MIN_OUTPUT_PIXELS and nnpack_ready()


class FastCPUConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose eligible CPU calls use the fast path; same parameters and state_dict keys."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if fast_path_applies(self, input):
            return _FastConv.apply(input, weight, bias, self.padding[0])
        return super()._conv_forward(input, weight, bias)


def use_fast_cpu_convs(module: nn.Module, enabled: bool = True) -> int:
    """Switch every plain ``nn.Conv2d`` under ``module`` to ``FastCPUConv2d`` (or back); returns the count.

    Subclasses of ``nn.Conv2d`` are left alone: they may override the forward. Copies made later with
    ``copy.deepcopy`` (EMA generators, frozen encoders) keep the class of the module they copy.
    """
    if enabled and not nnpack_ready():
        return 0
    source, target = (nn.Conv2d, FastCPUConv2d) if enabled else (FastCPUConv2d, nn.Conv2d)
    switched = 0
    for m in module.modules():
        if type(m) is source:
            m.__class__ = target
            switched += 1
    return switched
