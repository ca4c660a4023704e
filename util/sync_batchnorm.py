"""``--sync_bn``: BatchNorm statistics over the batches of all processes, on GPUs and on the CPU.

With several processes each one normalises with the statistics of its own share of the batch, and the
running statistics drift apart between processes (TUNIT's guiding net: 32 of its 68 buffers after a few
steps of a 2-process run). ``torch.nn.SyncBatchNorm`` fixes that on GPUs but refuses CPU tensors (its
kernels are CUDA-only), so a CPU run with gloo, which is how the tests check multi-process training, would
need another code path. :class:`SyncBatchNorm` is PyTorch's module; only on the CPU it computes the global
mean and variance itself from one autograd-aware all-reduce of (sum, sum of squares, count) per channel.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from util.distributed import guarded


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; the gradient of every process's input is the sum of all processes' gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        guarded(lambda: dist.all_reduce(out), "synchronising BatchNorm statistics")
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        guarded(lambda: dist.all_reduce(grad), "synchronising BatchNorm gradients")
        return grad


class SyncBatchNorm(nn.SyncBatchNorm):
    """``nn.SyncBatchNorm``, plus a CPU path (same statistics, gradients through the all-reduce)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        cpu_sync = (
            input.device.type == "cpu"
            and self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size() > 1
        )
        return self._cpu_forward(input) if cpu_sync else super().forward(input)

    def _cpu_forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        channels = x.size(1)
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        count = xf.new_full((1,), float(x.numel() // channels))
        totals = _AllReduceSum.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
        n = totals[-1]
        mean = totals[:channels] / n
        var = (totals[channels : 2 * channels] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), n.detach())
        shape = [1, channels] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        momentum = self.momentum
        if momentum is None:  # cumulative average, as BatchNorm
            momentum = 1.0 / float(self.num_batches_tracked)
        unbiased = var * n / (n - 1).clamp_min(1.0)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)


def convert_sync_batchnorm(module: nn.Module) -> int:
    """Replace every BatchNorm layer of ``module`` in place (same parameters and buffers); returns how many.

    Parameters keep their identity, so optimisers built before the conversion stay valid.
    """
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, nn.SyncBatchNorm):
            converted = nn.SyncBatchNorm.convert_sync_batchnorm(child)
            converted.__class__ = SyncBatchNorm  # the subclass adds a method, no state
            setattr(module, name, converted)
            count += 1
        else:
            count += convert_sync_batchnorm(child)
    return count
