"""GPU speed options applied when a model is built: ``--compile``, ``--channels_last`` and ``--tf32``.

They change how the networks run, never what they compute in float32 (``--tf32`` excepted, which is why it is
off by default). The CPU fast convolutions (``models.networks.fast_conv``) are a CPU-only eager path: they
must never reach ``torch.compile`` (a graph needs PyTorch's own convolution) and they compute in NCHW, so
``--compile`` and ``--channels_last`` switch them off, saying so once.
"""

from __future__ import annotations

import types

import torch
from torch import nn


def fast_convs_allowed(opt) -> bool:
    """Whether the CPU fast convolutions are used; prints why not when an option switched them off."""
    if not getattr(opt, "fast_cpu_convs", False):
        return False
    blockers = [flag for flag in ("compile", "channels_last") if getattr(opt, flag, False)]
    if blockers:
        print(f"--{blockers[0]}: the CPU fast convolutions are off (as with --no-fast_cpu_convs)")
        return False
    return True


def set_tf32(enabled: bool) -> None:
    """TF32 matmuls and convolutions on CUDA (Ampere and newer): ~10 bits of mantissa instead of 23.

    Set both ways explicitly: PyTorch enables TF32 convolutions by default, so ``--no-tf32`` (the default)
    is what keeps float32 runs exact.
    """
    # The allow_tf32 flags, not torch 2.9's fp32_precision: once the newer API has set cuDNN's flag, reading
    # ``cudnn.allow_tf32`` raises (torch 2.14), and these keep both APIs readable.
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def prepare_networks(networks: dict[str, nn.Module], opt) -> None:
    """``--channels_last`` converts every network's 4-D weights (convolutions then produce channels-last
    activations from NCHW inputs); ``--compile`` compiles each network's ``forward`` in place
    (``nn.Module.compile``: parameter names and checkpoints stay as they are) and what the network lists in
    ``compile_methods``: the methods and submodules a model calls instead of ``forward`` (CUT's ``encode``,
    UNIT's ``encode``/``decode``, TUNIT's ``decode``, ``cnt_encoder`` and ``trunk``)."""
    for net in networks.values():
        if getattr(opt, "channels_last", False):
            net.to(memory_format=torch.channels_last)
        if getattr(opt, "compile", False):
            compile_network(net)


def compile_network(net: nn.Module) -> None:
    net.compile()
    for name in getattr(net, "compile_methods", ()):
        target = getattr(net, name)
        if isinstance(target, nn.Module):
            target.compile()
        else:  # a bound method of this instance (a deepcopy, such as an EMA copy, rebinds it to the copy)
            setattr(net, name, types.MethodType(torch.compile(getattr(type(net), name)), net))
