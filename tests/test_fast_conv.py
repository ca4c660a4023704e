"""The faster CPU convolution path: same results as PyTorch's convolution, switched on and off cleanly."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.networks import fast_conv
from models.networks.fast_conv import (
    FastCPUConv2d,
    conv_weight_grad,
    fast_path_applies,
    nnpack_ready,
    use_fast_cpu_convs,
)

needs_nnpack = pytest.mark.skipif(not nnpack_ready(), reason="NNPACK not available on this CPU")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("n,kernel,padding", [(1, 3, 0), (2, 3, 1), (1, 7, 0), (2, 5, 2)])
def test_weight_grad_from_shifted_views_is_exact_in_float64(n, kernel, padding):
    torch.manual_seed(0)
    x = torch.randn(n, 3, 9, 11, dtype=torch.float64)
    w = torch.randn(4, 3, kernel, kernel, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(x, w, padding=padding)
    g = torch.randn_like(y)
    (expected,) = torch.autograd.grad(y, w, g)
    assert torch.allclose(conv_weight_grad(x, g, kernel, padding), expected, rtol=0, atol=1e-10)


@needs_nnpack
@pytest.mark.parametrize(
    "n,c_out,kernel,padding,bias", [(1, 32, 3, 0, True), (2, 16, 3, 1, False), (1, 3, 7, 0, True)]
)
def test_fast_conv_matches_pytorch_forward_and_backward(n, c_out, kernel, padding, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(32, c_out, kernel, padding=padding, bias=bias)
    fast = copy.deepcopy(conv)
    assert use_fast_cpu_convs(fast) == 1
    x = torch.randn(n, 32, 32 + kernel - 1 - 2 * padding, 32 + kernel - 1 - 2 * padding, requires_grad=True)
    assert fast_path_applies(fast, x)
    y_ref, y = conv(x), fast(x)
    assert y.shape == y_ref.shape and _rel(y, y_ref) < 1e-4
    g = torch.randn_like(y)
    ref = torch.autograd.grad(y_ref, [x, *conv.parameters()], g)
    got = torch.autograd.grad(y, [x, *fast.parameters()], g)
    for a, b in zip(got, ref):
        assert a.shape == b.shape and _rel(a, b) < 1e-4


@needs_nnpack
@pytest.mark.parametrize("reflect", [False, True])
def test_fast_conv_supports_gradient_penalties(reflect):
    """R1 differentiates the input gradient again (create_graph): it must flow through the fast backward
    (also through a fused reflection pad, whose backward adds the borders in place)."""
    torch.manual_seed(0)
    conv = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(32, 8, 3)) if reflect else nn.Conv2d(32, 8, 3)
    fast = copy.deepcopy(conv)
    use_fast_cpu_convs(fast)
    assert reflect == isinstance(fast[0] if reflect else fast, fast_conv.FusedReflectionPad)
    x = torch.randn(1, 32, 34, 34, requires_grad=True)
    grads = []
    for net in (conv, fast):
        (gx,) = torch.autograd.grad(net(x).square().sum(), x, create_graph=True)
        weight = net[1].weight if reflect else net.weight
        grads.append(torch.autograd.grad(gx.square().sum(), weight)[0])
    assert _rel(grads[1], grads[0]) < 1e-3


def test_small_or_strided_calls_use_pytorch_convolution_unchanged():
    torch.manual_seed(0)
    cases = [(nn.Conv2d(16, 8, 3), (1, 16, 40, 40)), (nn.Conv2d(32, 8, 3, stride=2), (1, 32, 66, 66)),
             (nn.Conv2d(32, 8, 3), (1, 32, 10, 10)), (nn.Conv2d(32, 8, 4), (1, 32, 40, 40))]  # fmt: skip
    for conv, shape in cases:
        fast = copy.deepcopy(conv)
        use_fast_cpu_convs(fast)
        x = torch.randn(shape)
        assert not fast_path_applies(fast, x)
        assert torch.equal(fast(x), conv(x))
    conv, x = nn.Conv2d(32, 8, 3), torch.randn(1, 32, 34, 34)
    use_fast_cpu_convs(conv)
    assert not fast_path_applies(conv, x.double()) and not fast_path_applies(conv.double(), x.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fast_path_applies(conv.float(), x)


class _CustomConv(nn.Conv2d):
    pass


def test_switching_keeps_parameters_and_keys_and_skips_subclasses():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(8, 8, 3)), _CustomConv(8, 8, 1)
    )
    keys = list(net.state_dict())
    weight = net[0].weight
    assert use_fast_cpu_convs(net) == (2 if nnpack_ready() else 0)
    if nnpack_ready():
        assert type(net[0]) is FastCPUConv2d and type(net[2][0]) is FastCPUConv2d
        assert type(copy.deepcopy(net)[0]) is FastCPUConv2d
    assert type(net[3]) is _CustomConv and net[0].weight is weight and list(net.state_dict()) == keys
    use_fast_cpu_convs(net, enabled=False)
    assert type(net[0]) is nn.Conv2d and type(net[2][0]) is nn.Conv2d


def test_nothing_switches_without_nnpack(monkeypatch):
    monkeypatch.setattr(fast_conv, "nnpack_ready", lambda: False)
    net = nn.Sequential(nn.Conv2d(3, 8, 3))
    assert use_fast_cpu_convs(net) == 0 and type(net[0]) is nn.Conv2d


@needs_nnpack
@pytest.mark.parametrize("flag,expected", [([], FastCPUConv2d), (["--no-fast_cpu_convs"], nn.Conv2d)])
def test_option_decides_the_convolution_class(flag, expected):
    import models
    from options import TrainOptions

    opt = TrainOptions().parse(["--dataroot", "unused", "--model", "cut", "--ngf", "4", "--ndf", "4", *flag],
                               save=False)  # fmt: skip
    model = models.create_model(opt)
    resblock_conv = model.netG.model[12].conv_block[1]
    assert type(resblock_conv) is expected


@pytest.mark.parametrize("pad", [1, 3])
def test_pad_backward_of_reflection_from_slices(pad):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, requires_grad=True)
    y = F.pad(x, (pad,) * 4, mode="reflect")
    g = torch.randn_like(y)
    (expected,) = torch.autograd.grad(y, x, g)
    assert torch.allclose(fast_conv.pad_backward(g, (pad,) * 4, "reflect"), expected, rtol=0, atol=1e-12)


@needs_nnpack
def test_reflect_pads_fuse_into_convs_and_free_the_padded_copy():
    from models.networks.blocks import ResnetBlock
    from models.networks.generators import ResnetGenerator

    torch.manual_seed(0)
    block = ResnetBlock(32)
    fused = copy.deepcopy(block)
    keys = list(block.state_dict())
    use_fast_cpu_convs(fused)
    seq = fused.conv_block
    assert isinstance(seq[0], fast_conv.FusedReflectionPad) and isinstance(
        seq[4], fast_conv.FusedReflectionPad
    )
    assert seq[1].reflect_padding == 1 and list(fused.state_dict()) == keys
    x = torch.randn(1, 32, 32, 32, requires_grad=True)
    saved = {}
    g = torch.randn(1, 32, 32, 32)
    outputs = {}
    for name, net in (("plain", block), ("fused", fused)):
        sizes: dict[int, int] = {}

        def keep(t, sizes=sizes):
            sizes.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
            return t

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            y = net(x)
        saved[name] = sum(sizes.values())
        # Conv biases before an InstanceNorm have an analytic gradient of 0 (rounding noise only): skipped.
        weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
        outputs[name] = (y, *torch.autograd.grad(y, [x, *weights], g))
    assert all(_rel(a, b) < 1e-4 for a, b in zip(outputs["fused"], outputs["plain"]))
    padded_input = 32 * 34 * 34 * 4  # one 34x34 map per fused pad stops being kept
    assert saved["plain"] - saved["fused"] >= 2 * padded_input - 32 * 32 * 32 * 4
    use_fast_cpu_convs(fused, enabled=False)
    assert type(seq[0]) is nn.ReflectionPad2d and type(seq[1]) is nn.Conv2d and seq[1].padding == (0, 0)
    assert torch.equal(fused(x), block(x))
    # A generator's own Sequential is tapped by index (CUT's NCE layers): its pads stay.
    gen = ResnetGenerator(ngf=32, n_blocks=1)
    use_fast_cpu_convs(gen)
    assert not any(isinstance(m, fast_conv.FusedReflectionPad) for m in gen.model.children())
    assert isinstance(gen.model[10].conv_block[0], fast_conv.FusedReflectionPad)
