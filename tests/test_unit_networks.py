"""UNIT networks and losses: official parameter counts, state_dict layout, shapes, init, weight sharing, losses.

Expected figures come from the official code (verified by instantiating the official mingyuliutw/UNIT classes).
"""

import math

import pytest
import torch
from torch import nn

from models.losses.unit import (
    PerceptualLoss,
    Vgg16,
    dis_loss,
    gen_adv_loss,
    kl_loss,
    load_vgg16,
    recon_loss,
    vgg_preprocess,
)
from models.networks.unit import (
    LayerNorm,
    MsImageDis,
    VAEGen,
    latent_shape,
    share_blocks,
    unique_parameters,
    upsample_conv5x5,
    weights_init,
)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- parameter counts


def test_default_counts():
    gen, dis = VAEGen(), MsImageDis()
    assert count(gen) == 11_140_483
    assert count(gen.enc) == 5_385_856
    assert count(gen.dec) == 5_754_627
    assert sum(p.numel() for n, p in gen.named_parameters() if n.endswith(("gamma", "beta"))) == 384
    assert count(dis) == 8_271_171
    assert [count(net) for net in dis.cnns] == [2_757_057] * 3
    assert 2 * count(gen) + 2 * count(dis) == 38_823_308


def test_small_counts():
    gen, dis = VAEGen(dim=8), MsImageDis(dim=8)
    assert (count(gen), count(gen.enc), count(gen.dec)) == (176_691, 85_456, 91_235)
    assert (count(dis), count(dis.cnns[0])) == (130_731, 43_577)
    assert count(VAEGen(dim=16, n_res=2)) == 405_347
    assert count(MsImageDis(dim=16)) == 519_507


# ---------------------------------------------------------------- official state_dict layout


def official_gen_keys(n_downsample: int = 2, n_res: int = 4) -> list[str]:
    """The official VAEGen key order, written out from the official module structure."""
    conv = ["conv.weight", "conv.bias"]
    keys = [f"enc.model.{i}.{k}" for i in range(n_downsample + 1) for k in conv]
    res = [f"model.{r}.model.{j}.{k}" for r in range(n_res) for j in range(2) for k in conv]
    keys += [f"enc.model.{n_downsample + 1}.{k}" for k in res]
    keys += [f"dec.model.0.{k}" for k in res]
    for u in range(n_downsample):
        keys += [f"dec.model.{2 + 2 * u}.{k}" for k in ["norm.gamma", "norm.beta", *conv]]
    keys += [f"dec.model.{2 * n_downsample + 1}.{k}" for k in conv]
    return keys


def official_dis_keys(num_scales: int = 3, n_layer: int = 4) -> list[str]:
    keys = []
    for s in range(num_scales):
        keys += [f"cnns.{s}.{i}.conv.{k}" for i in range(n_layer) for k in ("weight", "bias")]
        keys += [f"cnns.{s}.{n_layer}.{k}" for k in ("weight", "bias")]
    return keys


def test_state_dict_keys_and_order():
    gen, dis = VAEGen(), MsImageDis()
    # Order matters: an official optimizer.pt stores Adam state by parameter position.
    assert list(gen.state_dict()) == official_gen_keys()
    assert [n for n, _ in gen.named_parameters()] == official_gen_keys()
    assert list(dis.state_dict()) == official_dis_keys()
    assert len(gen.state_dict()) == 48 and len(dis.state_dict()) == 30
    sd = gen.state_dict()
    assert sd["enc.model.0.conv.weight"].shape == (64, 3, 7, 7)
    assert sd["enc.model.2.conv.weight"].shape == (256, 128, 4, 4)
    assert sd["dec.model.2.conv.weight"].shape == (128, 256, 5, 5)
    assert sd["dec.model.4.norm.gamma"].shape == (64,)
    assert sd["dec.model.5.conv.weight"].shape == (3, 64, 7, 7)
    dsd = dis.state_dict()
    assert dsd["cnns.2.3.conv.weight"].shape == (512, 256, 4, 4)
    assert dsd["cnns.1.4.weight"].shape == (1, 512, 1, 1)


def test_official_layout_loads_strict():
    src, dst = VAEGen(dim=8), VAEGen(dim=8)
    dst.load_state_dict({k: v.clone() for k, v in src.state_dict().items()}, strict=True)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(src.eval()(x)[0], dst.eval()(x)[0])


# ---------------------------------------------------------------- shapes and forward semantics


@pytest.mark.parametrize("size", [32, 64])
def test_generator_shapes(size):
    torch.manual_seed(0)
    gen = VAEGen(dim=8).eval()
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        h = gen.encode(x)
        y = gen.decode(h)
    assert h.shape == (2, 32, size // 4, size // 4)
    assert (h.shape[1:]) == latent_shape(size, size, dim=8)
    assert y.shape == x.shape
    assert y.abs().max() < 1


def test_latent_shape_rejects_indivisible():
    with pytest.raises(ValueError, match="divisible"):
        latent_shape(30, 32)


def test_discriminator_shapes():
    dis = MsImageDis(dim=8)
    outs = dis(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 1, 4, 4), (2, 1, 2, 2), (2, 1, 1, 1)]
    outs = MsImageDis(dim=8, num_scales=2)(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(2, 1, 2, 2), (2, 1, 1, 1)]
    # The default 3-scale, 4-layer D needs >= 64 px: the reflect pad of a 1-pixel map fails (as the official).
    with pytest.raises(RuntimeError):
        dis(torch.randn(1, 3, 32, 32))


def test_downsample_excludes_padding():
    pooled = MsImageDis(dim=8).downsample(torch.ones(1, 1, 8, 8))
    assert torch.equal(pooled, torch.ones(1, 1, 4, 4))


def test_forward_noise_semantics():
    torch.manual_seed(0)
    gen = VAEGen(dim=8)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        gen.eval()
        rec_eval, h_eval = gen(x)
        assert torch.equal(gen(x)[0], rec_eval)  # deterministic
        assert torch.equal(rec_eval, gen.decode(gen.encode(x)))
        gen.train()
        rec_zero, h = gen(x, noise=torch.zeros_like(h_eval))
        assert torch.equal(h, h_eval) and torch.equal(rec_zero, rec_eval)
        n = torch.randn_like(h)
        assert torch.equal(gen(x, noise=n)[0], gen.decode(h + n))
        assert not torch.allclose(gen(x)[0], rec_eval)  # a drawn sample differs from the mean


def test_invalid_choices_list_valid_ones():
    with pytest.raises(ValueError, match="reflect, replicate, zero"):
        VAEGen(pad_type="circular")
    with pytest.raises(ValueError, match="valid choices"):
        MsImageDis(norm="adain")
    with pytest.raises(ValueError, match="valid choices"):
        weights_init("uniform")


# ---------------------------------------------------------------- LayerNorm


def layer_norm_reference(x, gamma, beta, eps=1e-5):
    """Float64 reference: per sample over C*H*W, unbiased std, eps added to the std."""
    x = x.double()
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        xi = x[i]
        n = xi.numel()
        mean = xi.sum() / n
        std = math.sqrt(((xi - mean) ** 2).sum().item() / (n - 1))
        out[i] = (xi - mean) / (std + eps)
    return out * gamma.double().view(1, -1, 1, 1) + beta.double().view(1, -1, 1, 1)


@pytest.mark.parametrize("batch", [1, 3])
def test_layer_norm_matches_reference(batch):
    torch.manual_seed(0)
    ln = LayerNorm(6)
    with torch.no_grad():
        ln.beta.normal_()
    x = torch.randn(batch, 6, 5, 4) * 3 + 1
    ref = layer_norm_reference(x, ln.gamma, ln.beta)
    assert torch.allclose(ln(x).double(), ref, atol=1e-5, rtol=0)
    assert ln.gamma.min() >= 0 and ln.gamma.max() < 1  # official U(0, 1) init
    assert LayerNorm(6).beta.abs().sum() == 0


def test_layer_norm_is_not_groupnorm():
    # With 8 elements the unbiased std is sqrt(8/7) times the biased one: GroupNorm(1) must not match.
    torch.manual_seed(0)
    x = torch.randn(2, 2, 2, 2)
    ln = LayerNorm(2, affine=False)
    gn = nn.GroupNorm(1, 2, affine=False)
    assert not torch.allclose(ln(x), gn(x), atol=1e-2)
    assert torch.allclose(ln(x) * math.sqrt(8 / 7), gn(x), atol=1e-4)


# ---------------------------------------------------------------- init


def test_weights_init():
    torch.manual_seed(0)
    gen, dis = VAEGen(), MsImageDis()
    gamma_before = gen.dec.model[2].norm.gamma.detach().clone()
    gen.apply(weights_init("kaiming"))
    dis.apply(weights_init("gaussian"))
    w = gen.enc.model[3].model[0].model[0].conv.weight  # 256*256*9 weights, fan_in 2304
    assert abs(w.std().item() / math.sqrt(2 / 2304) - 1) < 0.01
    assert abs(w.mean().item()) < 1e-3
    assert all(m.conv.bias.abs().sum() == 0 for m in gen.modules() if hasattr(m, "conv"))
    assert torch.equal(gen.dec.model[2].norm.gamma.detach(), gamma_before)  # norms untouched
    d = dis.cnns[0][3].conv.weight
    assert abs(d.std().item() / 0.02 - 1) < 0.01
    assert dis.cnns[0][4].bias.abs().sum() == 0


# ---------------------------------------------------------------- weight sharing (paper / version_02)


def test_share_blocks_default_count_and_identity():
    gen_a, gen_b = VAEGen(), VAEGen()
    share_blocks(gen_a, gen_b, enc_blocks=1, dec_blocks=1)
    assert gen_a.enc.model[3].model[-1] is gen_b.enc.model[3].model[-1]
    assert gen_a.dec.model[0].model[0] is gen_b.dec.model[0].model[0]
    assert gen_a.enc.model[3].model[-2] is not gen_b.enc.model[3].model[-2]
    assert gen_a.dec.model[0].model[1] is not gen_b.dec.model[0].model[1]
    params = unique_parameters([gen_a, gen_b])
    assert sum(p.numel() for p in params) == 19_920_646
    assert len({id(p) for p in params}) == len(params) == 2 * 48 - 8
    # The official key layout stays: the shared tensors appear under both generators.
    assert list(gen_b.state_dict()) == official_gen_keys()
    key = "enc.model.3.model.3.model.0.conv.weight"
    assert gen_a.state_dict()[key].data_ptr() == gen_b.state_dict()[key].data_ptr()


def test_share_blocks_small_and_gradients():
    torch.manual_seed(0)
    gen_a, gen_b = VAEGen(dim=8), VAEGen(dim=8)
    share_blocks(gen_a, gen_b, enc_blocks=2, dec_blocks=3)
    assert sum(p.numel() for p in unique_parameters([gen_a, gen_b])) == 260_902  # 2*176,691 - 5*18,496
    shared = gen_a.enc.model[3].model[3].model[0].conv.weight
    x = torch.rand(1, 3, 32, 32)
    gen_b.decode(gen_b.encode(x)).mean().backward()
    assert shared.grad is not None and shared.grad.abs().sum() > 0  # b's loss reaches the shared block
    assert gen_a.enc.model[0].conv.weight.grad is None
    with pytest.raises(ValueError, match="at most 4"):
        share_blocks(gen_a, gen_b, enc_blocks=5)


# ---------------------------------------------------------------- losses


def test_kl_loss_official_formula():
    mu = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    assert kl_loss(mu).item() == 3.5625  # (1 + 4 + 9 + 0.25) / 4
    # = (2 / numel) * KL(N(mu, I) || N(0, I)), the full KL being 0.5 * sum(mu**2)
    h = torch.randn(2, 8, 4, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(kl_loss(h), 2 / h.numel() * 0.5 * (h**2).sum())


def test_recon_loss():
    assert recon_loss(torch.tensor([1.0, -1.0, 0.0, 2.0]), torch.zeros(4)).item() == 1.0


def test_gan_losses_closed_forms():
    zeros = [torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 1, 1)]
    assert dis_loss(zeros, zeros, "lsgan").item() == 3.0  # D outputs 0 at init -> loss ~ num_scales
    assert gen_adv_loss(zeros, "lsgan").item() == 3.0
    assert math.isclose(dis_loss(zeros, zeros, "nsgan").item(), 6 * math.log(2), rel_tol=1e-6)
    assert math.isclose(gen_adv_loss(zeros, "nsgan").item(), 3 * math.log(2), rel_tol=1e-6)
    fake = [torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 1, 1), -1.0)]
    real = [torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 1, 1), 1.0)]
    # scales are summed: (0.25 + 1) + (1 + 0)
    assert dis_loss(fake, real, "lsgan").item() == 2.25
    assert gen_adv_loss(fake, "lsgan").item() == 0.25 + 4.0
    with pytest.raises(ValueError, match="lsgan, nsgan"):
        gen_adv_loss(zeros, "hinge")


def test_vgg_missing_file_is_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--vgg_weights"):
        load_vgg16(str(tmp_path / "vgg16.weight"))


def test_vgg_official_format(tmp_path):
    torch.manual_seed(0)
    ref = Vgg16()
    assert count(ref) == 14_714_688
    torch.save(ref.state_dict(), tmp_path / "vgg16.weight")
    vgg, mode = load_vgg16(str(tmp_path / "vgg16.weight"))
    assert mode == "caffe" and not any(p.requires_grad for p in vgg.parameters())
    assert all(
        torch.equal(a, b) for a, b in zip(vgg.state_dict().values(), ref.state_dict().values(), strict=True)
    )
    # Official graph: no pool after conv4_3, so relu5_3 is at 1/8 resolution.
    assert vgg(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 4, 4)


def test_vgg_torchvision_format(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])  # torchvision's vgg16().features, indices as in its state_dict
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)  # ignored
    torch.save(state, tmp_path / "vgg16-tv.pth")
    vgg, mode = load_vgg16(str(tmp_path / "vgg16-tv.pth"))
    assert mode == "torchvision"
    x = torch.randn(1, 3, 32, 32)
    ref = x
    with torch.no_grad():
        for i, layer in enumerate(features[:30]):
            if i != 23:  # the official graph skips torchvision's 4th max-pool
                ref = layer(ref)
        assert torch.allclose(vgg(x), ref, atol=1e-6)
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="unrecognised"):
        load_vgg16(str(tmp_path / "bad.pth"))


def test_vgg_preprocess_caffe_exact():
    x = torch.stack([torch.ones(2, 2), torch.zeros(2, 2), -torch.ones(2, 2)]).unsqueeze(0)  # R=1, G=0, B=-1
    out = vgg_preprocess(x, "caffe")
    # BGR order, [0, 255], minus caffe means (103.939, 116.779, 123.680)
    expected = torch.tensor([0 - 103.939, 127.5 - 116.779, 255 - 123.680])
    assert torch.allclose(out[0, :, 0, 0], expected, atol=1e-4)
    tv = vgg_preprocess(torch.zeros(1, 3, 1, 1), "torchvision").flatten()
    assert torch.allclose(
        tv, torch.tensor([(0.5 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.5 - 0.406) / 0.225])
    )


def test_perceptual_loss():
    torch.manual_seed(0)
    vgg = Vgg16().requires_grad_(False)
    loss = PerceptualLoss(vgg, "caffe").train()
    assert not loss.vgg.training
    img, target = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    inorm = nn.InstanceNorm2d(512, affine=False)  # the official module
    with torch.no_grad():
        expected = torch.mean((inorm(vgg(vgg_preprocess(img))) - inorm(vgg(vgg_preprocess(target)))) ** 2)
        assert torch.allclose(loss(img, target), expected)
        assert loss(img, img).item() == 0.0


# ---------------------------------------------------------------- sub-pixel decoder upsampling (fast step)


def direct_upsample_conv(x, weight, bias, pad_type):
    mode = {"zero": "constant"}.get(pad_type, pad_type)
    up = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    return nn.functional.conv2d(nn.functional.pad(up, (2, 2, 2, 2), mode=mode), weight, bias)


@pytest.mark.parametrize("pad_type", ["reflect", "replicate", "zero"])
@pytest.mark.parametrize("size", [(5, 7), (2, 3), (1, 4)])
def test_upsample_conv5x5_equals_direct_form(pad_type, size):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, *size, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 4, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    if pad_type == "reflect" and min(size) < 2:  # the direct form fails there: so does the fallback
        with pytest.raises(RuntimeError):
            upsample_conv5x5(x, weight, bias, pad_type)
        return
    expected = direct_upsample_conv(x, weight, bias, pad_type)
    out = upsample_conv5x5(x, weight, bias, pad_type)
    assert out.shape == (2, 3, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    grad_out = torch.randn(out.shape, generator=g, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(out, (x, weight, bias), grad_out),
                    torch.autograd.grad(expected, (x, weight, bias), grad_out)):  # fmt: skip
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_subpixel_decoder_equals_official_decoder(monkeypatch):
    import models.networks.unit as unit_nets

    torch.manual_seed(0)
    gen = VAEGen(dim=8)
    h = torch.randn(2, 32, 6, 5)
    calls, subpixel = [], unit_nets.upsample_conv5x5
    monkeypatch.setattr(unit_nets, "upsample_conv5x5", lambda *a: calls.append(1) or subpixel(*a))
    expected = gen.decode(h)
    assert not calls
    gen.dec.use_fast_ops()
    out = gen.decode(h)
    assert calls  # another summation order ...
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)  # ... of the same maths


def full_size_saved(ln, x):
    """Distinct tensors of x's size that autograd stores for the backward pass of ln(x)."""
    ptrs = set()

    def pack(t):
        if t.numel() == x.numel():
            ptrs.add(t.data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        ln(x)
    return len(ptrs)


@pytest.mark.parametrize("batch", [1, 3])
def test_fused_layer_norm_equals_official(batch):
    torch.manual_seed(0)
    ln = LayerNorm(4).double()
    x = torch.randn(batch, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(batch, 4, 5, 6, dtype=torch.float64)
    expected = ln(x)
    expected_grads = torch.autograd.grad(expected, (x, ln.gamma, ln.beta), grad_out)
    assert full_size_saved(ln, x) == 3  # x (for std), x - mean, y
    ln.fused = True
    out = ln(x)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(out, (x, ln.gamma, ln.beta), grad_out), expected_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert full_size_saved(ln, x) == 1  # y only
