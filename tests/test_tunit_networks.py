"""TUNIT networks, losses and clustering metrics: official sizes and keys, shapes, closed forms."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.losses.contrastive import (
    MoCoQueue,
    hinge_adv_loss,
    iic_loss,
    joint_distribution,
    moco_loss,
    r1_penalty,
)
from models.networks.tunit import (
    FRN,
    ActFirstResBlk,
    AdaIN2d,
    Discriminator,
    Generator,
    GuidingNet,
    assign_adain_params,
    num_adain_params,
)
from util.metrics.cluster import (
    cluster_accuracy,
    cluster_sizes,
    confusion_counts,
    evaluate_clustering,
    hungarian_match,
    normalized_mutual_info,
)

TINY_C_WIDTHS = [4, "M", 8, "M", 16, 16, "M", 32, 32, "M", 32, 32, "M"]


@pytest.fixture
def meta_device(monkeypatch):
    """Build full-size networks on the meta device: no memory and no random init.

    Random init on meta tensors goes through torch's reference implementations, whose first use imports
    torch._dynamo (seconds); the values are irrelevant for counting, so the two random initialisers are
    replaced by no-ops here.
    """
    monkeypatch.setattr(torch.nn.init, "kaiming_normal_", lambda tensor, *args, **kwargs: tensor)
    monkeypatch.setattr(torch.nn.init, "normal_", lambda tensor, *args, **kwargs: tensor)
    with torch.device("meta"):
        yield


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_nets(img_size: int = 32, k: int = 4, sty_dim: int = 16):
    """The reference bundle's fast-test configuration."""
    g = Generator(img_size, sty_dim, nf=8, nf_mlp=32)
    d = Discriminator(img_size, k, max_conv_dim=32, dim_in=8)
    c = GuidingNet(sty_dim, k, widths=TINY_C_WIDTHS)
    return g, d, c


# --------------------------------------------------------------------------------------------------------
# Sizes and official keys (built on the meta device: no memory, no init cost)
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "img_size,k,g_count,d_count,c_count",
    [
        (128, 10, 27_333_763, 70_935_242, 9_296_778),
        (256, 10, 27_424_835, 70_983_018, 9_296_778),
        (64, 10, 7_143_299, 33_170_122, 9_296_778),
        (32, 10, 1_930_499, 8_252_106, 9_296_778),
        (128, 2, 27_333_763, 70_927_042, 9_292_674),
        (32, 4, 1_930_499, 8_249_028, 9_293_700),
    ],
)
def test_official_parameter_counts(img_size, k, g_count, d_count, c_count, meta_device):
    g, d, c = Generator(img_size, 128), Discriminator(img_size, k), GuidingNet(128, k)
    assert (n_params(g), n_params(d), n_params(c)) == (g_count, d_count, c_count)


def test_generator_parts_and_adain_size_at_128(meta_device):
    g = Generator(128, 128)
    assert (n_params(g.cnt_encoder), n_params(g.decoder), n_params(g.mlp)) == (
        12_202_112,
        13_749_891,
        1_381_760,
    )
    assert num_adain_params(g.decoder) == 4992
    assert g.mlp.model[2].fc.weight.shape == (4992, 256)
    assert g.nf == 64 and g.n_downs == 3
    assert Generator(256, 128).nf == 32


def test_fast_test_config_counts():
    g, d, c = tiny_nets()
    assert (n_params(g), n_params(d), n_params(c)) == (32_547, 69_596, 37_284)


def test_official_state_dict_keys_at_128(meta_device):
    g, d, c = Generator(128, 128), Discriminator(128, 10), GuidingNet(128, 10)
    g_keys, d_keys, c_keys = g.state_dict().keys(), d.state_dict().keys(), c.state_dict().keys()
    assert (len(g_keys), len(d_keys), len(c_keys)) == (52, 110, 60)

    expected_g = {f"cnt_encoder.model.{i}.conv.{p}" for i in range(4) for p in ("weight", "bias")}
    expected_g |= {
        f"cnt_encoder.model.4.model.{b}.model.{j}.conv.{p}"
        for b in (0, 1)
        for j in (0, 1)
        for p in ("weight", "bias")
    }
    dec_res = [f"decoder.model.0.model.{b}.model.{j}" for b in (0, 1) for j in (0, 1)]
    dec_up = [f"decoder.model.{i}" for i in (2, 4, 6)]
    for prefix in dec_res + dec_up:
        expected_g |= {f"{prefix}.conv.weight", f"{prefix}.conv.bias"}
        expected_g |= {f"{prefix}.norm.running_mean", f"{prefix}.norm.running_var"}
    expected_g |= {"decoder.model.7.conv.weight", "decoder.model.7.conv.bias"}
    expected_g |= {f"mlp.model.{i}.fc.{p}" for i in range(3) for p in ("weight", "bias")}
    assert set(g_keys) == expected_g

    expected_d = {
        "main.0.weight",
        "main.0.bias",
        "main.12.weight",
        "main.12.bias",
        "main.14.weight",
        "main.14.bias",
    }
    for i in range(1, 11):
        expected_d |= {f"main.{i}.{n}.{p}" for n in ("norm1", "norm2") for p in ("tau", "gamma", "beta")}
        expected_d |= {f"main.{i}.{n}.{p}" for n in ("conv1", "conv2") for p in ("weight", "bias")}
    # 1x1 shortcuts on the even (downsampling) blocks while the width grows: 64->128->256->512->1024.
    expected_d |= {f"main.{i}.conv1x1.weight" for i in (2, 4, 6, 8)}
    assert set(d_keys) == expected_d
    assert d.state_dict()["main.14.weight"].shape == (10, 1024, 1, 1)

    expected_c = {f"features.{i}.{p}" for i in (0, 4, 8, 11, 15, 18, 22, 25) for p in ("weight", "bias")}
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    expected_c |= {f"features.{i}.{p}" for i in (1, 5, 9, 12, 16, 19, 23, 26) for p in bn}
    expected_c |= {f"{h}.{p}" for h in ("disc", "cont") for p in ("weight", "bias")}
    assert set(c_keys) == expected_c


def test_strict_round_trip_of_state_dicts():
    torch.manual_seed(0)
    src = tiny_nets()
    torch.manual_seed(1)
    dst = tiny_nets()
    for a, b in zip(src, dst):
        b.load_state_dict(a.state_dict(), strict=True)
        assert all(torch.equal(a.state_dict()[key], v) for key, v in b.state_dict().items())


def test_invalid_sizes_fail_early():
    with pytest.raises(ValueError):
        Generator(16, 8)
    with pytest.raises(ValueError):
        Discriminator(96, 2)


# --------------------------------------------------------------------------------------------------------
# Shapes and behaviour
# --------------------------------------------------------------------------------------------------------
def test_shapes_tiny():
    torch.manual_seed(0)
    g, d, c = tiny_nets()
    x, s, y = torch.randn(3, 3, 32, 32), torch.randn(3, 16), torch.tensor([0, 3, 1])
    cnt = g.cnt_encoder(x)
    assert cnt.shape == (3, 16, 16, 16)  # nf * 2**n_downs channels, 16x16 content code
    assert g.mlp(s).shape == (3, num_adain_params(g.decoder))
    out = g(x, s)
    assert out.shape == (3, 3, 32, 32) and out.abs().max() <= 1.0
    logit, feat = d(x, y)
    assert logit.shape == (3,) and feat.shape == (3, 4, 1, 1)
    assert torch.equal(logit, feat.view(3, 4)[torch.arange(3), y])
    assert c.moco(x).shape == (3, 16) and c.iic(x).shape == (3, 4)
    outs = c(x)
    assert set(outs) == {"cont", "disc"} and outs["disc"].shape == (3, 4)


def test_full_width_generator_at_32px_content_code():
    torch.manual_seed(0)
    g = Generator(32, 128)
    x = torch.randn(2, 3, 32, 32)
    assert g.cnt_encoder(x).shape == (2, 128, 16, 16)
    assert g(x, torch.randn(2, 128)).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("train", [True, False])
def test_generator_statistics_are_per_sample(train):
    torch.manual_seed(0)
    g, _, _ = tiny_nets()
    g.train(train)
    x, s = torch.randn(3, 3, 32, 32), torch.randn(3, 16)
    batched = g(x, s)
    single = torch.cat([g(x[i : i + 1], s[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


def test_adain_buffers_constant_and_params_released():
    torch.manual_seed(0)
    g, _, _ = tiny_nets()
    g.train()
    g(torch.randn(2, 3, 32, 32), torch.randn(2, 16)).mean().backward()
    layers = [m for m in g.modules() if isinstance(m, AdaIN2d)]
    assert len(layers) == 5  # 2 ResBlocks x 2 convs + 1 upsampling conv at 32 px
    for m in layers:
        assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
        assert torch.equal(m.running_var, torch.ones_like(m.running_var))
        assert m.weight is None and m.bias is None
    copy.deepcopy(g)  # an EMA copy must be possible right after a training step
    with pytest.raises(RuntimeError):
        g.decoder(torch.randn(1, 16, 16, 16))


def test_assign_adain_params_layout():
    mod = torch.nn.Sequential(AdaIN2d(2), AdaIN2d(3))
    params = torch.arange(2 * (4 + 6), dtype=torch.float32).view(2, 10)
    assign_adain_params(params, mod)
    # first C values = bias ("mean"), next C = weight ("std"), flattened over the batch.
    assert mod[0].bias.tolist() == [0, 1, 10, 11] and mod[0].weight.tolist() == [2, 3, 12, 13]
    assert mod[1].bias.tolist() == [4, 5, 6, 14, 15, 16] and mod[1].weight.tolist() == [7, 8, 9, 17, 18, 19]


def test_adain_normalisation_closed_form():
    layer = AdaIN2d(2)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2).repeat(1, 2, 1, 1)
    layer.weight = torch.tensor([1.0, 2.0])
    layer.bias = torch.tensor([0.0, 5.0])
    out = layer(x)
    normed = (x[0, 0] - 2.5) / math.sqrt(1.25 + 1e-5)  # biased variance 1.25
    torch.testing.assert_close(out[0, 0], normed)
    torch.testing.assert_close(out[0, 1], 2 * normed + 5)


def test_frn_closed_form():
    frn = FRN(1)
    x = torch.tensor([3.0, -3.0, 4.0, -4.0]).view(1, 1, 2, 2)
    scale = 1 / math.sqrt(12.5 + 1e-6)
    torch.testing.assert_close(frn(x), torch.clamp(x * scale, min=0.0))  # tau = 0 acts as a ReLU
    with torch.no_grad():
        frn.tau.fill_(-0.5)
    torch.testing.assert_close(frn(x), torch.clamp(x * scale, min=-0.5))


def test_actfirst_block_merge_and_shortcut():
    blk = ActFirstResBlk(2, 4, downsample=True)
    with torch.no_grad():
        blk.conv2.weight.zero_()
        blk.conv2.bias.zero_()
    x = torch.randn(1, 2, 4, 4)
    expected = F.avg_pool2d(blk.conv1x1(x), 2) / math.sqrt(2)
    torch.testing.assert_close(blk(x), expected)
    assert not hasattr(ActFirstResBlk(3, 3, downsample=False), "conv1x1")


def test_guiding_net_heads_and_init():
    torch.manual_seed(0)
    _, _, c = tiny_nets()
    c.eval()
    x = torch.randn(4, 3, 32, 32)
    outs = c(x)
    torch.testing.assert_close(outs["cont"], c.moco(x))
    torch.testing.assert_close(outs["disc"], c.iic(x))
    torch.testing.assert_close(c(x, sty=True), c.moco(x))
    assert torch.count_nonzero(c.disc.bias) == 0 and torch.count_nonzero(c.cont.bias) == 0
    torch.manual_seed(0)
    big = GuidingNet(128, 10)
    assert abs(big.cont.weight.std().item() - 0.01) < 5e-4  # N(0, 0.01) heads, as torchvision's VGG


def test_guiding_net_moco_and_iic_each_update_bn_stats():
    _, _, c = tiny_nets()
    c.train()
    x = torch.randn(4, 3, 32, 32)
    c.moco(x)
    c.iic(x)
    assert int(c.features[1].num_batches_tracked) == 2


# --------------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------------
def _iic_reference(p, p_tf, eps=1e-10):
    """Upstream's masked in-place clamping, on clones so that autograd accepts it."""
    joint = joint_distribution(p, p_tf)
    k = joint.size(0)
    p_i = joint.sum(dim=1).view(k, 1).expand(k, k).clone()
    p_j = joint.sum(dim=0).view(1, k).expand(k, k).clone()
    joint = joint.clone()
    joint[(joint < eps).data] = eps
    p_j[(p_j < eps).data] = eps
    p_i[(p_i < eps).data] = eps
    return (-joint * (torch.log(joint) - torch.log(p_j) - torch.log(p_i))).sum()


def test_iic_uniform_is_zero_and_one_hot_is_minus_log_k():
    k = 4
    uniform = torch.full((6, k), 1.0 / k)
    assert abs(iic_loss(uniform, uniform).item()) < 1e-6
    one_hot = torch.eye(k).repeat(2, 1)  # balanced, confident, both views agree
    eps = 1e-10
    # K(K-1) off-diagonal entries are clamped to eps and contribute -eps * (log eps + 2 log K) each.
    expected = -math.log(k) - k * (k - 1) * eps * (math.log(eps) + 2 * math.log(k))
    assert iic_loss(one_hot, one_hot).item() == pytest.approx(expected, rel=1e-6)


def test_iic_closed_form_two_clusters():
    # p = (a, 1-a) for every sample in both views: P = outer(p, p) is a product, so MI = 0.
    p = torch.tensor([[0.3, 0.7]]).repeat(5, 1)
    assert abs(iic_loss(p, p).item()) < 1e-6
    # two samples, perfectly swapped clusters in the second view: P = [[0, .5], [.5, 0]], MI = log 2.
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert iic_loss(a, b).item() == pytest.approx(-math.log(2), rel=1e-6)


def test_iic_matches_official_semantics_values_and_gradients():
    torch.manual_seed(0)
    logits = torch.randn(8, 5, requires_grad=True)
    logits_tf = torch.randn(8, 5, requires_grad=True)
    ours = iic_loss(F.softmax(logits, 1), F.softmax(logits_tf, 1))
    g_ours = torch.autograd.grad(ours, [logits, logits_tf])
    ref = _iic_reference(F.softmax(logits, 1), F.softmax(logits_tf, 1))
    g_ref = torch.autograd.grad(ref, [logits, logits_tf])
    assert torch.equal(ours, ref)
    assert all(torch.equal(a, b) for a, b in zip(g_ours, g_ref))
    assert ours.item() <= 0.0


def test_iic_clamping_matches_official_semantics_on_saturated_inputs():
    # Confident logits with an unused cluster: entries of P fall below eps and take the clamp path.
    torch.manual_seed(0)
    logits = (40 * torch.randn(6, 4)).requires_grad_()
    logits_tf = (40 * torch.randn(6, 4)).requires_grad_()
    with torch.no_grad():
        logits[:, 3] -= 200
        logits_tf[:, 3] -= 200
    joint = joint_distribution(F.softmax(logits, 1), F.softmax(logits_tf, 1))
    assert (joint < 1e-10).sum() >= 7  # the whole unused row and column at least
    ours = iic_loss(F.softmax(logits, 1), F.softmax(logits_tf, 1))
    ref = _iic_reference(F.softmax(logits, 1), F.softmax(logits_tf, 1))
    g_ours = torch.autograd.grad(ours, [logits, logits_tf])
    g_ref = torch.autograd.grad(ref, [logits, logits_tf])
    assert torch.isfinite(ours) and torch.equal(ours, ref)
    assert all(torch.isfinite(a).all() and torch.equal(a, b) for a, b in zip(g_ours, g_ref))


def test_moco_loss_closed_forms():
    torch.manual_seed(0)
    queue = torch.randn(7, 5)
    key = torch.randn(3, 5, requires_grad=True)
    zero_q = torch.zeros(3, 5, requires_grad=True)
    assert moco_loss(zero_q, key, queue).item() == pytest.approx(math.log(8), rel=1e-6)
    q = torch.randn(3, 5, requires_grad=True)
    loss = moco_loss(q, key, queue, temperature=0.5)
    qd, kd, queued = q.double(), key.double(), queue.double()
    logits = torch.cat([(qd * kd).sum(1, keepdim=True), qd @ queued.t()], 1) / 0.5
    expected = -(logits[:, 0] - torch.logsumexp(logits, 1)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert key.grad is None and q.grad is not None  # the key comes from the momentum encoder


def test_moco_queue_fifo_and_state():
    queue = MoCoQueue(max_size=5)
    assert len(queue) == 0
    with pytest.raises(RuntimeError):
        _ = queue.tensor
    queue.reset(torch.arange(2.0).view(2, 1))
    sizes = []
    for t in range(3):
        queue.push(torch.full((2, 1), 10.0 + t))
        sizes.append(len(queue))
    assert sizes == [4, 5, 5]  # min(B * (1 + t), max_size)
    assert queue.tensor.view(-1).tolist() == [10.0, 11.0, 11.0, 12.0, 12.0]  # newest rows kept, in order
    restored = MoCoQueue()
    restored.load_state_dict(queue.state_dict())
    assert restored.max_size == 5 and torch.equal(restored.tensor, queue.tensor)
    k = torch.ones(1, 1, requires_grad=True) * 2
    queue.push(k)
    assert not queue.tensor.requires_grad


def test_hinge_losses():
    logit = torch.tensor([-2.0, -0.5, 0.5, 2.0])
    assert hinge_adv_loss(logit, "d_real").item() == pytest.approx((3 + 1.5 + 0.5 + 0) / 4)
    assert hinge_adv_loss(logit, "d_fake").item() == pytest.approx((0 + 0.5 + 1.5 + 3) / 4)
    assert hinge_adv_loss(logit, "g").item() == pytest.approx(0.0)
    with pytest.raises(ValueError):
        hinge_adv_loss(logit, "real")


def test_r1_penalty_of_a_linear_critic():
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4, requires_grad=True)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    d_out = (x * w).flatten(1).sum(1)
    reg = r1_penalty(d_out, x)
    # every sample's gradient is w: sum over the batch of ||w||^2, divided by B.
    assert reg.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-6)
    (grad_w,) = torch.autograd.grad(reg, w)
    torch.testing.assert_close(grad_w, 2 * w)


# --------------------------------------------------------------------------------------------------------
# Clustering metrics
# --------------------------------------------------------------------------------------------------------
def test_cluster_accuracy_perfect_up_to_permutation():
    targets = np.array([0, 0, 1, 1, 2, 2, 2])
    preds = np.array([2, 2, 0, 0, 1, 1, 1])
    assert cluster_accuracy(preds, targets) == 1.0
    assert hungarian_match(preds, targets) == {0: 1, 1: 2, 2: 0}
    assert normalized_mutual_info(preds, targets) == pytest.approx(1.0)


def test_cluster_accuracy_is_one_to_one_not_greedy():
    # votes: c0 = {y0: 3, y1: 2}, c1 = {y0: 2}, c2 = {y2: 1}. Greedy/many-to-one would take c0->y0 (3);
    # the optimal one-to-one matching is c0->y1, c1->y0, c2->y2 = 5 of 8.
    preds = [0, 0, 0, 0, 0, 1, 1, 2]
    targets = [0, 0, 0, 1, 1, 0, 0, 2]
    assert confusion_counts(preds, targets).tolist() == [[3, 2, 0], [2, 0, 0], [0, 0, 1]]
    assert cluster_accuracy(preds, targets) == pytest.approx(5 / 8)
    assert hungarian_match(preds, targets) == {0: 1, 1: 0, 2: 2}


def test_cluster_accuracy_rectangular_and_torch_inputs():
    preds = torch.tensor([0, 0, 1, 1, 2, 2])
    targets = torch.tensor([0, 0, 0, 1, 1, 1])
    assert cluster_accuracy(preds, targets, num_clusters=3, num_classes=2) == pytest.approx(4 / 6)
    assert cluster_accuracy([], []) == 0.0


def test_nmi_closed_forms():
    targets = [0, 0, 0, 1, 1, 1]
    preds = [0, 0, 1, 1, 2, 2]
    # MI = (2/3) log 2, H(targets) = log 2, H(preds) = log 3, arithmetic normalisation.
    expected = (2 / 3) * math.log(2) / ((math.log(2) + math.log(3)) / 2)
    assert normalized_mutual_info(preds, targets) == pytest.approx(expected, rel=1e-12)
    assert normalized_mutual_info([5, 5, 7, 7], [0, 1, 0, 1]) == 0.0  # independent
    assert normalized_mutual_info([3, 3, 3], [1, 1, 1]) == 1.0  # both trivial (scikit-learn convention)
    assert normalized_mutual_info([0, 1, 2], [0, 0, 0]) == 0.0


def test_evaluate_clustering_reports_empty_clusters():
    report = evaluate_clustering([0, 0, 2, 2], [1, 1, 0, 0], num_clusters=3, num_classes=2)
    assert report["sizes"] == [2, 0, 2]
    assert report["acc"] == 1.0 and report["mapping"] == {0: 1, 2: 0}
    assert cluster_sizes(torch.tensor([1, 1]), 3) == [0, 2, 0]
