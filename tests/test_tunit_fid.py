"""TUNIT per-class FID / mFID: pairing, Hungarian cluster styles, the scores, and cluster_eval.py --fid."""

from __future__ import annotations

import importlib.util
import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import models
from data.tunit_dataset import TunitDataset
from models.tunit_support import (
    official_fid_budget,
    official_fid_input,
    official_fid_pairs,
    official_per_class_fid,
)
from options import TestOptions
from util.metrics.fid import FeatureExtractor, fid_from_features, prepare_images, quantize
from util.metrics.inception import FIDInceptionV3
from util.metrics.tunit_fid import (
    EncodedSplit,
    class_to_cluster,
    content_indices,
    encode_split,
    format_per_class_fid,
    per_class_fid,
    reference_pairs,
)

TINY_NETS = ["--output_k", "3", "--sty_dim", "16", "--tunit_g_nf", "8", "--tunit_g_nf_mlp", "32",
             "--tunit_c_widths", "4,M,8,M,16,16,M,32,32,M,32,32,M"]  # fmt: skip
COMMON = ["--gpu_ids", "-1", "--crop_size", "32", "--load_size", "32", "--num_threads", "0", "--no_progress"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_CLASSES, N_TEST = 3, 3


@pytest.fixture(scope="module")
def class_root(tmp_path_factory) -> str:
    from datasets.make_synthetic import make_synthetic

    return make_synthetic(str(tmp_path_factory.mktemp("tunit_fid_data")), layout="class_folder", size=32,
                          n_train=1, n_test=N_TEST, seed=0, n_classes=N_CLASSES)  # fmt: skip


def make_options(root: str, *extra: str):
    return TestOptions().parse(["--model", "tunit", "--dataset_mode", "tunit", "--dataroot", root, "--phase",
                                "test", *COMMON, *TINY_NETS, *extra], save=False)  # fmt: skip


@pytest.fixture(scope="module")
def setup(class_root):
    opt = make_options(class_root)
    torch.manual_seed(0)
    model = models.create_model(opt)
    dataset = TunitDataset(opt)
    torch.manual_seed(1)
    net = FIDInceptionV3(dims=64).eval()
    # He init keeps the activations at unit scale (PyTorch's default init shrinks them; see test_metrics).
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    extractor = FeatureExtractor(net, weights="random-init", device="cpu", batch_size=50)
    split = encode_split(model, dataset, "cpu")
    return model, dataset, extractor, split


def test_reference_pairs_take_other_classes_and_cycle_the_target_class():
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2])
    content, refs = reference_pairs(labels, 1, generator=torch.Generator().manual_seed(0))
    assert content.tolist() == [0, 1, 5, 6, 7, 8]
    assert sorted(refs.tolist()) == [2, 2, 3, 3, 4, 4]  # each class-1 image twice
    assert sorted(refs[:3].tolist()) == [2, 3, 4]  # one full random order before any repeats
    assert content_indices(labels, 0, max_images=5).tolist() == [2, 3, 4, 5, 6]  # ceil(5/2) = 3 per class
    assert content_indices(labels, 2, max_images=3).tolist() == [0, 1, 2]
    content, refs = reference_pairs(labels, 0, max_images=3, generator=torch.Generator().manual_seed(0))
    assert content.tolist() == [2, 3, 5] and set(refs.tolist()) <= {0, 1} and len(refs) == 3


def test_class_to_cluster_follows_the_hungarian_assignment():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    split = EncodedSplit(labels=labels, clusters=(labels + 1) % 3, codes=torch.zeros(6, 2), num_clusters=4)
    assert class_to_cluster(split, 3) == {0: 1, 1: 2, 2: 0}
    # Everything in cluster 3: one class is matched to it, the others only to empty clusters (no style).
    split.clusters = torch.full((6,), 3)
    matched = class_to_cluster(split, 3)
    assert sorted(matched.values(), key=str) == [3, None, None]


def test_per_class_fid_scores_every_class_and_mfid_is_their_mean(setup):
    model, dataset, extractor, split = setup
    assert split.images.dtype == torch.uint8 and split.images.shape == (N_CLASSES * N_TEST, 3, 32, 32)
    x0 = dataset[0]["A"]
    assert torch.equal(split.image_batch(torch.tensor([0]), "cpu")[0], x0)  # uint8 storage is lossless
    perfect = EncodedSplit(split.labels, split.labels.clone(), split.codes, split.num_clusters, split.images)
    report = per_class_fid(model, dataset, split=perfect, extractor=extractor, seed=3)
    names = dataset.classes
    assert report["classes"] == names and report["dims"] == 64 and report["images"] == N_CLASSES * N_TEST
    assert report["n_real"] == {n: N_TEST for n in names}
    assert report["cluster"]["cluster"] == {n: i for i, n in enumerate(names)}
    for mode in ("reference", "cluster"):
        r = report[mode]
        assert r["n_fake"] == {n: (N_CLASSES - 1) * N_TEST for n in names}
        fids = list(r["fid"].values())
        assert len(fids) == N_CLASSES and all(math.isfinite(v) and v > 0 for v in fids), fids
        assert r["scored"] == N_CLASSES and r["mfid"] == pytest.approx(np.mean(fids), rel=1e-12)
    # The two style modes produce different translations, hence different scores.
    assert report["reference"]["fid"] != report["cluster"]["fid"]

    # Class 2 in cluster mode, recomputed by hand: classes 0 and 1 rendered with the mean C_ema style of
    # the images of class 2 (its matched cluster), scored against the class-2 images.
    g, c = model.netG_ema.eval(), model.netC_ema.eval()
    with torch.no_grad():
        images = torch.stack([dataset[i]["A"] for i in range(len(dataset))])
        labels = torch.tensor(dataset.targets)
        style = c.moco(images[labels == 2]).mean(0, keepdim=True)
        content = images[labels != 2]
        fake = g.decode(g.cnt_encoder(content), style.expand(content.size(0), -1))
    real = extractor.features(prepare_images((images[labels == 2] + 1) / 2))
    expected = fid_from_features(extractor.features_of_tensors(fake), real)
    assert report["cluster"]["fid"][names[2]] == pytest.approx(expected, rel=1e-4)
    # Class 1 in reference mode: the seeded generator is drawn once per class, in class order.
    generator = torch.Generator().manual_seed(3)
    pairs = [reference_pairs(labels, cls, 0, generator) for cls in range(N_CLASSES)]
    content, refs = pairs[1]
    assert set(labels[content].tolist()) == {0, 2} and set(labels[refs].tolist()) == {1}
    with torch.no_grad():
        fake = g.decode(g.cnt_encoder(images[content]), c.moco(images[refs]))
    real = extractor.features(prepare_images((images[labels == 1] + 1) / 2))
    expected = fid_from_features(extractor.features_of_tensors(fake), real)
    assert report["reference"]["fid"][names[1]] == pytest.approx(expected, rel=1e-4)

    lines = format_per_class_fid(report)
    assert len(lines) == 1 + N_CLASSES + 2 and lines[-2].startswith("mFID reference: ")
    assert lines[-1].endswith(f"({N_CLASSES} of {N_CLASSES} classes)")


def test_a_class_without_a_matched_cluster_gets_no_score(setup):
    model, dataset, extractor, split = setup
    # Everything in cluster 0: only the class matched to it can be scored in cluster mode.
    collapsed = EncodedSplit(split.labels, torch.zeros_like(split.labels), split.codes, 3, split.images)
    report = per_class_fid(model, split=collapsed, extractor=extractor, modes=("cluster",), max_images=2)
    r = report["cluster"]
    assert r["scored"] == 1 and sum(v is not None for v in r["fid"].values()) == 1
    assert r["mfid"] == next(v for v in r["fid"].values() if v is not None)
    assert sorted(r["n_fake"].values()) == [0, 0, 2] and "reference" not in report


def test_missing_weights_return_none_with_the_message(setup, no_weights, capsys):
    model, dataset, _, _ = setup
    assert per_class_fid(model, dataset, dims=64) is None
    assert "FID/KID skipped: no Inception weights found" in capsys.readouterr().out


def load_cluster_eval():
    spec = importlib.util.spec_from_file_location(
        "cluster_eval", os.path.join(ROOT, "scripts", "tunit", "cluster_eval.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def official_run(setup, tmp_path_factory) -> str:
    """A run folder in the official layout (model_1.ckpt) holding the tiny model's inference networks."""
    model = setup[0]
    ckpt = tmp_path_factory.mktemp("runs")
    os.makedirs(ckpt / "tu")
    state = {
        f"{k}_state_dict": getattr(model, n).state_dict()
        for k, n in (("C_EMA", "netC_ema"), ("G_EMA", "netG_ema"))
    }
    torch.save(state, ckpt / "tu" / "model_1.ckpt")
    return str(ckpt)


def test_cluster_eval_fid_without_weights_still_reports_clusters(
    class_root, official_run, no_weights, capsys
):
    argv = ["--dataroot", class_root, "--name", "tu", "--checkpoints_dir", official_run, "--phase", "test",
            *COMMON, *TINY_NETS, "--fid", "--fid_dims", "64"]  # fmt: skip
    assert load_cluster_eval().main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-2])["images"] == N_CLASSES * N_TEST
    assert out[-1].startswith("FID/KID skipped: no Inception weights found")


def test_cluster_eval_fid_writes_the_report(setup, class_root, official_run, tmp_path, capsys):
    weights = tmp_path / "inception.pth"
    full = FIDInceptionV3()
    full.load_state_dict(setup[2].net.state_dict())  # the fixture's random network
    torch.save(full.state_dict(), weights)
    out_json = tmp_path / "fid.json"
    argv = ["--dataroot", class_root, "--name", "tu", "--checkpoints_dir", official_run, "--phase", "test",
            *COMMON, *TINY_NETS, "--fid", "--fid_dims", "64", "--fid_weights", str(weights), "--fid_modes",
            "reference", "--fid_num_images", "2", "--fid_json", str(out_json)]  # fmt: skip
    assert load_cluster_eval().main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"wrote the per-class FID to {out_json}"
    assert out[-2].startswith("mFID reference: ") and out[-2].endswith(
        f"({N_CLASSES} of {N_CLASSES} classes)"
    )
    saved = json.loads(out_json.read_text())
    assert saved["name"] == "tu" and saved["dims"] == 64 and "cluster" not in saved
    fids = list(saved["reference"]["fid"].values())
    assert len(fids) == N_CLASSES and all(math.isfinite(v) for v in fids)
    assert saved["reference"]["n_fake"] == {n: 2 for n in saved["classes"]}
    assert saved["reference"]["mfid"] == pytest.approx(np.mean(fids), rel=1e-12)


# ---------------------------------------------------------------------------- --tunit_fid_official
def test_official_fid_input_is_upstreams_doubly_normalised_nearest_resize():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    got = official_fid_input(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    idx = torch.arange(299) * 32 // 299  # nearest: output pixel i reads input pixel floor(i * 32 / 299)
    want = 2 * (((x + 1) / 2 - mean) / std)[:, :, idx][:, :, :, idx] - 1
    assert got.shape == (2, 3, 299, 299) and torch.equal(got, want)
    # pytorch-fid's wrapper resizes bilinearly to 299 once more: a no-op at that size, so this is the net input.
    assert torch.equal(F.interpolate(got, size=(299, 299), mode="bilinear", align_corners=False), got)
    # Black and white reach the network as 2 (0 - mean) / std - 1 and 2 (1 - mean) / std - 1, not -1 and 1.
    ends = official_fid_input(torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1).expand(2, 3, 4, 4))[:, :, 0, 0]
    torch.testing.assert_close(
        ends, torch.stack([2 * (0 - mean) / std - 1, 2 * (1 - mean) / std - 1]).view(2, 3)
    )
    standard = prepare_images(quantize(x))  # ours: 8-bit, bilinear, [-1, 1]
    assert standard.abs().max() <= 1 and got.min() < -4 and got.max() > 3


def test_official_fid_budget_and_pairs():
    # AnimalFaces-10 (n_t = 1250): 5 draws of 27; a two-domain set: 25 draws of 44; one class: n_t // m.
    assert official_fid_budget(1250, 10) == (5, 27) and 9 * 5 * 27 <= 1250
    assert official_fid_budget(1100, 2) == (25, 44) and official_fid_budget(100, 1) == (50, 2)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    content, refs = official_fid_pairs(labels, 1, 3, m=2, e=2, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    draws = [torch.tensor([3, 4, 5, 6])[torch.randperm(4, generator=g)[:2]] for _ in range(2)]
    # Classes (1 + 1) % 3 = 2, then 0: their first e images, once per draw; ours takes every other-class
    # image once, in class order (content_indices).
    assert content.tolist() == [7, 8, 7, 8, 0, 1, 0, 1]
    assert refs.tolist() == torch.cat([*draws, *draws]).tolist()
    assert content_indices(labels, 1).tolist() == [0, 1, 2, 7, 8, 9]
    with pytest.raises(ValueError, match="e = 4"):
        official_fid_pairs(labels, 1, 3, m=1, e=4, generator=g)  # class 2 has 3 images


class PatchFeatures(torch.nn.Module):
    """A cheap stand-in for Inception (the protocol does not depend on the network): ReLU of a random
    stride-13 conv on the 299 px input, averaged; 16 features."""

    dims = 16

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 13, stride=13)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1).flatten(1)


def test_fid_official_protocol_differs_from_ours_where_documented(setup, class_root):
    model, dataset, _, split = setup
    torch.manual_seed(2)
    extractor = FeatureExtractor(PatchFeatures().eval(), weights="random-init", device="cpu", batch_size=50)
    assert make_options(class_root, "--tunit_fid_official").tunit_fid_official
    assert not make_options(class_root).tunit_fid_official
    names = dataset.classes
    # n_t 32 with 3 classes: m = 16 draws of e = 1 reference, 2 * 16 = 32 fakes per class (ours: 6).
    report = official_per_class_fid(
        model, split, split, extractor, class_names=names, n_target=32, seed=5, flip_references=True
    )
    assert (report["n_target"], report["draws"], report["per_draw"]) == (32, 16, 1)
    assert report["reference"]["n_fake"] == {n: 32 for n in names} and report["n_real"] == {
        n: 3 for n in names
    }
    fids = list(report["reference"]["fid"].values())
    assert all(math.isfinite(v) for v in fids) and report["reference"]["mfid"] == pytest.approx(np.mean(fids))
    assert format_per_class_fid(report)[-1].startswith("mFID reference: ")

    # Class 0 by hand, the generator drawn in the documented order: reference flips, class-0 real flips, draws.
    g, c = model.netG_ema.eval(), model.netC_ema.eval()
    gen = torch.Generator().manual_seed(5)
    images = split.image_batch(torch.arange(split.labels.numel()), "cpu")
    flip = torch.rand(images.size(0), generator=gen) < 0.5
    val = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    own = torch.nonzero(split.labels == 0).flatten()
    real_flip = torch.rand(own.numel(), generator=gen) < 0.5
    reals = torch.where(real_flip.view(-1, 1, 1, 1), images[own].flip(-1), images[own])
    refs = torch.cat([own[torch.randperm(3, generator=gen)[:1]] for _ in range(16)])
    content = torch.tensor([3] * 16 + [6] * 16)  # the first image of class 1, then of class 2
    with torch.no_grad():
        fake = g.decode(g.cnt_encoder(val[content]), c.moco(val[refs.repeat(2)]))
    fake_feats = extractor.features(official_fid_input(fake))
    real_feats = extractor.features(official_fid_input(reals))
    assert report["reference"]["fid"][names[0]] == pytest.approx(
        fid_from_features(fake_feats, real_feats), rel=1e-4
    )
    # The same fakes and reals through our input pipeline (8-bit, bilinear, [-1, 1]) score differently.
    ours = fid_from_features(
        extractor.features_of_tensors(fake), extractor.features(prepare_images((reals + 1) / 2))
    )
    assert abs(ours - report["reference"]["fid"][names[0]]) > 1e-3 * abs(ours)
    # cap_reals keeps the first n_t reals of each class (the two-domain sets); n_t 2 leaves e = 0: no fakes.
    small = official_per_class_fid(
        model, split, split, extractor, class_names=names, n_target=2, cap_reals=True, flip_reals=False
    )
    assert small["n_real"] == {n: 2 for n in names} and small["per_draw"] == 0
    assert small["reference"]["scored"] == 0 and small["reference"]["mfid"] is None
