"""PatchNCE loss and CUT's patch sampler F: closed forms, shapes, counts and the official quirks' fixes."""

import math

import pytest
import torch

from models.losses.patchnce import PatchNCELoss, patch_nce_loss
from models.networks.heads import PatchSampleF, l2_normalize, sample_patch_ids

CUT_DEFAULT_CHANNELS = (3, 128, 256, 256, 256)  # taps 0,4,8,12,16 of the CUT G at ngf 64
CUT_SMALL_CHANNELS = (3, 16, 32, 32, 32)  # same taps at ngf 8


def reference_nce(q: torch.Tensor, k: torch.Tensor, nce_T: float) -> torch.Tensor:
    """Loop form of PatchNCE for one image: -log softmax of [q_i.k_i, q_i.k_j (j != i), -10 (j == i)]."""
    losses = []
    for i in range(q.shape[0]):
        logits = [float(q[i] @ k[i])]
        logits += [-10.0 if j == i else float(q[i] @ k[j]) for j in range(k.shape[0])]
        logits = torch.tensor(logits, dtype=torch.float64) / nce_T
        losses.append(-torch.log_softmax(logits, 0)[0])
    return torch.stack(losses)


# ---------------------------------------------------------------- PatchNCE


def test_hand_computed_case():
    # B = 1, P = 2, q = k = rows of I2, T = 1: logits [[1, -10, 0], [1, 0, -10]].
    eye = torch.eye(2)
    per_patch = PatchNCELoss(nce_T=1.0)(eye, eye, batch_size=1)
    expected = math.log(1 + math.exp(-1) + math.exp(-11))
    assert expected == pytest.approx(0.3132738, abs=1e-7)
    assert per_patch.shape == (2,)
    torch.testing.assert_close(per_patch, torch.full((2,), expected), rtol=0, atol=1e-6)
    assert per_patch.mean().item() == pytest.approx(0.3132738, abs=1e-6)


def test_matches_loop_reference_and_default_temperature():
    g = torch.Generator().manual_seed(0)
    q = l2_normalize(torch.randn(6, 5, generator=g, dtype=torch.float64))
    k = l2_normalize(torch.randn(6, 5, generator=g, dtype=torch.float64))
    loss = PatchNCELoss()(q, k, batch_size=1)  # default nce_T 0.07
    torch.testing.assert_close(loss, reference_nce(q, k, 0.07), rtol=1e-12, atol=1e-12)


def test_negatives_are_grouped_by_the_tensors_batch():
    # Bug #10: the official loss reshapes with opt.batch_size. With the real batch (2) each image's queries
    # only see that image's keys: the batch-2 loss is the two single-image losses side by side.
    g = torch.Generator().manual_seed(1)
    q = l2_normalize(torch.randn(2 * 4, 3, generator=g, dtype=torch.float64))
    k = l2_normalize(torch.randn(2 * 4, 3, generator=g, dtype=torch.float64))
    both = patch_nce_loss(q, k, batch_size=2)
    separate = torch.cat([patch_nce_loss(q[:4], k[:4], 1), patch_nce_loss(q[4:], k[4:], 1)])
    torch.testing.assert_close(both, separate, rtol=0, atol=0)
    torch.testing.assert_close(
        both, torch.cat([reference_nce(q[:4], k[:4], 0.07), reference_nce(q[4:], k[4:], 0.07)])
    )
    # Grouping the 8 rows as one image (what opt.batch_size = 1 would do) is a different loss.
    assert not torch.allclose(both, patch_nce_loss(q, k, batch_size=1))
    # SinCUT's option: every image's patches are negatives, i.e. one group whatever the batch.
    torch.testing.assert_close(
        patch_nce_loss(q, k, batch_size=2, all_negatives_from_minibatch=True), reference_nce(q, k, 0.07)
    )
    with pytest.raises(ValueError):
        patch_nce_loss(q[:7], k[:7], batch_size=2)


def test_keys_are_detached():
    q = l2_normalize(torch.randn(4, 3)).requires_grad_()
    k = l2_normalize(torch.randn(4, 3)).requires_grad_()
    patch_nce_loss(q, k, 1).mean().backward()
    assert k.grad is None
    assert q.grad is not None and q.grad.abs().sum() > 0


# ---------------------------------------------------------------- F (PatchSampleF)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_and_keys():
    netF = PatchSampleF(CUT_DEFAULT_CHANNELS, nc=256)
    assert n_params(netF) == 560_384
    assert [n_params(netF.mlp(i)) for i in range(5)] == [66_816, 98_816, 131_584, 131_584, 131_584]
    assert n_params(PatchSampleF(CUT_SMALL_CHANNELS, nc=64)) == 28_480
    assert n_params(PatchSampleF(CUT_SMALL_CHANNELS, nc=256)) == 359_680
    expected_keys = [f"mlp_{i}.{j}.{p}" for i in range(5) for j in (0, 2) for p in ("weight", "bias")]
    assert list(netF.state_dict().keys()) == expected_keys
    assert netF.state_dict()["mlp_1.0.weight"].shape == (256, 128)
    # --netF sample: no parameters at all.
    assert n_params(PatchSampleF(CUT_DEFAULT_CHANNELS, use_mlp=False)) == 0
    with pytest.raises(ValueError):
        PatchSampleF((), use_mlp=True)


def small_feats(batch=2, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 38, 38), (16, 32, 32), (32, 16, 16), (32, 8, 8), (32, 8, 8)]  # taps of a 32 px CUT G
    return [torch.randn(batch, *s, generator=g, dtype=dtype) for s in shapes]


def test_output_shapes_unit_rows_and_id_reuse():
    torch.manual_seed(0)
    netF = PatchSampleF(CUT_SMALL_CHANNELS, nc=64)
    feats = small_feats()
    out, ids = netF(feats, num_patches=32, generator=torch.Generator().manual_seed(3))
    assert [tuple(o.shape) for o in out] == [(64, 64)] * 5
    assert [len(i) for i in ids] == [32] * 5
    for o in out:
        torch.testing.assert_close(o.norm(dim=1), torch.ones(64), rtol=0, atol=1e-5)
    for i, f in zip(ids, feats):
        assert len(set(i.tolist())) == 32 and int(i.max()) < f.shape[2] * f.shape[3]
    # Same generator seed -> same ids; passing the ids back reproduces the samples exactly.
    _, ids_again = netF(feats, num_patches=32, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(ids, ids_again))
    out_injected, ids_injected = netF(feats, num_patches=32, patch_ids=ids)
    assert all(torch.equal(a, b) for a, b in zip(out, out_injected))
    assert all(a is b or torch.equal(a, b) for a, b in zip(ids, ids_injected))
    # More patches than positions: capped (8 x 8 = 64 positions), as in the official code.
    out_cap, ids_cap = netF(feats[3:4], num_patches=256, mlp_indices=[3])
    assert out_cap[0].shape == (2 * 64, 64) and sorted(ids_cap[0].tolist()) == list(range(64))


def test_gather_order_is_batch_major_and_position_exact():
    netF = PatchSampleF(use_mlp=False)
    feat = torch.randn(2, 5, 4, 6)
    ids = torch.tensor([7, 0, 23, 11])
    (out,), _ = netF([feat], num_patches=4, patch_ids=[ids])
    assert out.shape == (8, 5)
    for b in range(2):
        for j, pos in enumerate(ids.tolist()):
            vec = feat[b, :, pos // 6, pos % 6]
            torch.testing.assert_close(out[b * 4 + j], vec / (vec.norm() + 1e-7))


def test_mlp_indices_select_the_head():
    # SRUNIT embeds one chosen layer's features with that layer's head: F([f], mlp_indices=[c]).
    torch.manual_seed(0)
    netF = PatchSampleF(CUT_SMALL_CHANNELS, nc=64)
    feats = small_feats(batch=1)
    full, ids = netF(feats, num_patches=16)
    (single,), _ = netF([feats[2]], num_patches=16, patch_ids=[ids[2]], mlp_indices=[2])
    torch.testing.assert_close(single, full[2], rtol=0, atol=0)
    with pytest.raises(IndexError):
        netF([feats[2]], num_patches=16, mlp_indices=[5])


def test_l2_norm_variants():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(
        l2_normalize(x, "cut"),
        torch.tensor([[3 / (5 + 1e-7), 4 / (5 + 1e-7)], [0.0, 0.0]], dtype=torch.float64),
    )
    s = x + 1e-12
    expected = s / s.norm(dim=1, keepdim=True)
    torch.testing.assert_close(l2_normalize(x, "srunit"), expected, rtol=0, atol=0)
    assert l2_normalize(x, "srunit")[1].tolist() == pytest.approx([2**-0.5, 2**-0.5])
    feats = small_feats(batch=1)
    torch.manual_seed(0)
    netF = PatchSampleF(CUT_SMALL_CHANNELS, nc=64, l2_norm="srunit")
    out, _ = netF(feats, num_patches=8)
    assert all(torch.allclose(o.norm(dim=1), torch.ones(8), atol=1e-6) for o in out)
    with pytest.raises(ValueError):
        PatchSampleF(CUT_SMALL_CHANNELS, l2_norm="unit")


def test_sample_ids_draws():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(sample_patch_ids(100, 10, g1), sample_patch_ids(100, 10, g2))
    assert torch.equal(sample_patch_ids(9, 0), torch.arange(9))


def test_feature_gradient_stays_contiguous():
    # Bug #16: the official permute(0, 2, 3, 1) gather returns channels-last gradients to the generator,
    # which PyTorch's CPU InstanceNorm2d backward mishandles at batch 1. Ours must return NCHW-contiguous ones.
    torch.manual_seed(0)
    netF = PatchSampleF(CUT_SMALL_CHANNELS[1:2], nc=64)
    leaf = torch.randn(1, 16, 8, 8, requires_grad=True)
    feat = leaf * 1.0  # non-leaf, so the hook sees the raw incoming gradient
    seen = {}
    feat.register_hook(lambda grad: seen.update(contiguous=grad.is_contiguous(), stride=grad.stride()))
    (out,), _ = netF([feat], num_patches=16)
    out.sum().backward()
    assert seen["contiguous"], seen["stride"]
    # For contrast, the official layout produces a channels-last gradient.
    seen.clear()
    feat = leaf * 1.0
    feat.register_hook(lambda grad: seen.update(contiguous=grad.is_contiguous()))
    feat.permute(0, 2, 3, 1).flatten(1, 2)[:, torch.arange(16), :].sum().backward()
    assert not seen["contiguous"]


def test_gradients_reach_features_and_heads_in_float64():
    torch.manual_seed(0)
    netF = PatchSampleF(CUT_SMALL_CHANNELS, nc=64).double()
    feats = [f.requires_grad_() for f in small_feats(batch=1, dtype=torch.float64)]
    out, _ = netF(feats, num_patches=8)
    sum(o.sum() for o in out).backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)
    assert all(p.grad is not None for p in netF.parameters())
