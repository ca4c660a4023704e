"""Each model's parse-time minimum image size (``min_image_size``) is the real one: a training step runs at it,
and the next size down is refused when the options are parsed (README model table)."""

from __future__ import annotations

import pytest
import torch

import data
import models
from options import TestOptions, TrainOptions

COMMON = ["--gpu_ids", "-1", "--display_id", "0", "--num_threads", "0", "--no_progress", "--batch_size", "1"]
TUNIT = ["--output_k", "2", "--sty_dim", "16", "--tunit_g_nf", "8", "--tunit_g_nf_mlp", "32", "--tunit_d_nf", "8",
         "--tunit_d_max_nf", "32", "--tunit_c_widths", "4,M,8,M,16,16,M,32,32,M,32,32,M"]  # fmt: skip


def sized(size: int) -> list[str]:
    return ["--load_size", str(size), "--crop_size", str(size)]


# model, width flags, size flags at the minimum, size flags one step below, the expected minimum
CASES = [
    ("cycle_gan", ["--ngf", "8", "--ndf", "8"], sized(24), sized(23), 24),
    ("cycle_gan", ["--ngf", "8", "--ndf", "8", "--netD", "n_layers", "--n_layers_D", "4"], sized(48), sized(47), 48),
    ("cut", ["--ngf", "8", "--ndf", "8", "--netF_nc", "16", "--num_patches", "8"], sized(24), sized(20), 24),
    ("liss", ["--ngf", "8", "--ndf", "8", "--auxiliary_tasks", "rotation,jigsaw"],
     [*sized(84), "--jigsaw_size", "84"], [*sized(80), "--jigsaw_size", "78"], 84),
    ("ugatit", ["--ch", "4", "--light", "True", "--n_res", "1", "--iteration", "1"],
     ["--img_size", "96"], ["--img_size", "92"], 96),
    ("unit", ["--ngf", "8", "--ndf", "8", "--num_scales", "2", "--max_iter", "1"], sized(32), sized(28), 32),
    ("tunit", TUNIT, sized(32), sized(16), 32),
]  # fmt: skip


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    from datasets.make_synthetic import make_synthetic

    base = tmp_path_factory.mktemp("sizes")
    return {
        "unaligned": make_synthetic(str(base / "u"), layout="unaligned", size=32, n_train=2, n_test=1, seed=0),
        "class_folder": make_synthetic(str(base / "c"), layout="class_folder", size=32, n_train=2, n_test=1,
                                       seed=0, n_classes=2),  # fmt: skip
    }


@pytest.mark.parametrize("model,widths,at_min,below,minimum", CASES, ids=lambda c: c if isinstance(c, str) else None)
def test_minimum_size_trains_and_the_next_size_down_is_refused(roots, tmp_path, capsys, model, widths, at_min,
                                                               below, minimum):  # fmt: skip
    root = roots["class_folder" if model == "tunit" else "unaligned"]
    base = ["--model", model, "--dataroot", root, "--checkpoints_dir", str(tmp_path), *COMMON, *widths]
    with pytest.raises(SystemExit):
        TrainOptions().parse([*base, *below], save=False)
    assert f"at least {minimum} x {minimum}" in capsys.readouterr().err
    opt = TrainOptions().parse([*base, *at_min], save=False)
    assert models.find_model_class(model).min_image_size(opt) == minimum
    torch.manual_seed(0)
    dataset = data.create_dataset(opt)
    loader = data.create_dataloader(dataset, opt, shuffle=False, batch_size=1, rank=0, world_size=1)
    data.set_epoch(loader, 1)
    net = models.create_model(opt)
    net.setup()
    net.set_progress(1, 0)
    net.set_input(next(iter(loader)))
    net.optimize_parameters()  # runs at the minimum
    losses = net.get_current_losses()
    assert losses and all(torch.isfinite(v).all() for v in losses.values())


@pytest.mark.parametrize("netG,minimum", [("resnet_9blocks", 8), ("unet_128", 128)])
def test_test_time_minimum_is_the_generators_and_runs(roots, netG, minimum):
    opt = TestOptions().parse(["--dataroot", roots["unaligned"], "--netG", netG, "--ngf", "8", *sized(minimum),
                               "--gpu_ids", "-1"], save=False)  # fmt: skip
    assert models.find_model_class("cycle_gan").min_image_size(opt) == minimum
    net = models.create_model(opt).eval()
    with torch.no_grad():
        out = net.translate(torch.zeros(1, 3, minimum, minimum), "AtoB")
    assert out["fake_B"].shape[-2:] == (minimum, minimum)
