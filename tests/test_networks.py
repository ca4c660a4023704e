"""Shared CycleGAN/CUT networks, GAN losses and the image pool: counts, official keys, shapes, closed forms."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from models.losses import GANLoss, cal_gradient_penalty
from models.networks import (
    Downsample,
    NLayerDiscriminator,
    PixelDiscriminator,
    ResnetBlock,
    ResnetGenerator,
    UnetGenerator,
    Upsample,
    build_discriminator,
    build_generator,
    count_parameters,
    fill_missing_buffers,
    get_norm_layer,
    init_weights,
    norm_uses_bias,
    size_multiple,
    use_lean_blur,
)
from util.image_pool import ImagePool


def n_buffer_values(net: nn.Module) -> int:
    return sum(b.numel() for b in net.buffers())


# Full-size nets are built on the meta device: shapes and counts without allocating or initialising memory.
META = torch.device("meta")


# ---------------------------------------------------------------- parameter counts (as the official code)


@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize(("ngf", "params", "buffers"), [(64, 11_378_179, 9_600), (8, 180_419, 1_200)])
def test_resnet_9blocks_counts(antialias, ngf, params, buffers):
    with META:
        g = ResnetGenerator(ngf=ngf, antialias=antialias, antialias_up=antialias)
    assert len(g.model) == (32 if antialias else 28)
    assert count_parameters(g) == params
    assert n_buffer_values(g) == (buffers if antialias else 0)


@pytest.mark.parametrize(("ngf", "params"), [(64, 7_837_699), (8, 124_931)])
def test_resnet_6blocks_count(ngf, params):
    with META:
        g = build_generator("resnet_6blocks", 3, 3, ngf, "instance", False, "normal", 0.02)
    assert count_parameters(g) == params


@pytest.mark.parametrize(
    ("name", "norm", "params"),
    [
        ("unet_256", "instance", 54_409_603),
        ("unet_128", "instance", 41_825_667),
        ("unet_256", "batch", 54_413_955),
    ],
)
def test_unet_counts(name, norm, params):
    with META:
        g = build_generator(name, 3, 3, 64, norm, False, "normal", 0.02)
    assert count_parameters(g) == params


@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize(("ndf", "params", "buffers"), [(64, 2_764_737, 4_032), (8, 44_537, 504)])
def test_patchgan_counts(antialias, ndf, params, buffers):
    with META:
        d = build_discriminator("basic", 3, ndf, 5, "instance", "normal", 0.02, antialias=antialias)
    assert count_parameters(d) == params
    assert n_buffer_values(d) == (buffers if antialias else 0)


def test_batchnorm_and_pixel_discriminator_counts():
    assert count_parameters(NLayerDiscriminator(norm="batch")) == 2_765_633
    assert count_parameters(build_discriminator("pixel", 3, 64, 3, "instance", "normal", 0.02)) == 8_705


def test_count_parameters_includes_frozen_parameters():
    g = ResnetGenerator(ngf=8)
    g.requires_grad_(False)
    assert count_parameters(g) == 180_419


# ---------------------------------------------------------------- official state_dict keys (as the official code)


def shapes(build) -> dict[str, tuple[int, ...]]:
    with META:
        net = build()
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def test_cyclegan_generator_keys():
    s = shapes(ResnetGenerator)
    assert s["model.1.weight"] == (64, 3, 7, 7) and s["model.1.bias"] == (64,)
    assert s["model.4.weight"] == (128, 64, 3, 3) and s["model.7.weight"] == (256, 128, 3, 3)
    assert s["model.10.conv_block.1.weight"] == (256, 256, 3, 3)
    assert s["model.18.conv_block.5.bias"] == (256,)
    assert s["model.19.weight"] == (256, 128, 3, 3)  # ConvTranspose: (in, out, k, k)
    assert s["model.22.weight"] == (128, 64, 3, 3)
    assert s["model.26.weight"] == (3, 64, 7, 7) and s["model.26.bias"] == (3,)
    assert len(s) == 2 * (3 + 18 + 2 + 1)  # weight + bias of every conv, no IN keys


def test_cut_generator_keys():
    s = shapes(lambda: ResnetGenerator(antialias=True, antialias_up=True))
    assert s["model.4.weight"] == (128, 64, 3, 3) and s["model.8.weight"] == (256, 128, 3, 3)
    assert s["model.7.filt"] == (128, 1, 3, 3) and s["model.11.filt"] == (256, 1, 3, 3)
    assert s["model.12.conv_block.1.weight"] == (256, 256, 3, 3)
    assert s["model.20.conv_block.5.weight"] == (256, 256, 3, 3)
    assert s["model.21.filt"] == (256, 1, 4, 4) and s["model.25.filt"] == (128, 1, 4, 4)
    assert s["model.22.weight"] == (128, 256, 3, 3) and s["model.26.weight"] == (64, 128, 3, 3)
    assert s["model.30.weight"] == (3, 64, 7, 7)
    assert sorted(k for k in s if k.endswith("filt")) == [
        "model.11.filt",
        "model.21.filt",
        "model.25.filt",
        "model.7.filt",
    ]


def test_batchnorm_generator_has_no_conv_bias_except_last():
    s = shapes(lambda: ResnetGenerator(ngf=8, norm="batch"))
    assert "model.1.bias" not in s and "model.10.conv_block.1.bias" not in s
    assert s["model.2.running_mean"] == (8,) and "model.26.bias" in s
    assert norm_uses_bias("instance") and not norm_uses_bias("batch") and not norm_uses_bias("none")


def test_resnet_block_dropout_keys():
    assert [k for k in ResnetBlock(8).state_dict() if k.endswith("weight")] == [
        "conv_block.1.weight",
        "conv_block.5.weight",
    ]
    block = ResnetBlock(8, use_dropout=True)
    assert [k for k in block.state_dict() if k.endswith("weight")] == [
        "conv_block.1.weight",
        "conv_block.6.weight",
    ]
    assert isinstance(block.conv_block[4], nn.Dropout) and block.conv_block[4].p == 0.5


def test_discriminator_keys():
    plain = list(NLayerDiscriminator(ndf=8).state_dict())
    assert plain == [f"model.{i}.{p}" for i in (0, 2, 5, 8, 11) for p in ("weight", "bias")]
    cut = shapes(lambda: NLayerDiscriminator(ndf=8, antialias=True))
    assert list(cut) == [
        "model.0.weight",
        "model.0.bias",
        "model.2.filt",
        "model.3.weight",
        "model.3.bias",
        "model.6.filt",
        "model.7.weight",
        "model.7.bias",
        "model.10.filt",
        "model.11.weight",
        "model.11.bias",
        "model.14.weight",
        "model.14.bias",
    ]
    assert cut["model.2.filt"] == (8, 1, 3, 3) and cut["model.11.weight"] == (64, 32, 4, 4)
    assert list(PixelDiscriminator(ndf=8, norm="batch").state_dict())[:5] == [
        "net.0.weight",
        "net.0.bias",
        "net.2.weight",
        "net.3.weight",
        "net.3.bias",
    ]


def test_unet_keys():
    s = shapes(lambda: UnetGenerator(3, 3, 8, ngf=64, norm="batch"))
    assert s["model.model.0.weight"] == (64, 3, 4, 4) and "model.model.0.bias" not in s  # batch: no bias
    assert s["model.model.3.weight"] == (128, 3, 4, 4) and "model.model.3.bias" in s
    assert s["model.model.1.model.1.weight"] == (128, 64, 4, 4)
    assert s["model.model.1.model.2.running_var"] == (128,)
    innermost = "model.model.1" + ".model.3" * 6
    assert s[innermost + ".model.1.weight"] == (512, 512, 4, 4)
    assert s[innermost + ".model.3.weight"] == (512, 512, 4, 4)
    assert innermost + ".model.3.model.1.weight" not in s


def test_blur_buffers_load_when_missing():
    g = ResnetGenerator(ngf=8, antialias=True, antialias_up=True)
    sd = {k: v for k, v in g.state_dict().items() if not k.endswith("filt")}
    fresh = ResnetGenerator(ngf=8, antialias=True, antialias_up=True)
    fresh.load_state_dict(sd, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), g.state_dict().values()))
    assert "model.7.filt" not in sd  # the caller's dict is left as it was
    assert set(fill_missing_buffers(fresh, sd)) == set(g.state_dict())


# ---------------------------------------------------------------- shapes and forward semantics


@pytest.mark.parametrize("antialias", [False, True])
def test_forward_shapes(antialias):
    x = torch.randn(2, 3, 32, 32)
    g = ResnetGenerator(ngf=8, antialias=antialias, antialias_up=antialias)
    assert g(x).shape == (2, 3, 32, 32)
    assert NLayerDiscriminator(ndf=8, antialias=antialias)(x).shape == (2, 1, 2, 2)
    assert PixelDiscriminator(ndf=8)(x).shape == (2, 1, 32, 32)


def test_unet_forward_shape_and_size_multiples():
    assert UnetGenerator(3, 2, 5, ngf=8)(torch.randn(1, 3, 32, 32)).shape == (1, 2, 32, 32)
    assert [size_multiple(n) for n in ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256")] == [
        4,
        4,
        128,
        256,
    ]


def test_encode_taps_of_cut_layout():
    g = ResnetGenerator(ngf=8, antialias=True, antialias_up=True)
    feats = g.encode(torch.randn(1, 3, 32, 32), [0, 4, 8, 12, 16])
    assert [tuple(f.shape) for f in feats] == [
        (1, 3, 38, 38),
        (1, 16, 32, 32),
        (1, 32, 16, 16),
        (1, 32, 8, 8),
        (1, 32, 8, 8),
    ]


def test_encode_stops_early_and_can_return_the_image():
    g = ResnetGenerator(ngf=8, antialias=True, antialias_up=True).eval()
    x = torch.randn(1, 3, 32, 32)
    calls = []
    g.model[17].register_forward_hook(lambda *_: calls.append(1))
    g.encode(x, [0, 16])
    assert calls == []
    feats = g.encode(x, [16, 0, len(g.model) - 1], stop_early=False)
    assert feats[1].shape == (1, 3, 38, 38)
    assert torch.allclose(feats[2], g(x))
    with pytest.raises(ValueError):
        g.encode(x, [32])


def test_encode_tap_before_inplace_relu_is_not_rectified():
    g = ResnetGenerator(ngf=8)  # model.2 is InstanceNorm, model.3 an in-place ReLU
    (normed,) = g.encode(torch.randn(1, 3, 16, 16), [2], stop_early=False)
    assert normed.min() < 0


def test_downsample_upsample_sizes_and_filters():
    x = torch.randn(2, 4, 9, 8)
    assert Downsample(4)(x).shape == (2, 4, 5, 4)
    assert Upsample(4)(x).shape == (2, 4, 18, 16)
    assert torch.equal(Downsample(2).filt[1, 0], torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16)
    row = torch.tensor([1.0, 3, 3, 1])
    assert torch.equal(Upsample(2).filt[0, 0], row[:, None] * row[None, :] / 16)


def _plain_resampling(module, x):
    """The textbook form of CUT's blur resampling: pad module, then PyTorch's depthwise (transposed) conv."""
    groups = x.shape[1]
    if isinstance(module, Downsample):
        return torch.nn.functional.conv2d(module.pad(x), module.filt, stride=module.stride, groups=groups)
    out = torch.nn.functional.conv_transpose2d(
        module.pad(x), module.filt, stride=module.stride, padding=module.conv_padding, groups=groups
    )[:, :, 1:, 1:]
    return out[:, :, :-1, :-1] if module.crop_end else out


@pytest.mark.parametrize(
    "cls, kwargs",
    [(Downsample, {}), (Downsample, {"filt_size": 4}), (Downsample, {"filt_size": 5, "pad_type": "repl"}),
     (Downsample, {"pad_type": "zero"}), (Upsample, {}), (Upsample, {"filt_size": 3, "pad_type": "reflect"})],
)  # fmt: skip
def test_blur_resampling_matches_pytorch_and_saves_nothing_for_backward(cls, kwargs):
    """The fixed-filter blur saves no activation for its backward, and its gradients are exact (also the
    second-order ones: gradient penalties may differentiate through a discriminator's blur-pools)."""
    torch.manual_seed(0)
    module = cls(3, **kwargs).double()
    for shape in [(2, 3, 9, 12), (1, 3, 7, 7)]:
        x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        saved = []

        def pack(t, _saved=saved):
            _saved.append(t.shape)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = module(x)
        assert saved == [module.filt.shape]  # the 3 x 1 x k x k filter, no copy of the input
        ref = _plain_resampling(module, x)
        g = torch.randn_like(y)
        assert torch.equal(y, ref)
        torch.testing.assert_close(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(ref, x, g)[0])
    assert torch.autograd.gradgradcheck(module, (x,))
    # --no-lean_blur: PyTorch's convolution itself (it keeps the padded input), bit for bit.
    assert use_lean_blur(module, False) == 1 and not module.lean_backward
    y, ref = module(x), _plain_resampling(module, x)
    g = torch.randn_like(y)
    assert torch.equal(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(ref, x, g)[0])


def test_resampling_keeps_a_constant_image_constant():
    const = torch.full((1, 3, 8, 8), 0.7)
    up = Upsample(3)(Downsample(3)(const))
    assert up.shape == const.shape
    assert torch.allclose(up, const, atol=1e-6)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="resnet_9blocks"):
        build_generator("resnet_5blocks", 3, 3, 8, "instance", False, "normal", 0.02)
    with pytest.raises(ValueError, match="pixel"):
        build_discriminator("patch", 3, 8, 3, "instance", "normal", 0.02)
    with pytest.raises(ValueError, match="instance"):
        get_norm_layer("group")
    with pytest.raises(ValueError, match="orthogonal"):
        init_weights(nn.Conv2d(1, 1, 1), "uniform")
    with pytest.raises(ValueError, match="hinge"):
        GANLoss("wgan")


# ---------------------------------------------------------------- init


def test_init_weights_statistics():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(256, 256, 3), nn.BatchNorm2d(4096)
    net = init_weights(nn.Sequential(conv, bn), "normal", 0.02)
    assert abs(conv.weight.std().item() - 0.02) < 0.0002 and abs(conv.weight.mean().item()) < 0.0002
    assert torch.count_nonzero(conv.bias) == 0
    assert abs(bn.weight.mean().item() - 1.0) < 0.002 and abs(bn.weight.std().item() - 0.02) < 0.001
    assert torch.count_nonzero(bn.bias) == 0 and net is not None
    init_weights(conv, "xavier", 0.02)
    assert abs(conv.weight.std().item() - 0.02 * math.sqrt(2 / (2 * 256 * 9))) < 1e-5
    init_weights(conv, "kaiming", 0.02)  # official: the gain is ignored
    assert abs(conv.weight.std().item() - math.sqrt(2 / (256 * 9))) < 3e-4
    lin = init_weights(nn.Linear(64, 32), "orthogonal", 0.5)
    assert torch.allclose(lin.weight @ lin.weight.T, 0.25 * torch.eye(32), atol=1e-5)


def test_init_leaves_blur_filters_alone():
    g = build_generator(
        "resnet_9blocks", 3, 3, 8, "instance", False, "xavier", 0.02, antialias=True, antialias_up=True
    )
    assert torch.equal(g.model[7].filt, Downsample(16).filt)


# ---------------------------------------------------------------- GAN losses

PRED = torch.tensor([[-1.0, 0.0], [0.5, 2.0]])
SOFTPLUS_NEG = sum(math.log1p(math.exp(-v)) for v in (-1.0, 0.0, 0.5, 2.0)) / 4  # mean softplus(-x)
SOFTPLUS_POS = sum(math.log1p(math.exp(v)) for v in (-1.0, 0.0, 0.5, 2.0)) / 4


@pytest.mark.parametrize(
    ("mode", "real", "fake"),
    [
        ("lsgan", 1.5625, 1.3125),
        ("vanilla", SOFTPLUS_NEG, SOFTPLUS_POS),
        ("nonsaturating", SOFTPLUS_NEG, SOFTPLUS_POS),
        ("wgangp", -0.375, 0.375),
        ("hinge", 0.875, 1.375),
    ],
)
def test_gan_loss_closed_forms(mode, real, fake):
    crit = GANLoss(mode)
    assert crit(PRED, True).item() == pytest.approx(real, rel=1e-6)
    assert crit(PRED, False).item() == pytest.approx(fake, rel=1e-6)


def test_gan_loss_generator_side_and_labels():
    assert GANLoss("hinge")(PRED, True, for_discriminator=False).item() == pytest.approx(-0.375)
    assert GANLoss("lsgan")(PRED, True, for_discriminator=False).item() == pytest.approx(1.5625)
    with pytest.raises(ValueError):
        GANLoss("hinge")(PRED, False, for_discriminator=False)
    assert GANLoss("lsgan", target_real_label=0.9)(PRED, True).item() == pytest.approx(5.79 / 4, rel=1e-6)
    assert GANLoss("lsgan").state_dict() == {}
    half = GANLoss("lsgan")(PRED.double(), False)
    assert half.dtype == torch.float64 and half.item() == pytest.approx(1.3125)


def test_gradient_penalty_closed_form_and_gradient():
    conv = nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 2.0, 2.0]).view(1, 3, 1, 1))
    real, fake = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    # D is linear: the input gradient is w at each of the 4 pixels, norm sqrt(4 * 9) = 6 -> 10 * (6 - 1)^2.
    gp, grads = cal_gradient_penalty(conv, real, fake, "mixed")
    assert gp.item() == pytest.approx(250.0, rel=1e-6) and grads.shape == (2, 12)
    gp.backward()
    # d/dw of 10 (2|w| - 1)^2 = 40 (2|w| - 1) w / |w| = (200 / 3) w
    assert torch.allclose(conv.weight.grad.flatten(), torch.tensor([1.0, 2.0, 2.0]) * 200 / 3)
    assert not real.requires_grad


def test_gradient_penalty_of_a_patchgan_is_positive_and_differentiable():
    d = NLayerDiscriminator(ndf=4)
    gp, _ = cal_gradient_penalty(d, torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32), "real")
    assert gp.item() > 0
    gp.backward()
    assert d.model[0].weight.grad.abs().sum() > 0
    assert cal_gradient_penalty(d, torch.zeros(1), torch.zeros(1), lambda_gp=0.0)[1] is None


# ---------------------------------------------------------------- image pool


def test_image_pool_fills_then_swaps_like_the_official_rule():
    images = [torch.full((1, 1, 2, 2), float(i)) for i in range(80)]
    random.seed(7)
    pool = ImagePool(50)
    out = [pool.query(im) for im in images]
    assert all(torch.equal(o, im) for o, im in zip(out[:50], images[:50]))
    # Replay the rule with the same seed: u > 0.5 -> return a random stored image, store the new one there.
    random.seed(7)
    stored, expected = [float(i) for i in range(50)], []
    for i in range(50, 80):
        if random.uniform(0, 1) > 0.5:
            idx = random.randint(0, 49)
            expected.append(stored[idx])
            stored[idx] = float(i)
        else:
            expected.append(float(i))
    assert [o[0, 0, 0, 0].item() for o in out[50:]] == expected
    assert [t[0, 0, 0, 0].item() for t in pool.images] == stored


def test_image_pool_batches_per_image_and_zero_size():
    random.seed(0)
    pool = ImagePool(3)
    batch = torch.arange(4.0).view(4, 1, 1, 1)
    out = pool.query(batch)
    assert out.shape == (4, 1, 1, 1) and pool.num_imgs == 3
    assert out[:3].flatten().tolist() == [0.0, 1.0, 2.0]
    x = torch.randn(2, 3, 4, 4)
    assert ImagePool(0).query(x) is x


def test_image_pool_state_round_trip_reproduces_outputs():
    images = [torch.randn(1, 3, 4, 4, requires_grad=True) for _ in range(40)]
    random.seed(1)
    pool = ImagePool(10)
    for im in images[:15]:
        pool.query(im)
    state, rng_state = pool.state_dict(), random.getstate()
    assert len(state["images"]) == 10 and all(not t.requires_grad for t in state["images"])
    first = [pool.query(im) for im in images[15:]]
    resumed = ImagePool(10)
    resumed.load_state_dict(state)
    random.setstate(rng_state)
    second = [resumed.query(im) for im in images[15:]]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    with pytest.raises(ValueError):
        ImagePool(5).load_state_dict(state)
