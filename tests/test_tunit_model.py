"""TUNIT model: parity with the official training step, schedule, queue, EMA, import, data, train/test smoke."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import platform
import re

import numpy as np
import pytest
import torch
from PIL import Image
from tolerance import DIRECTIONS, assert_close_to_recorded, nudge_, one_ulp

import models
from models.tunit_support import TunitSchedule, copy_buffers, ema_update, official_checkpoint_path
from options import TestOptions, TrainOptions

TINY_NETS = ["--output_k", "4", "--sty_dim", "16", "--tunit_g_nf", "8", "--tunit_g_nf_mlp", "32",
             "--tunit_c_widths", "4,M,8,M,16,16,M,32,32,M,32,32,M"]  # fmt: skip
TINY_D = ["--tunit_d_nf", "8", "--tunit_d_max_nf", "32"]
COMMON_TEST = [
    "--gpu_ids",
    "-1",
    "--crop_size",
    "32",
    "--load_size",
    "32",
    "--num_threads",
    "0",
    "--no_progress",
]
COMMON = [*COMMON_TEST, "--display_id", "0"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = {"C": "netC", "C_EMA": "netC_ema", "D": "netD", "G": "netG", "G_EMA": "netG_ema"}


@pytest.fixture(scope="module")
def class_root(tmp_path_factory) -> str:
    from datasets.make_synthetic import make_synthetic

    return make_synthetic(str(tmp_path_factory.mktemp("tunit_data")), layout="class_folder", size=32, n_train=6,
                          n_test=2, seed=0, n_classes=4)  # fmt: skip


def build(root: str, *extra: str, seed: int = 1234):
    opt = TrainOptions().parse(["--model", "tunit", "--dataroot", root, *COMMON, *TINY_NETS, *TINY_D, *extra],
                               save=False)  # fmt: skip
    torch.manual_seed(seed)
    model = models.create_model(opt)
    model.train()
    return model


def inputs(batch: int = 4, size: int = 32):
    g = torch.Generator().manual_seed(99)
    x_tf0 = torch.randn(batch, 3, size, size, generator=g)
    x_org = torch.randn(batch, 3, size, size, generator=g).clamp(-1, 1)
    x_tf = torch.randn(batch, 3, size, size, generator=g).clamp(-1, 1)
    x_lab = torch.randn(batch, 3, size, size, generator=g).clamp(-1, 1)
    x_lab_tf = torch.randn(batch, 3, size, size, generator=g).clamp(-1, 1)
    return x_tf0, {"A": x_org, "A_tf": x_tf, "label": torch.tensor([0, 1, 2, 3]), "ref_idx": torch.tensor([2, 0, 3, 1]),
                   "L": x_lab, "L_tf": x_lab_tf, "L_label": torch.tensor([3, 2, 1, 0])}  # fmt: skip


def run_step(model, step: int, batch: dict) -> None:
    model.set_progress(1, step)
    model.set_input(batch)
    model.optimize_parameters()
    model.on_step_end()


def updates(model, before: dict) -> dict:
    """Sum over each network of |state - state_before| (parameters and float buffers), in float64."""
    out = {}
    for key, name in NAMES.items():
        sd = getattr(model, name).state_dict()
        out[key] = sum(float((v.double() - before[key][k].double()).abs().sum()) for k, v in sd.items()
                       if v.is_floating_point())  # fmt: skip
    return out


def snapshot(model) -> dict:
    return {key: copy.deepcopy(getattr(model, name).state_dict()) for key, name in NAMES.items()}


# --------------------------------------------------------------------------------------------------------
# Parity with clovaai/tunit: values produced by the official trainGAN_UNSUP (CPU, float32, torch 2.14) with
# the fast-test widths, seed 1234, the inputs of ``inputs()``, a startup queue C_EMA(x_tf0), iteration A at
# epoch 0 (C only), main.py's G_EMA := G, iteration B at epoch 66 with the startup queue again (quirk Q1).
# Our replay was bit-exact; the tolerances only allow for other CPU kernels.
# --------------------------------------------------------------------------------------------------------
OFFICIAL_A = {"C": 1.6595276594161987, "C_iic": -3.571858542272821e-08, "C_moco": 1.6595277786254883}
OFFICIAL_B = {"C": 0.1631401777267456, "C_iic": -1.5134446584852412e-07, "C_moco": 1.6314024925231934,
              "D": 16.72562026977539, "D_gp": 14.898797988891602, "D_adv": 1.82682204246521,
              "G": 0.8284231424331665, "G_adv": 0.7487504482269287, "G_rec": 0.6363780498504639,
              "G_sty": 1.6034871339797974}  # fmt: skip
OFFICIAL_UPDATES_A = {"C": 49.87994857, "C_EMA": 46.17029323, "D": 0.0, "G": 0.0, "G_EMA": 0.0}
OFFICIAL_UPDATES_B = {"C": 122.53517053, "C_EMA": 115.6014638, "D": 69.49258038, "G": 32.27839099,
                      "G_EMA": 4996.30793181}  # fmt: skip


STEPS = ["--tunit_official_step", "--no-tunit_official_step"]  # official op order / the fast default


def two_iterations(class_root: str, step: str, nudge: int = 0) -> dict[str, float]:
    """Losses and summed updates of iterations A and B; ``nudge`` +-1: inputs and weights moved by one ulp."""
    model = build(class_root, "--tunit_epoch_iters", "1", "--tunit_queue_reset_each_epoch", step)
    assert model.schedule.gan_start == 65 and model.schedule.ema_start == 66
    x_tf0, batch = inputs()
    if nudge:
        nudge_(model, nudge)
        x_tf0, batch = one_ulp(x_tf0, nudge), one_ulp(batch, nudge)
    init = snapshot(model)
    model.queue0 = model.netC_ema(x_tf0)["cont"].detach()  # official initialize_queue: C_EMA in train mode
    model.queue.reset(model.queue0)
    run_step(model, 0, batch)
    out = {f"A.{k}": v.item() for k, v in (("C", model.loss_C), ("C_iic", model.loss_C_iic),
                                          ("C_moco", model.loss_C_moco))}  # fmt: skip
    out.update({f"A.update_{k}": v for k, v in updates(model, init).items()})
    assert len(model.queue) == 4  # Q1 compatibility: back to the startup queue at the epoch end
    run_step(model, 66, batch)
    got = {"C": model.loss_C, "C_iic": model.loss_C_iic, "C_moco": model.loss_C_moco, "D": model.loss_D,
           "D_gp": model.loss_D_gp, "D_adv": model.loss_D_real + model.loss_D_fake, "G": model.loss_G,
           "G_adv": model.loss_G_adv, "G_rec": model.loss_G_rec, "G_sty": model.loss_G_sty}  # fmt: skip
    out.update({f"B.{k}": v.item() for k, v in got.items()})
    out.update({f"B.update_{k}": v for k, v in updates(model, init).items()})
    return out


@pytest.mark.parametrize("step", STEPS)
def test_two_iterations_match_the_official_code(class_root, step):
    """Recorded on one CPU from the official code: the tolerance is calibrated here (see tests/tolerance.py);
    IIC ~ 0 is round-off only (1e-6 absolute), updates sum |Adam steps| (1e-4 relative at least)."""
    clean = two_iterations(class_root, step)
    nudged = [two_iterations(class_root, step, nudge=d) for d in DIRECTIONS]
    expected = {**{f"A.{k}": v for k, v in OFFICIAL_A.items()}, **{f"B.{k}": v for k, v in OFFICIAL_B.items()}}
    for key, value in expected.items():
        if key.endswith("C_iic"):
            assert abs(clean[key] - value) <= 1e-6, key
        else:
            assert_close_to_recorded(key, value, clean[key], [n[key] for n in nudged])
    for phase, recorded in (("A", OFFICIAL_UPDATES_A), ("B", OFFICIAL_UPDATES_B)):
        for key, value in recorded.items():
            name = f"{phase}.update_{key}"
            assert_close_to_recorded(name, value, clean[name], [n[name] for n in nudged], rel=1e-4)


# Supervised (trainGAN_SUP, labels 0..3): epoch 0 (GAN from the start), then epoch 1 after G_EMA := G.
OFFICIAL_SUP = [
    {"C_moco": 1.6595277786254883, "D": 15.095582008361816, "D_gp": 13.181571006774902, "G": -0.3167436718940735,
     "G_adv": -0.3964059054851532, "G_rec": 0.6366451382637024, "G_sty": 1.5997694730758667},
    {"C_moco": 1.6304566860198975, "D": 7.9231109619140625, "D_gp": 5.8842668533325195, "G": -0.6815140247344971,
     "G_adv": -0.7610009908676147, "G_rec": 0.6361005902290344, "G_sty": 1.5876860618591309},
]  # fmt: skip
# Semi-supervised (trainGAN_SEMI, iters 2, p_semi 0.5, unsup_start 0, separated 0): one labelled iteration on
# (L, L_tf, L_label) then one unlabelled; upstream logs the mean over both (CE: labelled one, IIC: unlabelled one).
OFFICIAL_SEMI_MEANS = {"C": 0.884992316365242, "C_moco": 1.9282023310661316, "D": 10.942720890045166,
                       "G": -0.07621781527996063, "G_sty": 1.867241084575653}  # fmt: skip
OFFICIAL_SEMI_CE = 2.768688440322876


def supervised_and_semi_losses(class_root: str, step: str, nudge: int = 0) -> dict[str, float]:
    """The losses compared with OFFICIAL_SUP / _SEMI_*; ``nudge`` +-1: inputs and weights moved by one ulp."""
    prepare = (lambda m: nudge_(m, nudge)) if nudge else (lambda m: m)
    x_tf0, batch = inputs()
    if nudge:
        x_tf0, batch = one_ulp(x_tf0, nudge), one_ulp(batch, nudge)
    sup = prepare(build(
        class_root, "--p_semi", "1.0", "--tunit_epoch_iters", "1", "--tunit_queue_reset_each_epoch", step
    ))  # fmt: skip
    sup.queue0 = sup.netC_ema(x_tf0)["cont"].detach()
    sup.queue.reset(sup.queue0)
    out = {}
    for t, expected in enumerate(OFFICIAL_SUP):
        run_step(sup, t, batch)
        out.update({f"sup{t}.{k}": sup.get_current_losses()[k].item() for k in expected})
    semi = prepare(build(class_root, "--p_semi", "0.5", "--tunit_epoch_iters", "2", "--tunit_semi_warm_epochs",
                         "0", "--tunit_gan_start", "0", "--tunit_ema_start", "2", step))  # fmt: skip
    semi.queue0 = semi.netC_ema(x_tf0)["cont"].detach()
    semi.queue.reset(semi.queue0)
    losses = []
    for t in range(2):
        run_step(semi, t, batch)
        losses.append({k: v.item() for k, v in semi.get_current_losses().items()})
    out["semi.C_ce"] = losses[0]["C_ce"]
    out.update({f"semi.{k}": (losses[0][k] + losses[1][k]) / 2 for k in OFFICIAL_SEMI_MEANS})
    return out


@pytest.mark.parametrize("step", STEPS)
def test_supervised_and_semi_iterations_match_the_official_code(class_root, step):
    """Recorded on one CPU from the official code: the tolerance is calibrated here (see tests/tolerance.py)."""
    expected = {f"sup{t}.{k}": v for t, losses in enumerate(OFFICIAL_SUP) for k, v in losses.items()}
    expected.update({"semi.C_ce": OFFICIAL_SEMI_CE, **{f"semi.{k}": v for k, v in OFFICIAL_SEMI_MEANS.items()}})
    clean = supervised_and_semi_losses(class_root, step)
    nudged = [supervised_and_semi_losses(class_root, step, nudge=d) for d in DIRECTIONS]
    for key, value in expected.items():
        assert_close_to_recorded(key, value, clean[key], [n[key] for n in nudged])


# --------------------------------------------------------------------------------------------------------
# Schedule, queue, optimiser steps, EMA
# --------------------------------------------------------------------------------------------------------
def test_official_schedules_in_iterations():
    unsup = TunitSchedule("unsup")
    assert (unsup.gan_start, unsup.ema_start, unsup.total_steps) == (65_000, 66_000, 200_000)
    assert not unsup.labelled(0) and unsup.epoch_end(999) and not unsup.epoch_end(1000)
    sup = TunitSchedule("sup", p_semi=1.0)
    assert (sup.gan_start, sup.ema_start, sup.total_steps) == (0, 1000, 200_000) and sup.labelled(5)
    semi = TunitSchedule("semi", p_semi=0.2)
    # 20 warm-up epochs of 200 labelled iterations, then epochs of 200 labelled + 800 unlabelled ones.
    assert (semi.gan_start, semi.ema_start, semi.total_steps) == (19_000, 20_000, 184_000)
    assert semi.labelled(3999) and semi.epoch_end(199) and semi.locate(4000) == (20, 0, 1000)
    assert semi.labelled(4199) and not semi.labelled(4200) and semi.labelled(5000)
    assert TunitSchedule("semi", p_semi=0.01).warm_len == 100  # the official floor of 100 iterations
    assert TunitSchedule("unsup", gan_start=7, ema_start=9).gan_start == 7


def test_c_only_phase_then_gan_phase_steps_and_persistent_queue(class_root):
    model = build(class_root, "--tunit_epoch_iters", "2", "--tunit_gan_start", "3", "--tunit_ema_start", "4",
                  "--moco_k", "10")  # fmt: skip
    _, batch = inputs()
    d0, g0 = snapshot(model)["D"], snapshot(model)["G"]
    c_param = next(model.netC.parameters())
    sizes = []
    for t in range(3):
        run_step(model, t, batch)
        sizes.append(len(model.queue))
        assert model.optimizers["C"].state[c_param]["step"] == t + 1  # one C step per iteration
    assert sizes == [8, 10, 10]  # startup batch + one batch per iteration, capped at --moco_k
    assert all(torch.equal(v, d0[k]) for k, v in model.netD.state_dict().items())  # D and G untouched
    assert all(torch.equal(v, g0[k]) for k, v in model.netG.state_dict().items())
    run_step(model, 3, batch)
    assert model.optimizers["C"].state[c_param]["step"] == 5  # the G loss gives C a second step
    assert not all(torch.equal(v, d0[k]) for k, v in model.netD.state_dict().items())
    model.set_progress(1, 4)
    model.set_input(batch)
    model.optimize_parameters()  # ema_start: G_ema := G before the iteration's updates
    assert len(model.get_current_losses()) == len(model.loss_names)


def test_ema_helpers():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    b = copy.deepcopy(a)
    before = copy.deepcopy(a.state_dict())
    ema_update(a, b, 0.999)
    for k, v in a.state_dict().items():  # EMA of identical nets: a no-op up to float rounding
        torch.testing.assert_close(v, before[k], rtol=1e-6, atol=0)
    b(torch.randn(8, 3))
    with torch.no_grad():
        b[0].weight.add_(1.0)
    ema_update(a, b, 0.9)
    torch.testing.assert_close(a[0].weight, before["0.weight"] + 0.1)
    assert torch.equal(a[1].running_mean, before["1.running_mean"])  # parameters only
    copy_buffers(a, b)
    assert torch.equal(a[1].running_mean, b[1].running_mean) and int(a[1].num_batches_tracked) == 1


def test_extra_state_round_trip(class_root, tmp_path):
    model = build(class_root, "--tunit_epoch_iters", "100")
    _, batch = inputs()
    run_step(model, 0, batch)
    path = tmp_path / "state.pth"
    torch.save(model.extra_state(), path)
    other = build(class_root)
    other.load_extra_state(torch.load(path, weights_only=True))
    assert torch.equal(other.queue.tensor, model.queue.tensor) and torch.equal(other.queue0, model.queue0)


@pytest.mark.parametrize("p_semi", ["1.0", "0.5"])
def test_supervised_and_semi_iterations(class_root, p_semi):
    model = build(class_root, "--p_semi", p_semi, "--tunit_epoch_iters", "2", "--tunit_semi_warm_epochs", "1")
    _, batch = inputs()
    for t in range(3):
        run_step(model, t, batch)
    losses = model.get_current_losses()
    if p_semi == "1.0":
        assert model.mode == "sup" and model.schedule.gan_start == 0 and "D" in losses
        assert torch.equal(model.y_org, batch["label"])  # ground-truth labels drive D and G
    else:
        assert model.mode == "semi" and "C_ce" in losses and model.schedule.labelled(2)
        assert model.schedule.gan_start == 2 + 34 * 2  # epoch 35: one warm epoch of 2 its, then 34 of 2
    assert all(torch.isfinite(v) for v in losses.values())


# --------------------------------------------------------------------------------------------------------
# Official checkpoints
# --------------------------------------------------------------------------------------------------------
def test_official_checkpoint_import(class_root, tmp_path):
    src = build(class_root, seed=1)
    official = {"epoch": 4568, "inceptionNet_state_dict": {"blocks.0.0.conv.weight": torch.zeros(1)}}
    for key, name in NAMES.items():
        sd = getattr(src, name).state_dict()
        if key == "G":  # pre-2020-06-17 names and a DataParallel prefix
            sd = {"module." + re.sub(r"\.model\.(\d+)\.model\.(\d+)\.model\.", r".model.\1.blocks.\2.block.", k): v
                  for k, v in sd.items()}  # fmt: skip
            assert "module.cnt_encoder.model.2.blocks.1.block.0.conv.weight" in sd  # 32 px: one downsampling
        official[f"{key}_state_dict"] = sd
    official.update({f"{k}_optimizer": src.optimizers[k.upper()].state_dict() for k in "cdg"})
    run_dir = tmp_path / "animalFaces10_0_00"
    run_dir.mkdir()
    torch.save(official, run_dir / "model_200.ckpt")
    (run_dir / "checkpoint.txt").write_text("model_100.ckpt\nmodel_200.ckpt\n")
    assert official_checkpoint_path(str(run_dir), "latest") == str(run_dir / "model_200.ckpt")
    assert official_checkpoint_path(str(run_dir), "150") is None

    dst = build(
        class_root, "--tunit_official_ckpt", str(run_dir / "model_200.ckpt"), "--tunit_start_iter", "200000"
    )
    for name in NAMES.values():
        ref = getattr(src, name).state_dict()
        assert all(torch.equal(v, ref[k]) for k, v in getattr(dst, name).state_dict().items()), name
    assert dst.max_steps() == 0  # 200 epochs of 1000 iterations were already done

    test_opt = TestOptions().parse(
        ["--model", "tunit", "--dataroot", class_root, *COMMON_TEST, *TINY_NETS], save=False
    )
    infer = models.create_model(test_opt)
    assert infer.import_official(str(run_dir), "latest", infer.inference_names)
    assert torch.equal(infer.netG_ema.mlp.model[0].fc.weight, src.netG_ema.mlp.model[0].fc.weight)


# --------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------
def test_tunit_dataset_views_and_splits(class_root):
    from data.tunit_dataset import TunitDataset

    opt = TrainOptions().parse(
        ["--model", "tunit", "--dataroot", class_root, *COMMON, *TINY_NETS], save=False
    )
    ds = TunitDataset(opt)
    assert ds.classes == sorted(os.listdir(os.path.join(class_root, "train"))) and len(ds) == 24
    item = ds[3]
    assert item["A"].shape == item["A_tf"].shape == (3, 32, 32) and item["label"] == 0
    assert item["A"].min() >= -1 and item["A"].max() <= 1 and not torch.equal(item["A"], item["A_tf"])
    again = ds[3]
    assert torch.equal(item["A"], again["A"]) and torch.equal(
        item["A_tf"], again["A_tf"]
    )  # pure of (seed, epoch, i)
    ds.set_epoch(5)
    assert not torch.equal(ds[3]["A_tf"], item["A_tf"])

    semi = TrainOptions().parse(["--model", "tunit", "--dataroot", class_root, *COMMON, *TINY_NETS, "--p_semi", "0.5",
                                 "--tunit_classes", "2_square,0_circle"], save=False)  # fmt: skip
    sds = TunitDataset(semi)
    assert sds.classes == ["2_square", "0_circle"] and len(sds) == 6 and len(sds.labelled_paths) == 6
    part = sds[0]
    assert {"L", "L_tf", "L_label"} <= set(part) and part["label"] == 0

    held = TrainOptions().parse(["--model", "tunit", "--dataroot", os.path.join(class_root, "train"), *COMMON,
                                 *TINY_NETS, "--tunit_holdout", "2"], save=False)  # fmt: skip
    assert len(TunitDataset(held)) == 16


def test_unknown_class_fails_with_the_folder_list(class_root):
    from data.image_io import DataError
    from data.tunit_dataset import TunitDataset

    opt = TrainOptions().parse(["--model", "tunit", "--dataroot", class_root, *COMMON, *TINY_NETS,
                                "--tunit_classes", "animal_faces10"], save=False)  # fmt: skip
    with pytest.raises(DataError, match="n02088364"):
        TunitDataset(opt)


# --------------------------------------------------------------------------------------------------------
# train.py / test.py
# --------------------------------------------------------------------------------------------------------
def test_train_then_test_scripts(class_root, tmp_path, capsys):
    import test as test_script
    import train

    ckpt = str(tmp_path / "ck")
    argv = ["--model", "tunit", "--dataroot", class_root, "--name", "tu", "--checkpoints_dir", ckpt, *COMMON,
            *TINY_NETS, *TINY_D, "--batch_size", "4", "--tunit_epoch_iters", "2", "--tunit_epochs", "2",
            "--tunit_gan_start", "1", "--tunit_ema_start", "2", "--no_html"]  # fmt: skip
    assert train.main(argv) == 0
    saved = torch.load(os.path.join(ckpt, "tu", "latest.pth"), weights_only=True)
    assert saved["progress"]["global_step"] == 4 and saved["model_state"]["queue"]["keys"].shape == (20, 16)
    out = tmp_path / "out"
    test_argv = ["--model", "tunit", "--dataroot", class_root, "--name", "tu", "--checkpoints_dir", ckpt, *COMMON_TEST,
                 *TINY_NETS, "--results_dir", str(tmp_path / "res"), "--input_dir",
                 os.path.join(class_root, "test", "0_circle"), "--output_path", str(out), "--eval"]  # fmt: skip
    assert test_script.main(test_argv) == 0
    written = sorted(os.listdir(out))
    assert written == ["0000.png", "0001.png"]
    images = os.listdir(tmp_path / "res" / "tu" / "test_latest" / "images")
    assert any("_to_cluster" in n for n in images) and any(n.endswith("_real_A.png") for n in images)
    assert np.asarray(Image.open(out / "0000.png")).shape == (32, 32, 3)

    spec = importlib.util.spec_from_file_location(
        "cluster_eval", os.path.join(ROOT, "scripts", "tunit", "cluster_eval.py")
    )
    cluster_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cluster_eval)
    styles = str(tmp_path / "styles.pt")
    eval_argv = ["--dataroot", class_root, "--name", "tu", "--checkpoints_dir", ckpt, *COMMON_TEST, *TINY_NETS,
                 "--phase", "test", "--tunit_cluster_net", "C", "--save_styles", styles]  # fmt: skip
    assert cluster_eval.main(eval_argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-2])
    assert report["images"] == 8 and sum(report["sizes"]) == 8 and 0.25 <= report["acc"] <= 1.0
    saved_styles = torch.load(styles, weights_only=True)
    assert saved_styles["styles"].shape == (len(saved_styles["clusters"]), 16)
    assert (
        test_script.main([*test_argv, "--tunit_styles", styles, "--output_path", str(tmp_path / "out2")]) == 0
    )
    assert sorted(os.listdir(tmp_path / "out2")) == ["0000.png", "0001.png"]


# (p_semi, iteration, GAN start): unsupervised and semi-unlabelled GAN iterations (pseudo labels from the
# updated C / from the pre-update p); the C-only, supervised and labelled steps are held to the official
# numbers by the parity tests above, which run both paths.
FAST_CASES = [("0.0", 0, "0"), ("0.5", 1, "0")]


@pytest.mark.parametrize("p_semi,t,gan_start", FAST_CASES)
def test_fast_step_equals_the_official_step(class_root, p_semi, t, gan_start):
    """One default iteration vs one --tunit_official_step iteration from the same state: the same maths in
    another float summation order (one trunk pass for several, one D backward, batched D calls)."""
    extra = ["--p_semi", p_semi, "--tunit_epoch_iters", "2", "--tunit_gan_start", gan_start, "--tunit_ema_start",
             gan_start, "--tunit_semi_warm_epochs", "0"]  # fmt: skip
    fast, official = build(class_root, *extra), build(class_root, *extra, "--tunit_official_step")
    _, batch = inputs()
    for m in (fast, official):
        run_step(m, t, batch)
    got, want = fast.get_current_losses(), official.get_current_losses()
    assert got.keys() == want.keys() and ("D" in want) == (gan_start == "0")
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-6, msg=key)
    if gan_start == "0":
        torch.testing.assert_close(fast.x_fake, official.x_fake, rtol=0, atol=1e-5)
        torch.testing.assert_close(fast.x_rec, official.x_rec, rtol=0, atol=1e-5)
        assert torch.equal(fast.y_org, official.y_org) and torch.equal(fast.y_ref, official.y_ref)
    for key, name in NAMES.items():
        sd_fast, sd_off = getattr(fast, name).state_dict(), getattr(official, name).state_dict()
        diffs = []
        for k, v in sd_off.items():
            if not v.is_floating_point():  # num_batches_tracked: one per official trunk pass
                assert torch.equal(sd_fast[k], v), (key, k)
                continue
            diffs.append((sd_fast[k] - v).abs().flatten())
            # Entries whose gradient is pure round-off (conv biases before BatchNorm, near-zero gradients)
            # may take other Adam/RMSprop steps of size ~lr; the rest, BN running statistics included, agree.
            assert float(diffs[-1].max()) < 3e-3, (key, k)
        assert float((torch.cat(diffs) > 1e-5).float().mean()) < 0.01, key


def test_fast_gan_step_releases_the_heap_before_the_d_step(class_root, monkeypatch):
    """The default GAN iteration hands freed heap pages back once, before the D step (its memory peak);
    the official-order step never does. Neither changes a number (see the parity tests)."""
    import models.tunit_model as tunit_model
    from models.tunit_support import release_free_heap

    events = []
    monkeypatch.setattr(tunit_model, "release_free_heap", lambda: events.append("release"))
    extra = ["--tunit_gan_start", "0", "--tunit_ema_start", "0"]
    _, batch = inputs()
    for flag, want in (("--no-tunit_official_step", ["release", "D"]), ("--tunit_official_step", ["D"])):
        model = build(class_root, *extra, flag)
        d_step = model._d_step
        monkeypatch.setattr(model, "_d_step", lambda x, f=d_step: (events.append("D"), f(x)))
        events.clear()
        run_step(model, 0, batch)
        assert events == want, flag
    assert release_free_heap() is (platform.libc_ver()[0] == "glibc")  # a no-op without glibc
