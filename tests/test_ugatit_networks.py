"""U-GAT-IT networks: official parameter counts and state_dict keys, shapes, norms, CAM and attention details.

Counts at 256 px are taken on the meta device (no memory, no forward); forward passes run at 96 px with ch=4.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.networks.adaptive_norms import ILN, AdaILN, RhoClipper
from models.networks.ugatit import Discriminator, ResnetGenerator
from models.networks.ugatit_blocks import ResnetAdaILNBlock


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def meta_count(cls, **kwargs) -> int:
    with torch.device("meta"):
        return n_params(cls(**kwargs))


# ---------------------------------------------------------------------------------------------------------
# parameter counts (as the official code)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (dict(light=1), 10_589_888),
        (dict(light=True, img_size=96), 10_589_888),
        (dict(light=0, img_size=256), 278_959_808),
        (dict(light=0, img_size=128), 77_633_216),
        (dict(light=0, img_size=96), 48_273_088),
        (dict(ngf=4, light=1), 42_668),
        (dict(ngf=4, light=0, img_size=96), 189_868),
    ],
)
def test_official_generator_counts(kwargs, expected):
    assert meta_count(ResnetGenerator, **kwargs) == expected


@pytest.mark.parametrize(
    ("ndf", "n_layers", "expected"),
    [(64, 7, 53_130_176), (64, 5, 3_290_560), (64, 6, 13_262_784), (4, 7, 210_236), (4, 5, 13_660)],
)
def test_official_discriminator_counts(ndf, n_layers, expected):
    assert meta_count(Discriminator, ndf=ndf, n_layers=n_layers) == expected


def test_official_whole_model_count():
    g = meta_count(ResnetGenerator, img_size=256)
    total = 2 * g + 2 * meta_count(Discriminator, n_layers=7) + 2 * meta_count(Discriminator, n_layers=5)
    assert total == 670_761_088


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (dict(light=0, img_size=256), 278_968_069),
        (dict(light=0, img_size=384), 614_512_389),
        (dict(light=32), 77_641_477),
        (dict(light=32, img_size=96), 77_641_477),
        (dict(light=1), 10_598_149),
        (dict(light=32, use_se=True), 77_908_237),
        (dict(light=32, attention_gan=2), 82_743_114),
        (dict(light=32, attention_gan=3, attention_input=True), 82_743_179),
        (dict(light=32, use_deconv=True), 77_641_477),
    ],
)
def test_enhanced_generator_counts(kwargs, expected):
    assert meta_count(ResnetGenerator, arch="enhanced", **kwargs) == expected


@pytest.mark.parametrize(
    ("n_layers", "expected"),
    [(7, 53_130_179), (6, 13_262_787), (5, 3_290_563), (4, 942_403), (3, 243_395)],
)
@pytest.mark.parametrize("sn", [True, False])
def test_enhanced_discriminator_counts(n_layers, expected, sn):
    assert meta_count(Discriminator, n_layers=n_layers, arch="enhanced", sn=sn) == expected


# ---------------------------------------------------------------------------------------------------------
# official state_dict keys (as the official code)


def official_generator_keys(n_blocks: int = 4, light: bool = True) -> set[str]:
    keys = {"DownBlock.1.weight", "DownBlock.5.weight", "DownBlock.9.weight"}
    for i in range(12, 12 + n_blocks):
        keys |= {f"DownBlock.{i}.conv_block.1.weight", f"DownBlock.{i}.conv_block.5.weight"}
    keys |= {"gap_fc.weight", "gmp_fc.weight", "conv1x1.weight", "conv1x1.bias"}
    keys |= {"FC.0.weight", "FC.2.weight", "gamma.weight", "beta.weight"}
    for i in range(1, n_blocks + 1):
        keys |= {f"UpBlock1_{i}.{p}" for p in ("conv1.weight", "conv2.weight", "norm1.rho", "norm2.rho")}
    keys |= {"UpBlock2.2.weight", "UpBlock2.7.weight", "UpBlock2.11.weight"}
    keys |= {f"UpBlock2.{i}.{p}" for i in (3, 8) for p in ("rho", "gamma", "beta")}
    return keys


def official_discriminator_keys(n_layers: int) -> set[str]:
    keys = set()
    for k in range(n_layers - 1):
        keys |= {f"model.{3 * k + 1}.{p}" for p in ("bias", "weight_orig", "weight_u", "weight_v")}
    for name in ("gap_fc", "gmp_fc", "conv"):
        keys |= {f"{name}.{p}" for p in ("weight_orig", "weight_u", "weight_v")}
    return keys | {"conv1x1.weight", "conv1x1.bias"}


@pytest.mark.parametrize("light", [1, 0])
def test_official_generator_keys_and_shapes(light):
    with torch.device("meta"):
        sd = ResnetGenerator(ngf=4, img_size=96, light=light).state_dict()
    assert set(sd) == official_generator_keys()
    assert sd["gap_fc.weight"].shape == (1, 16)
    assert sd["UpBlock1_1.norm1.rho"].shape == (1, 16, 1, 1)
    assert sd["UpBlock2.8.gamma"].shape == (1, 4, 1, 1)
    assert sd["FC.0.weight"].shape == ((16, 16) if light else (16, 24 * 24 * 16))
    assert sd["UpBlock2.11.weight"].shape == (3, 4, 7, 7)


@pytest.mark.parametrize("n_layers", [7, 5])
def test_official_discriminator_keys_and_shapes(n_layers):
    with torch.device("meta"):
        sd = Discriminator(ndf=4, n_layers=n_layers).state_dict()
    assert set(sd) == official_discriminator_keys(n_layers)
    c_d = 4 * 2 ** (n_layers - 2)
    last = 3 * (n_layers - 2) + 1  # the stride-1 conv: model.16 (global), model.10 (local)
    assert sd[f"model.{last}.weight_orig"].shape == (c_d, c_d // 2, 4, 4)
    assert sd[f"model.{last}.weight_u"].shape == (c_d,)
    assert sd[f"model.{last}.weight_v"].shape == (c_d // 2 * 16,)
    assert sd["gap_fc.weight_orig"].shape == (1, c_d)
    assert sd["conv.weight_v"].shape == (c_d * 16,)


def test_enhanced_keys():
    with torch.device("meta"):
        g = ResnetGenerator(ngf=4, light=2, arch="enhanced", use_se=True, attention_gan=2).state_dict()
        d = Discriminator(ndf=4, n_layers=4, arch="enhanced").state_dict()
        d_nosn = Discriminator(ndf=4, n_layers=5, arch="enhanced", sn=False).state_dict()
        deconv = ResnetGenerator(ngf=4, light=1, arch="enhanced", use_deconv=True).state_dict()
    extra = set(g) - official_generator_keys()
    assert {"DownBlock.2.weight", "DownBlock.10.bias", "DownBlock.12.conv_block.6.weight"} <= extra
    assert {"gap_fc.bias", "FC.0.bias", "gamma.bias", "UpBlock1_4.conv2.bias", "UpBlock2.11.bias"} <= extra
    assert {"DownBlock.15.conv_block.7.cSE.se.1.weight", "DownBlock.15.conv_block.7.sSE.conv.bias"} <= extra
    assert {"UpBlock1_2.se.cSE.se.3.bias", "UpBlock_attention.3.conv_block.1.weight"} <= extra
    assert g["FC.0.weight"].shape == (16, 2 * 2 * 16)
    assert g["UpBlock2.11.weight"].shape == (6, 4, 7, 7)  # 3·k output channels
    assert g["UpBlock_attention.14.weight"].shape == (2, 4, 1, 1)  # 4 res blocks + 2×5 up layers, then 1×1
    assert g["DownBlock.12.conv_block.7.cSE.se.1.weight"].shape == (8, 16, 1, 1)  # max(16/4, 8) hidden
    assert {"model.7.weight_orig", "gap_fc.bias", "conv.bias"} <= set(d)  # 3×3 extra conv at model.7
    assert d["model.7.weight_orig"].shape == (8, 8, 3, 3)
    assert "model.1.weight" in d_nosn and not any(k.endswith("_u") for k in d_nosn)
    assert deconv["UpBlock2.0.weight"].shape == (16, 8, 3, 3) and "UpBlock2.7.weight" in deconv


def test_official_state_dict_loads_strictly():
    """A state_dict saved by one instance loads into a fresh one (what official checkpoint import relies on)."""
    torch.manual_seed(0)
    src = Discriminator(ndf=4, n_layers=5)
    src(torch.rand(1, 3, 64, 64))  # advance the power iteration so u, v differ from a fresh init
    dst = Discriminator(ndf=4, n_layers=5)
    assert not dst.load_state_dict(src.state_dict(), strict=True).missing_keys
    assert torch.equal(dst.model[1].weight_u, src.model[1].weight_u)


# ---------------------------------------------------------------------------------------------------------
# shapes and size checks (as the official code)


@pytest.fixture(scope="module")
def x96():
    torch.manual_seed(0)
    return torch.rand(2, 3, 96, 96) * 2 - 1


@pytest.mark.parametrize("light", [1, 0])
def test_generator_shapes(x96, light):
    torch.manual_seed(0)
    out, cam, heat = ResnetGenerator(ngf=4, img_size=96, light=light)(x96)
    assert out.shape == (2, 3, 96, 96) and cam.shape == (2, 2) and heat.shape == (2, 1, 24, 24)
    assert out.abs().max() <= 1


def test_discriminator_shapes(x96):
    logit, cam, heat = Discriminator(ndf=4, n_layers=7)(x96)
    assert logit.shape == (2, 1, 1, 1) and cam.shape == (2, 2) and heat.shape == (2, 1, 2, 2)
    logit, cam, heat = Discriminator(ndf=4, n_layers=5)(x96)
    assert logit.shape == (2, 1, 10, 10) and cam.shape == (2, 2) and heat.shape == (2, 1, 11, 11)
    assert Discriminator(ndf=4, n_layers=7).min_input_size == 96
    assert Discriminator(ndf=4, n_layers=5).min_input_size == 24


def test_size_errors():
    with pytest.raises(ValueError, match="at least 96x96"):
        Discriminator(ndf=4, n_layers=7)(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="built for 96x96"):
        ResnetGenerator(ngf=4, img_size=96, light=0)(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="divisible by 4"):
        ResnetGenerator(ngf=4, light=1)(torch.zeros(1, 3, 34, 34))
    with pytest.raises(ValueError, match="attention_gan >= 2"):
        ResnetGenerator(ngf=4, attention_gan=1, attention_input=True)
    with pytest.raises(ValueError, match="valid: official, enhanced"):
        ResnetGenerator(arch="tf")


def test_light_generator_accepts_other_sizes():
    out, _, heat = ResnetGenerator(ngf=4, light=1, img_size=96)(torch.zeros(1, 3, 32, 48))
    assert out.shape == (1, 3, 32, 48) and heat.shape == (1, 1, 8, 12)


# ---------------------------------------------------------------------------------------------------------
# ILN / AdaILN against a float64 hand-written formula


def reference_iln(x, rho, gamma, beta, eps=1e-5, unbiased=True):
    """Loops over samples and channels; variance = Σ(x − μ)² / (n − 1) (official) or / n."""
    x = x.double()
    b, c, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(b):
        flat = x[i].reshape(-1).tolist()
        n_ln = len(flat)
        mu_ln = sum(flat) / n_ln
        var_ln = sum((v - mu_ln) ** 2 for v in flat) / (n_ln - 1 if unbiased else n_ln)
        for j in range(c):
            ch = x[i, j].reshape(-1).tolist()
            n_in = len(ch)
            mu_in = sum(ch) / n_in
            var_in = sum((v - mu_in) ** 2 for v in ch) / (n_in - 1 if unbiased else n_in)
            r = float(rho[j])
            x_in = (x[i, j] - mu_in) / math.sqrt(var_in + eps)
            x_ln = (x[i, j] - mu_ln) / math.sqrt(var_ln + eps)
            out[i, j] = (r * x_in + (1 - r) * x_ln) * float(gamma[i, j]) + float(beta[i, j])
    return out


@pytest.mark.parametrize("unbiased", [True, False])
def test_adailn_matches_reference(unbiased):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64) * 3 + 1
    gamma, beta = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    norm = AdaILN(3, unbiased_var=unbiased).double()
    with torch.no_grad():
        norm.rho.copy_(torch.tensor([0.9, 0.3, 0.0], dtype=torch.float64).view(1, 3, 1, 1))
    expected = reference_iln(x, [0.9, 0.3, 0.0], gamma, beta, unbiased=unbiased)
    torch.testing.assert_close(norm(x, gamma, beta), expected, rtol=1e-12, atol=1e-12)
    # float32 agrees with the float64 formula to float32 precision
    out32 = norm.float()(x.float(), gamma.float(), beta.float())
    torch.testing.assert_close(out32.double(), expected, rtol=1e-5, atol=1e-5)


def test_unbiased_and_biased_differ():
    x = torch.randn(1, 2, 3, 3)
    gb = (torch.ones(1, 2), torch.zeros(1, 2))
    assert not torch.allclose(AdaILN(2)(x, *gb), AdaILN(2, unbiased_var=False)(x, *gb))


def test_iln_matches_reference_and_init():
    torch.manual_seed(2)
    norm = ILN(4).double()
    assert norm.rho.flatten().tolist() == [0.0] * 4 and norm.gamma.flatten().tolist() == [1.0] * 4
    assert AdaILN(4).rho.flatten().tolist() == pytest.approx([0.9] * 4)
    with torch.no_grad():
        norm.rho.uniform_(0, 1)
        norm.gamma.normal_()
        norm.beta.normal_()
    x = torch.randn(2, 4, 3, 6, dtype=torch.float64)
    gamma = norm.gamma.detach().view(1, 4).expand(2, 4)
    beta = norm.beta.detach().view(1, 4).expand(2, 4)
    expected = reference_iln(x, norm.rho.flatten().tolist(), gamma, beta)
    torch.testing.assert_close(norm(x), expected, rtol=1e-12, atol=1e-12)


def test_norms_bit_identical_to_official_formula():
    """float32: same reductions as the official ``torch.var(x, dim=[2, 3])`` code, so equal, not just close."""
    torch.manual_seed(3)
    x = torch.randn(2, 8, 12, 12)
    gamma, beta = torch.randn(2, 8), torch.randn(2, 8)
    norm = AdaILN(8)
    rho = norm.rho.expand(2, -1, -1, -1)
    out_in = (x - x.mean(dim=[2, 3], keepdim=True)) / torch.sqrt(x.var(dim=[2, 3], keepdim=True) + 1e-5)
    out_ln = (x - x.mean(dim=[1, 2, 3], keepdim=True)) / torch.sqrt(x.var(dim=[1, 2, 3], keepdim=True) + 1e-5)
    expected = (rho * out_in + (1 - rho) * out_ln) * gamma.unsqueeze(2).unsqueeze(3) + beta.unsqueeze(
        2
    ).unsqueeze(3)
    assert torch.equal(norm(x, gamma, beta), expected)


def test_rho_clipper():
    block = ResnetAdaILNBlock(4)
    iln = ILN(4)
    with torch.no_grad():
        for rho in (block.norm1.rho, block.norm2.rho, iln.rho):
            rho.copy_(torch.tensor([-0.5, 0.5, 0.95, 2.0]).view(1, 4, 1, 1))
    official = RhoClipper(0, 1)
    block.apply(official)
    iln.apply(official)
    assert block.norm1.rho.flatten().tolist() == [0.0, 0.5, 0.949999988079071, 1.0]
    assert iln.rho.flatten().tolist() == [0.0, 0.5, 0.949999988079071, 1.0]
    fork = RhoClipper(0.0, 1.0, adaptive_max=0.9)  # fork: AdaLIN ρ ≤ 0.9, LIN ρ ≤ 1
    block.apply(fork)
    iln.apply(fork)
    assert block.norm2.rho.flatten().tolist() == pytest.approx([0.0, 0.5, 0.9, 0.9])
    assert iln.rho.flatten().tolist() == [0.0, 0.5, 0.949999988079071, 1.0]


# ---------------------------------------------------------------------------------------------------------
# CAM, γ/β MLP input, spectral norm


def capture(module: torch.nn.Module, pre: bool = False):
    store = {}
    if pre:
        module.register_forward_pre_hook(lambda m, inp: store.__setitem__("x", inp[0].clone()))
    else:
        module.register_forward_hook(lambda m, inp, out: store.__setitem__("x", out.clone()))
    return store


@pytest.mark.parametrize("arch", ["official", "enhanced"])
@pytest.mark.parametrize("light", [0, 1, 3])
def test_generator_cam_and_mlp_input(arch, light):
    """CAM features are x·w (official) or x·(w + b) (fork); the γ/β MLP sees the C-H-W flatten or the k×k pool."""
    torch.manual_seed(4)
    g = ResnetGenerator(ngf=4, img_size=32, light=light, n_blocks=1, arch=arch)
    enc, cam_in, fc_in = capture(g.DownBlock), capture(g.conv1x1, pre=True), capture(g.FC, pre=True)
    cam_out = capture(g.conv1x1)
    _, cam_logit, heat = g(torch.rand(2, 3, 32, 32))
    x = enc["x"]
    w_gap = g.gap_fc.weight + (g.gap_fc.bias if arch == "enhanced" else 0)
    w_gmp = g.gmp_fc.weight + (g.gmp_fc.bias if arch == "enhanced" else 0)
    torch.testing.assert_close(
        cam_in["x"], torch.cat([x * w_gap[..., None, None], x * w_gmp[..., None, None]], 1)
    )
    torch.testing.assert_close(cam_logit, torch.cat([g.gap_fc(x.mean((2, 3))), g.gmp_fc(x.amax((2, 3)))], 1))
    feat = torch.relu(cam_out["x"])
    torch.testing.assert_close(heat, feat.sum(1, keepdim=True))
    expected_fc_in = F.adaptive_avg_pool2d(feat, light).reshape(2, -1) if light else feat.reshape(2, -1)
    torch.testing.assert_close(fc_in["x"], expected_fc_in)


@pytest.mark.parametrize("cam_weight", ["raw", "sn"])
def test_discriminator_cam_weight_quirk(cam_weight):
    """Official: logits use the spectral-normalised weight, the feature scaling uses the raw ``weight_orig``."""
    torch.manual_seed(5)
    d = Discriminator(ndf=4, n_layers=5, cam_weight=cam_weight).eval()
    with torch.no_grad():
        d.gap_fc.weight_orig.mul_(7.0)  # σ ≠ 1, so raw and normalised weights differ visibly
    trunk, cam_in = capture(d.model), capture(d.conv1x1, pre=True)
    _, cam_logit, _ = d(torch.rand(2, 3, 32, 32))
    x = trunk["x"]
    w_sn = d.gap_fc.weight  # normalised (eval: no power iteration)
    w = d.gap_fc.weight_orig if cam_weight == "raw" else w_sn
    torch.testing.assert_close(cam_in["x"][:, :32], x * w[..., None, None])
    torch.testing.assert_close(cam_logit[:, 0], (x.mean((2, 3)) @ w_sn.t()).squeeze(1))
    assert not torch.allclose(d.gap_fc.weight_orig, w_sn)


def test_discriminator_without_cam_attention():
    torch.manual_seed(6)
    d = Discriminator(ndf=4, n_layers=5, arch="enhanced", cam_attention=False)
    trunk, cam_in = capture(d.model), capture(d.conv1x1, pre=True)
    d(torch.rand(1, 3, 32, 32))
    assert torch.equal(cam_in["x"], torch.cat([trunk["x"], trunk["x"]], 1))


def test_spectral_norm_legacy_power_iteration():
    """One iteration per training forward: v ← N(Wᵀu), u ← N(Wv); none in eval mode."""
    torch.manual_seed(7)
    d = Discriminator(ndf=4, n_layers=5)
    conv = d.model[1]
    w = conv.weight_orig.detach().reshape(conv.weight_orig.shape[0], -1)
    u0 = conv.weight_u.clone()
    v = F.normalize(w.t() @ u0, dim=0, eps=1e-12)
    u = F.normalize(w @ v, dim=0, eps=1e-12)
    x = torch.rand(1, 3, 32, 32)
    d.eval()(x)
    assert torch.equal(conv.weight_u, u0)
    d.train()(x)
    torch.testing.assert_close(conv.weight_u, u, rtol=0, atol=1e-7)
    torch.testing.assert_close(conv.weight_v, v, rtol=0, atol=1e-7)
    torch.testing.assert_close(conv.weight, conv.weight_orig / (u @ w @ v), rtol=1e-6, atol=0)


def test_discriminator_cam_input_and_mask():
    """Fork seg options: logits from the masked pass / masked features; scaling still on the plain features."""
    torch.manual_seed(8)
    d = Discriminator(ndf=4, n_layers=5, arch="enhanced", sn=False)
    x, mask = torch.rand(1, 3, 32, 32), (torch.rand(1, 1, 32, 32) > 0.5).float()
    _, cam_plain, _ = d(x)
    _, cam_input, _ = d(x, cam_input=x * mask)
    feat = d.model(x * mask)
    torch.testing.assert_close(cam_input[:, 0], d.gap_fc(feat.mean((2, 3)))[:, 0])
    _, cam_masked, _ = d(x, mask=mask)
    masked = F.interpolate(mask, size=feat.shape[2:], mode="area") * d.model(x)
    torch.testing.assert_close(cam_masked[:, 1], d.gmp_fc(masked.amax((2, 3)))[:, 0])
    assert not torch.allclose(cam_plain, cam_masked)


# ---------------------------------------------------------------------------------------------------------
# AttentionGAN branch (fork)


def force_mask(g: ResnetGenerator, index: int) -> None:
    """Make the softmax pick candidate ``index`` everywhere."""
    last = g.UpBlock_attention[-2]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-50.0)
        last.bias[index] = 50.0


def test_attention_masks_sum_to_one():
    torch.manual_seed(9)
    x = torch.rand(2, 3, 32, 32)
    g = ResnetGenerator(ngf=4, n_blocks=2, light=2, arch="enhanced", attention_gan=3)
    out, _, _, att = g(x, return_attention=True)
    assert att.shape == (2, 3, 32, 32) and out.shape == (2, 3, 32, 32)
    torch.testing.assert_close(att.sum(1), torch.ones(2, 32, 32))
    assert len(g(x)) == 3
    assert ResnetGenerator(ngf=4, n_blocks=1, light=1)(x, return_attention=True)[3] is None


def test_attention_input_is_candidate_zero_per_channel():
    torch.manual_seed(10)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    g = ResnetGenerator(ngf=4, light=1, n_blocks=1, arch="enhanced", attention_gan=2, attention_input=True)
    force_mask(g, 0)
    torch.testing.assert_close(g(x)[0], x)
    force_mask(g, 1)
    generated = g.UpBlock2(g.UpBlock1_1(*_decoder_inputs(g, x)))
    torch.testing.assert_close(g(x)[0], generated)


def test_attention_input_legacy_mixes_channels():
    """Fork bug E3: the input is concatenated before the (B, 3, k, H, W) view, so with k = 2 colour 0 blends
    input R and G and colour 1 blends input B with a generated channel."""
    torch.manual_seed(11)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    kwargs = dict(ngf=4, light=1, n_blocks=1, arch="enhanced", attention_gan=2, attention_input=True)
    g = ResnetGenerator(attention_input_legacy=True, **kwargs)
    force_mask(g, 0)
    out = g(x)[0]
    torch.testing.assert_close(out[:, 0], x[:, 0])
    torch.testing.assert_close(out[:, 1], x[:, 2])
    force_mask(g, 1)
    torch.testing.assert_close(g(x)[0][:, 0], x[:, 1])


def _decoder_inputs(g: ResnetGenerator, x: torch.Tensor):
    feats = capture(g.conv1x1)
    gb = {}
    g.gamma.register_forward_hook(lambda m, i, o: gb.__setitem__("gamma", o))
    g.beta.register_forward_hook(lambda m, i, o: gb.__setitem__("beta", o))
    g(x)
    return torch.relu(feats["x"]), gb["gamma"], gb["beta"]


def test_use_se_and_deconv_forward():
    torch.manual_seed(12)
    g = ResnetGenerator(ngf=4, n_blocks=2, light=1, arch="enhanced", use_se=True, use_deconv=True)
    out, cam, heat = g(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 3, 32, 32) and heat.shape == (2, 1, 8, 8)
    assert isinstance(g.UpBlock2[0], torch.nn.ConvTranspose2d)


# ---------------------------------------------------------------------------------------------------------
# speed paths: fused ILN/AdaILN and output-scaled spectral norm against the official op sequences


def _grads(out: torch.Tensor, inputs: list[torch.Tensor], seed: int = 0) -> list[torch.Tensor]:
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return list(torch.autograd.grad(out, inputs, g))


@pytest.mark.parametrize("unbiased", [True, False])
def test_fused_adailn_and_iln_match_official_ops(unbiased, monkeypatch):
    import models.networks.adaptive_norms as norms

    fused_calls, fused_op = [], norms.fused_instance_layer_norm
    monkeypatch.setattr(norms, "fused_instance_layer_norm", lambda *a: fused_calls.append(1) or fused_op(*a))
    torch.manual_seed(11)
    x = (torch.randn(2, 8, 12, 10) * 2 + 0.5).requires_grad_()
    gamma, beta = torch.randn(2, 8, requires_grad=True), torch.randn(2, 8, requires_grad=True)
    ref, fused = AdaILN(8, unbiased_var=unbiased), AdaILN(8, unbiased_var=unbiased, fused=True)
    iln_ref, iln_fused = ILN(8, unbiased_var=unbiased), ILN(8, unbiased_var=unbiased, fused=True)
    with torch.no_grad():
        for m in (ref, fused, iln_ref, iln_fused):
            m.rho.copy_(torch.linspace(0, 1, 8).view(1, 8, 1, 1))
        for m in (iln_ref, iln_fused):
            m.gamma.copy_(gamma[:1, :, None, None])
            m.beta.copy_(beta[:1, :, None, None])
    for a, b, extra in ((ref, fused, [gamma, beta]), (iln_ref, iln_fused, [])):
        out_a = a(x, gamma, beta) if extra else a(x)
        out_b = b(x, gamma, beta) if extra else b(x)
        assert len(fused_calls) == 1 and fused_calls.pop()  # b ran the fused op (a did not)
        torch.testing.assert_close(out_b, out_a, rtol=1e-5, atol=1e-5)
        params = [x, b.rho, *extra, *([b.gamma, b.beta] if not extra else [])]
        params_a = [x, a.rho, *extra, *([a.gamma, a.beta] if not extra else [])]
        for ga, gb in zip(_grads(out_a, params_a), _grads(out_b, params)):
            torch.testing.assert_close(gb, ga, rtol=1e-4, atol=1e-4)


def test_fused_norm_matches_float64_reference():
    torch.manual_seed(12)
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64) * 3 + 1
    gamma, beta = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    norm = AdaILN(3, fused=True).double()
    with torch.no_grad():
        norm.rho.copy_(torch.tensor([0.9, 0.3, 0.0], dtype=torch.float64).view(1, 3, 1, 1))
    expected = reference_iln(x, [0.9, 0.3, 0.0], gamma, beta)
    torch.testing.assert_close(norm(x, gamma, beta), expected, rtol=1e-10, atol=1e-10)


def test_fused_norm_generator_matches_official_and_is_per_sample():
    torch.manual_seed(13)
    g = ResnetGenerator(ngf=4, n_blocks=2, img_size=32, light=1)
    fused = ResnetGenerator(ngf=4, n_blocks=2, img_size=32, light=1, fused_norm=True)
    fused.load_state_dict(g.state_dict())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for a, b in zip(g(x), fused(x)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    # a batch of two equals the two samples run alone: the norms never mix samples
    for a, b in zip(fused(x), (torch.cat(t) for t in zip(fused(x[:1]), fused(x[1:])))):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _d_pair(n_layers: int, cam_weight: str = "raw"):
    torch.manual_seed(14)
    ref = Discriminator(ndf=4, n_layers=n_layers, cam_weight=cam_weight)
    fused = Discriminator(ndf=4, n_layers=n_layers, cam_weight=cam_weight, fused_sn=True)
    fused.load_state_dict(ref.state_dict())
    return ref, fused


def _d_loss(outs) -> torch.Tensor:
    return sum((o - 1).square().mean() for out in outs for o in out[:2])


@pytest.mark.parametrize("n_layers,cam_weight", [(7, "raw"), (5, "raw"), (5, "sn")])
def test_fused_sn_groups_equal_separate_official_calls(n_layers, cam_weight):
    """D(cat([real, fake]), sn_groups=2) = official D(real) then D(fake): outputs, grads, u and v."""
    ref, fused = _d_pair(n_layers, cam_weight)
    real, fake = torch.rand(1, 3, 96, 96), torch.rand(1, 3, 96, 96)
    out_real, out_fake = ref(real), ref(fake)
    _d_loss([out_real, out_fake]).backward()
    out = fused(torch.cat([real, fake]), sn_groups=2)
    halves = [[t[:1] for t in out], [t[1:] for t in out]]
    _d_loss(halves).backward()
    for a, b in zip([*out_real, *out_fake], [*halves[0], *halves[1]]):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(ref.named_parameters(), fused.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
    for (name, a), b in zip(ref.named_buffers(), fused.buffers()):
        assert torch.equal(a, b), name  # two power iterations, bit for bit
    # (The fused call is other ops than the reference's, whose D refuses sn_groups: see the next test. Its
    # outputs may or may not round alike, depending on the CPU's kernels: nothing is asserted about that.)


def test_fused_sn_frozen_and_eval_calls():
    ref, fused = _d_pair(5)
    for d in (ref, fused):
        d.requires_grad_(False)
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    (grad_ref,) = torch.autograd.grad(_d_loss([ref(x)]), x)
    (grad_fused,) = torch.autograd.grad(_d_loss([fused(x)]), x)
    torch.testing.assert_close(grad_fused, grad_ref, rtol=1e-4, atol=1e-7)
    ref.eval(), fused.eval()
    u = fused.model[1].weight_u.clone()
    for a, b in zip(ref(x), fused(x)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    assert torch.equal(fused.model[1].weight_u, u)  # no power iteration in eval mode
    with pytest.raises(ValueError, match="sn_groups"):
        ref(torch.cat([x, x]), sn_groups=2)
    with pytest.raises(ValueError, match="sn_groups"):
        fused(torch.cat([x, x, x]), sn_groups=2)
