"""enhanced-U-GAT-IT data options of ``--dataset_mode ugatit``: histogram matching (``--match_histograms
--match_mode --match_prob --match_ratio``) and the RandomResizedCrop augmentation (``--aug_prob``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode

import train
from data import create_dataset
from data.histogram import (
    channel_cdf,
    hls_to_rgb,
    hsv_to_rgb,
    match_channels,
    match_histograms,
    matching_lut,
    rgb_to_hls,
    rgb_to_hsv,
)
from data.transforms import get_transform, sample_params
from options import TrainOptions

TINY = ["--gpu_ids", "-1", "--ch", "4", "--img_size", "96", "--light", "True", "--display_id", "0",
        "--num_threads", "0", "--no_progress"]  # fmt: skip
# Discriminators shallow enough for 32 px data tests (the 7-layer global D needs 96 px)
SMALL_D = ["--n_global_dis", "5", "--n_local_dis", "3"]


def noise(seed: int, mean, std, shape=(48, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(mean, std, (*shape, 3)), 0, 255).astype(np.uint8)


SRC = noise(0, [200, 80, 60], [30, 20, 15], (64, 64))  # reddish
REF = noise(1, [70, 110, 190], [15, 40, 25], (48, 48))  # bluish, another size


def cdf_distances(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Largest over channels of (Kolmogorov distance, L1 distance in grey levels = Wasserstein-1) of CDFs."""
    diffs = [np.abs(channel_cdf(a[..., c]) - channel_cdf(b[..., c])) for c in range(a.shape[-1])]
    return max(d.max() for d in diffs), max(d.sum() for d in diffs)


# ---------------------------------------------------------------------------------------------------------
# histogram matching


def test_lookup_table_hand_example():
    src = np.array([[[0], [0], [1], [1]]], np.uint8)
    ref = np.array([[[10], [10], [20], [20]]], np.uint8)
    assert match_channels(src, ref)[..., 0].tolist() == [[10, 10, 20, 20]]
    lut = matching_lut(channel_cdf(src), channel_cdf(ref))  # src CDF: 0.5 at 0, 1 from 1 on
    assert lut[0] == 10 and lut[1] == 20 and lut[255] == 20
    # ratio 0.5: target CDF = 0.5·src + 0.5·ref = 0.25 at 0, 0.5 at 1..9, 0.75 at 10..19, 1 from 20
    assert matching_lut(channel_cdf(src), channel_cdf(ref), 0.5)[:2].tolist() == [1, 20]
    with pytest.raises(ValueError, match="ratio"):
        matching_lut(channel_cdf(src), channel_cdf(ref), 1.5)


def test_rgb_matching_cdf_within_one_source_bin():
    matched = match_histograms(SRC, REF, "rgb")
    for c in range(3):
        # A monotone table maps a whole source bin to one value, so the best possible match leaves
        # 0 <= ref_cdf - matched_cdf < the largest source bin mass at every value; the table reaches that.
        gap = channel_cdf(REF[..., c]) - channel_cdf(matched[..., c])
        largest_bin = np.bincount(SRC[..., c].ravel(), minlength=256).max() / SRC[..., c].size
        assert gap.min() >= 0 and gap.max() < largest_bin < 0.035
        assert np.abs(gap).sum() < 1.1  # Wasserstein-1: about one grey level
    assert cdf_distances(SRC, REF)[0] > 0.99


@pytest.mark.parametrize(("mode", "space"), [("hsv", rgb_to_hsv), ("hsl", rgb_to_hls)])
def test_matched_histograms_equal_the_reference(mode, space):
    ks_before, w1_before = cdf_distances(space(SRC), space(REF))
    assert ks_before > 0.75 and w1_before > 100
    matched = match_histograms(SRC, REF, mode)
    assert matched.shape == SRC.shape and matched.dtype == np.uint8
    ks, w1 = cdf_distances(space(matched), space(REF))  # per channel of the matched colour space
    assert ks < 0.06 and w1 < 1.7  # one bin, plus the 8-bit round trip through RGB
    assert np.array_equal(match_histograms(SRC, REF, mode, ratio=1.0), matched)


def test_match_ratio_blends_the_cdfs():
    assert np.array_equal(match_histograms(SRC, REF, "hsl", ratio=0.0), SRC)  # no colour round trip either
    assert np.array_equal(match_histograms(SRC, REF, "rgb", ratio=0.0), SRC)
    half = match_histograms(SRC, REF, "rgb", ratio=0.5)
    for c in range(3):
        target = 0.5 * channel_cdf(SRC[..., c]) + 0.5 * channel_cdf(REF[..., c])  # the fork: CDFs, not pixels
        gap = target - channel_cdf(half[..., c])
        largest_bin = np.bincount(SRC[..., c].ravel(), minlength=256).max() / SRC[..., c].size
        assert gap.min() >= -1e-12 and gap.max() < largest_bin
    means = [img.reshape(-1, 3).mean(0) for img in (SRC, half, REF)]
    assert np.all((means[1] - means[0]) * (means[2] - means[1]) > 0)  # half-way, per channel
    assert not np.array_equal(half, match_histograms(SRC, REF, "rgb"))


def test_colour_conversions_follow_opencv_full_ranges():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128], [255, 255, 0]]], np.uint8)
    hsv, hls = rgb_to_hsv(rgb), rgb_to_hls(rgb)
    # hue: one turn in 256 steps (120° → 85.3 → 85, 240° → 170.7 → 171, 60° → 42.7 → 43)
    assert hsv[0].tolist() == [[0, 255, 255], [85, 255, 255], [171, 255, 255], [0, 0, 128], [43, 255, 255]]
    assert hls[0].tolist() == [[0, 128, 255], [85, 128, 255], [171, 128, 255], [0, 128, 0], [43, 128, 255]]
    # 8-bit quantisation: hue 85 = 119.5°, so red is 255·(1 − 0.9921875) ≈ 2; L 128 = 0.502 leaves minima at 1
    assert hsv_to_rgb(hsv)[0].tolist() == [[255, 0, 0], [2, 255, 0], [2, 0, 255], [128] * 3, [253, 255, 0]]
    assert hls_to_rgb(hls)[0].tolist() == [[255, 1, 1], [3, 255, 1], [3, 1, 255], [128] * 3, [253, 255, 1]]
    many = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    for forward, backward in ((rgb_to_hsv, hsv_to_rgb), (rgb_to_hls, hls_to_rgb)):
        assert np.abs(backward(forward(many)).astype(int) - many).max() <= 4  # 8-bit H/S quantisation


# ---------------------------------------------------------------------------------------------------------
# the dataset


@pytest.fixture(scope="module")
def colour_root(tmp_path_factory):
    """trainA reddish, trainB bluish noise (40 px), two images each, so matching changes colours a lot."""
    root = tmp_path_factory.mktemp("colours")
    for domain, mean, std in (("A", [200, 80, 60], [30, 20, 15]), ("B", [70, 110, 190], [15, 40, 25])):
        (root / f"train{domain}").mkdir()
        for i in range(2):
            Image.fromarray(noise(10 * i + ord(domain), mean, std, (40, 40))).save(
                root / f"train{domain}/{i}.png"
            )
    return str(root)


def dataset(root: str, *extra: str, model: str = "ugatit_enhanced"):
    opt = TrainOptions().parse(["--model", model, *TINY, "--img_size", "32", "--dataroot", root, *SMALL_D, *extra],
                               save=False)  # fmt: skip
    return create_dataset(opt)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    return torch.round((t + 1) / 2 * 255).to(torch.uint8).permute(1, 2, 0).numpy()


def test_aug_prob_defaults():
    assert dataset_opt("ugatit").aug_prob == 0.0 and dataset_opt("ugatit_enhanced").aug_prob == 0.2
    assert dataset_opt("ugatit_enhanced", "--aug_prob", "0").aug_prob == 0.0
    o = dataset_opt("ugatit")
    assert (o.match_histograms, o.match_mode, o.match_prob, o.match_ratio) == (False, "hsl", 0.5, 1.0)
    with pytest.raises(SystemExit):
        dataset_opt("ugatit", "--match_ratio", "1.5")
    with pytest.raises(SystemExit):
        dataset_opt("ugatit", "--match_mode", "lab")


def dataset_opt(model: str, *extra: str):
    return TrainOptions().parse(["--model", model, *TINY, *extra], save=False)


@pytest.mark.parametrize("match_prob", ["0", "1"])
def test_match_prob_picks_which_image_is_matched(colour_root, match_prob):
    raw = ["--preprocess", "none", "--no_flip", "--aug_prob", "0", "--match_mode", "rgb"]
    plain = dataset(colour_root, *raw)
    ds = dataset(colour_root, *raw, "--match_histograms", "--match_prob", match_prob)
    moved, kept = ("B", "A") if match_prob == "1" else ("A", "B")  # match_prob: probability of B → A
    for i in range(len(ds)):
        item, before = ds[i], plain[i]
        assert item["B_paths"] == before["B_paths"]  # same partner: the coin does not shift other draws
        assert torch.equal(item[kept], before[kept])
        assert not torch.equal(item[moved], before[moved])
        ks, w1 = cdf_distances(to_uint8(item[moved]), to_uint8(item[kept]))
        assert ks < 0.06 and w1 < 1.5
        assert cdf_distances(to_uint8(before[moved]), to_uint8(before[kept]))[1] > 100


def test_match_prob_half_uses_both_directions_and_ratio_zero_is_identity(colour_root):
    raw = ["--preprocess", "none", "--no_flip", "--aug_prob", "0"]
    plain = dataset(colour_root, *raw)
    ds = dataset(colour_root, *raw, "--match_histograms")  # fork defaults: hsl, 0.5, ratio 1
    moved = set()
    for epoch in range(6):
        plain.set_epoch(epoch)
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            a, b = ds[i], plain[i]
            same = [torch.equal(a[k], b[k]) for k in ("A", "B")]
            assert sum(same) == 1  # exactly one image of the pair is matched
            moved.add("A" if same[1] else "B")
    assert moved == {"A", "B"}
    zero = dataset(colour_root, *raw, "--match_histograms", "--match_ratio", "0")
    assert all(torch.equal(zero[i][k], plain[i][k]) for i in range(len(zero)) for k in ("A", "B"))


def test_aug_prob_zero_is_the_plain_transform(colour_root):
    ds = dataset(colour_root, "--aug_prob", "0")
    opt = ds.opt
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            rng = ds.item_rng(i)
            int(rng.integers(len(ds.B_paths)))  # the B partner
            rng_a, _ = rng.spawn(2)
            img = Image.open(item["A_paths"]).convert("RGB")
            params = sample_params(opt, img.size, rng_a, load_size=opt.load_size)
            expected = get_transform(opt, params, method=InterpolationMode.BILINEAR)(img)
            assert torch.equal(item["A"], expected)


def test_aug_prob_resized_crop(colour_root):
    plain = dataset(colour_root, "--aug_prob", "0")
    always = dataset(colour_root, "--aug_prob", "1")
    half = dataset(colour_root, "--aug_prob", "0.5")
    changed = []
    for epoch in range(4):
        for ds in (plain, always, half):
            ds.set_epoch(epoch)
        for i in range(len(plain)):
            p, a, h = plain[i], always[i], half[i]
            for k in ("A", "B"):
                assert a[k].shape == p[k].shape == (3, 32, 32)
                assert not torch.equal(a[k], p[k])  # same crop and flip, then a zoom
                changed.append(not torch.equal(h[k], p[k]))
    assert 0 < sum(changed) < len(changed)
    rng = np.random.default_rng(0)
    boxes = [always.sample_resized_crop((32, 32), rng) for _ in range(200)]
    assert all(b[2] == b[3] and 28 <= b[2] <= 32 and b[0] + b[2] <= 32 and b[1] + b[3] <= 32 for b in boxes)
    assert {b[2] for b in boxes} == set(range(28, 33))  # sqrt(0.748)·32 = 27.7 → 28 ... 32


def test_determinism_per_seed_epoch_index(colour_root):
    opts = ["--aug_prob", "0.5", "--match_histograms", "--match_mode", "hsv"]
    first, second = dataset(colour_root, *opts), dataset(colour_root, *opts)
    other_seed = dataset(colour_root, *opts, "--seed", "1")
    for ds in (first, second, other_seed):
        ds.set_epoch(3)
    for i in (1, 0, 1):
        x, y = first[i], second[i]
        assert all(torch.equal(x[k], y[k]) for k in ("A", "B")) and x["B_paths"] == y["B_paths"]
    assert any(not torch.equal(first[i][k], other_seed[i][k]) for i in range(2) for k in ("A", "B"))
    epoch3 = [first[i]["A"] for i in range(2)]
    first.set_epoch(4)
    assert any(not torch.equal(first[i]["A"], epoch3[i]) for i in range(2))


def test_mask_follows_the_resized_crop(tmp_path):
    root, masks = tmp_path / "data", tmp_path / "masks"
    for sub in ("trainA", "trainB"):
        (root / sub).mkdir(parents=True)
        (masks / sub).mkdir(parents=True)
        arr = np.zeros((32, 32), np.uint8)
        arr[4:20, 6:26] = 255
        Image.fromarray(np.stack([arr] * 3, -1)).save(root / sub / "0.png")
        Image.fromarray(arr).save(masks / sub / "0.png")
    ds = dataset(str(root), "--aug_prob", "1", "--preprocess", "none", "--mask_dir", str(masks))
    zoomed = 0
    for epoch in range(4):
        ds.set_epoch(epoch)
        item = ds[0]
        img, mask = (item["A"][0] + 1) / 2, item["A_mask"][0]
        zoomed += not torch.equal(mask, torch.from_numpy(arr / 255.0).float())
        assert (img - mask).abs().mean() < 0.03  # bicubic image vs bilinear mask: same box
    assert zoomed >= 2


# ---------------------------------------------------------------------------------------------------------
# end to end


def test_one_training_step_with_the_data_options(synthetic_root, tmp_path):
    argv = ["--model", "ugatit_enhanced", "--dataroot", synthetic_root, "--name", "hist", "--checkpoints_dir",
            str(tmp_path), *TINY, "--iteration", "1", "--match_histograms", "--match_mode", "hsv",
            "--match_prob", "0.5", "--match_ratio", "0.8", "--aug_prob", "1"]  # fmt: skip
    assert train.main(argv) == 0
    saved = (tmp_path / "hist" / "opt.txt").read_text()
    assert "match_histograms: True" in saved and "aug_prob: 1.0" in saved
