"""U-GAT-IT and enhanced-U-GAT-IT models: one iteration's losses and invariants, lr schedule, official files,
inference panels, the fork's options, and train.py/test.py end to end. Tiny setting: light, 96 px, ch 4."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train
from models.ugatit_support import UGATITDecay, find_official_file, heatmap_image
from options import TestOptions, TrainOptions
from util.checkpoint import CheckpointError

TINY = ["--gpu_ids", "-1", "--ch", "4", "--img_size", "96", "--light", "True", "--display_id", "0",
        "--num_threads", "0", "--no_progress"]  # fmt: skip
TEST_TINY = [a for i, a in enumerate(TINY) if "--display_id" not in TINY[max(i - 1, 0) : i + 1]]
# Discriminators shallow enough for 32 px data tests (the 7-layer global D needs 96 px)
SMALL_D = ["--n_global_dis", "5", "--n_local_dis", "3"]
G_NAMES = ("genA2B", "genB2A")
D_NAMES = ("disGA", "disGB", "disLA", "disLB")


def build(*extra: str, model: str = "ugatit", iteration: int = 10):
    opt = TrainOptions().parse(["--model", model, *TINY, "--iteration", str(iteration), *extra], save=False)
    from models import create_model

    torch.manual_seed(0)
    m = create_model(opt)
    m.setup()
    return m


def batch(seed: int = 0, masks: bool = False) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {
        "A": torch.rand(1, 3, 96, 96, generator=g) * 2 - 1,
        "B": torch.rand(1, 3, 96, 96, generator=g) * 2 - 1,
    }
    if masks:
        mask = torch.zeros(1, 1, 96, 96)
        mask[..., 20:70, 25:75] = 1
        out["A_mask"], out["B_mask"] = mask, mask.flip(-1)
    return out


def step(m, b: dict, global_step: int = 0) -> None:
    m.set_progress(1, global_step)
    m.set_input(b)
    m.optimize_parameters()
    m.on_step_end()


def snapshot(net) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


# ---------------------------------------------------------------------------------------------------------
# official model


@pytest.fixture(scope="module")
def stepped():
    m = build()
    before = {n: snapshot(getattr(m, n)) for n in (*G_NAMES, *D_NAMES)}
    calls = {n: 0 for n in (*G_NAMES, *D_NAMES)}
    for n in calls:
        getattr(m, n).register_forward_pre_hook(lambda mod, inp, n=n: calls.__setitem__(n, calls[n] + 1))
    step(m, batch())
    return m, before, calls


def test_losses_official_names_and_closed_forms(stepped):
    m, _, _ = stepped
    losses = m.get_current_losses()
    assert list(losses)[:3] == ["D_ad_loss_GA", "D_ad_cam_loss_GA", "D_ad_loss_LA"]
    assert {"Discriminator_loss", "Generator_loss", "G_cam_loss_A", "G_recon_loss_B"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    t = losses
    d_a = t["D_ad_loss_GA"] + t["D_ad_cam_loss_GA"] + t["D_ad_loss_LA"] + t["D_ad_cam_loss_LA"]
    torch.testing.assert_close(t["D_loss_A"], d_a)
    torch.testing.assert_close(t["Discriminator_loss"], t["D_loss_A"] + t["D_loss_B"])
    g_b = (t["G_ad_loss_GB"] + t["G_ad_cam_loss_GB"] + t["G_ad_loss_LB"] + t["G_ad_cam_loss_LB"]
           + 10 * t["G_recon_loss_B"] + 10 * t["G_identity_loss_B"] + 1000 * t["G_cam_loss_B"])  # fmt: skip
    torch.testing.assert_close(t["G_loss_B"], g_b)
    torch.testing.assert_close(t["Generator_loss"], t["G_loss_A"] + t["G_loss_B"])
    torch.testing.assert_close(t["G_recon_loss_A"], (m.fake_A2B2A - m.real_A).abs().mean())
    # the CAM term dominates at the start (official: thousands)
    assert t["Generator_loss"] > 1000 * t["G_cam_loss_A"] * 0.5


def test_six_generator_calls_and_two_calls_per_discriminator(stepped):
    _, _, calls = stepped
    assert calls["genA2B"] + calls["genB2A"] == 6
    assert all(calls[d] == 2 for d in D_NAMES)  # real+fake batched in the D step, fake in the G step


OFFICIAL_PATH = ("--no-ugatit_fused_sn", "--no-ugatit_fused_norm", "--no-ugatit_fused_adam")


@pytest.fixture(scope="module")
def fast_and_official():
    """One step of the default (fused, batched) path and of the bit-exact official path, same start; with
    the order in which the networks were called."""
    out = []
    for extra in ((), OFFICIAL_PATH):
        m = build(*extra)
        order: list[str] = []
        for n in (*G_NAMES, *D_NAMES):
            getattr(m, n).register_forward_pre_hook(lambda mod, inp, n=n, o=order: o.append(n))
        step(m, batch())
        out.append((m, order))
    return out


def test_official_path_three_calls_per_discriminator(fast_and_official):
    (_, fast_order), (_, official_order) = fast_and_official
    assert all(official_order.count(d) == 3 for d in D_NAMES)
    assert all(fast_order.count(d) == 2 for d in D_NAMES)


def test_d_step_runs_before_cycle_and_identity_graphs(fast_and_official):
    """Only the two translations exist when D steps (less memory); the other four G calls come after,
    in the official order."""
    (_, order), _ = fast_and_official
    assert order == ["genA2B", "genB2A", "disGA", "disLA", "disGB", "disLB"] + [
        "genB2A", "genA2B", "genB2A", "genA2B", "disGA", "disLA", "disGB", "disLB"
    ]  # fmt: skip


def test_fast_path_equals_official_path(fast_and_official):
    """Fused norms and output-scaled, batched spectral norm are the same maths: same losses (float rounding
    aside), same weights after the step, and three power iterations per D as officially."""
    (fast, _), (official, _) = fast_and_official
    a, b = fast.get_current_losses(), official.get_current_losses()
    assert list(a) == list(b)
    for key in a:
        torch.testing.assert_close(torch.as_tensor(a[key]), torch.as_tensor(b[key]), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(fast.fake_A2B, official.fake_A2B, rtol=1e-4, atol=1e-5)
    for name in (*G_NAMES, *D_NAMES):
        fast_state, official_state = snapshot(getattr(fast, name)), snapshot(getattr(official, name))
        for key, value in official_state.items():
            # Adam's first step is ~lr·sign(grad): a few entries whose grad is ~0 may move differently.
            close = torch.isclose(fast_state[key], value, rtol=1e-5, atol=1e-6)
            assert close.float().mean() > 0.999, (name, key)
    # Really the other code path (whether its outputs round alike is the CPU's business, not asserted):
    assert fast.optimizers["D"].defaults["fused"] and not official.optimizers["D"].defaults["fused"]
    assert fast.genA2B.UpBlock1_1.norm1.fused and not official.genA2B.UpBlock1_1.norm1.fused
    assert fast.disGA.fused_sn and not official.disGA.fused_sn


def test_step_frees_gradients(fast_and_official):
    """Gradients are dropped right after each optimiser step (lower peak memory; the next step zeroes
    them anyway)."""
    for m, _ in fast_and_official:
        assert all(p.grad is None for n in (*G_NAMES, *D_NAMES) for p in getattr(m, n).parameters())


def test_one_adam_step_moves_weights_by_about_lr(stepped):
    m, before, _ = stepped
    for name in (*G_NAMES, *D_NAMES):
        after = snapshot(getattr(m, name))
        key = "DownBlock.1.weight" if name.startswith("gen") else "model.1.weight_orig"
        delta = (after[key] - before[name][key]).abs()
        assert 0.5e-4 < delta.max() < 1.5e-4, name
    u_before, u_after = before["disGA"]["model.1.weight_u"], m.disGA.model[1].weight_u
    assert not torch.equal(u_before, u_after)


def test_step_isolation_and_rho_clipping():
    m = build()
    with torch.no_grad():
        m.genA2B.UpBlock2[3].rho.fill_(-0.5)
        m.genA2B.UpBlock1_1.norm1.rho.fill_(1.5)
    m.set_input(batch())
    m.forward()
    m.backward(m.backward_D())
    assert all(p.grad is None for g in G_NAMES for p in getattr(m, g).parameters())  # fakes were detached
    m.zero_grad("D")
    m.set_requires_grad(m.discriminators(), False)
    m.backward(m.backward_G())
    assert all(p.grad is None for d in D_NAMES for p in getattr(m, d).parameters())
    m.step("G", "D")
    m.on_step_end()
    assert torch.all(m.genA2B.UpBlock2[3].rho == 0) and torch.all(m.genA2B.UpBlock1_1.norm1.rho == 1)


def test_lr_schedule_closed_form():
    f = UGATITDecay(10)
    assert [f(k) for k in range(10)] == pytest.approx([1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.0])
    assert UGATITDecay(7)(6) == 0.0 and UGATITDecay(7)(4) == pytest.approx(1 / 3)  # odd N: never negative
    assert UGATITDecay(1)(0) == 1.0 and UGATITDecay(10, decay=False)(9) == 1.0
    m = build(iteration=2)  # lr of step 1: lr0; of step 2: 0 (half = 1)
    lrs = []
    for k in range(2):
        lrs.append(m.optimizers["G"].param_groups[0]["lr"])
        step(m, batch(k), k)
    assert lrs == pytest.approx([1e-4, 0.0])
    assert m.optimizers["D"].param_groups[0]["lr"] == 0.0


def test_weight_decay_norm_groups():
    m = build("--no-weight_decay_norms")
    groups = m.optimizers["G"].param_groups
    assert groups[1]["weight_decay"] == 0.0 and groups[0]["weight_decay"] == 1e-4
    assert any(p is m.genA2B.UpBlock1_1.norm1.rho for p in groups[1]["params"])
    assert sum(len(g["params"]) for g in groups) == len(list(m.genA2B.parameters())) * 2


def test_fast_d_changes_the_numbers():
    official, fast = build(), build("--ugatit_fast_d")
    step(official, batch())
    step(fast, batch())
    a, b = official.get_current_losses(), fast.get_current_losses()
    # One power iteration for real+fake instead of one each (the D loss moves by rounding only, ~2e-7: not
    # asserted), and none in the eval-mode G step: the G loss moves by ~7e-4, far above float32 rounding.
    g_a, g_b = float(a["G_ad_loss_GA"]), float(b["G_ad_loss_GA"])
    assert abs(g_a - g_b) > 1e-5 * abs(g_a)


# ---------------------------------------------------------------------------------------------------------
# official checkpoints and inference


def test_official_checkpoint_import(tmp_path):
    src = build()
    with torch.no_grad():  # make src differ from a fresh (equally seeded) build, SN vectors included
        for t in src.official_state().values():
            for v in t.values():
                v.add_(torch.randn_like(v) * 0.01)
    folder = tmp_path / "selfie2anime" / "model"
    folder.mkdir(parents=True)
    torch.save(src.official_state(), folder / "selfie2anime_params_0000100.pt")
    torch.save(build().official_state(), folder / "selfie2anime_params_0000099.pt")
    assert find_official_file(str(tmp_path / "selfie2anime"), "latest").endswith("_0000100.pt")
    assert find_official_file(str(tmp_path / "selfie2anime"), "99").endswith("_0000099.pt")
    dst = build()
    assert dst.import_official(str(tmp_path / "selfie2anime"), "100", list(dst.model_names))
    for name in (*G_NAMES, *D_NAMES):
        a, b = snapshot(getattr(src, name)), snapshot(getattr(dst, name))
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not dst.import_official(str(tmp_path), "latest", ["genA2B"])
    fork = build(model="ugatit_enhanced")
    torch.save(fork.official_state(), tmp_path / "fork_params_latest.pt")
    with pytest.raises(CheckpointError, match="unexpected keys: .*gap_fc.bias"):
        dst.load_official_file(str(tmp_path / "fork_params_latest.pt"), ["genA2B"])
    trained = build("--official_ckpt", str(folder / "selfie2anime_params_0000100.pt"))
    assert torch.equal(trained.disLB.conv.weight_u, src.disLB.conv.weight_u)


def test_translate_panels_and_heatmaps():
    opt = TestOptions().parse(["--model", "ugatit", *TEST_TINY, "--save_panels"], save=False)
    from models import create_model

    m = create_model(opt)
    with torch.no_grad():
        out = m.translate(batch()["B"], "BtoA")
    assert list(out) == [
        "real_B",
        "heatmap_B2B",
        "fake_B2B",
        "heatmap_B2A",
        "fake_A",
        "heatmap_B2A2B",
        "rec_B",
    ]
    assert all(v.shape == (1, 3, 96, 96) and v.abs().max() <= 1 for v in out.values())
    flat = heatmap_image(torch.zeros(2, 1, 4, 4), (8, 8))  # official: NaN (bug 8)
    assert torch.isfinite(flat).all()
    ramp = heatmap_image(torch.arange(4.0).view(1, 1, 2, 2), (2, 2))
    assert torch.equal(ramp[0, :, 0, 0], torch.tensor([-1.0, -1.0, 0.0]))  # minimum → dark blue
    assert torch.equal(ramp[0, :, 1, 1], torch.tensor([0.0, -1.0, -1.0]))  # maximum → dark red


# ---------------------------------------------------------------------------------------------------------
# enhanced-U-GAT-IT options


def test_enhanced_ema_copy_then_average():
    m = build("--ema_start", "0.5", "--decay_flag", "False", model="ugatit_enhanced", iteration=2)
    weight = lambda net: net.DownBlock[1].weight  # noqa: E731
    step(m, batch(), 0)  # step 1 <= 0.5·2: a plain copy
    assert torch.equal(weight(m.genA2B_ema), weight(m.genA2B))
    ema_before = weight(m.genA2B_ema).clone()
    step(m, batch(1), 1)  # step 2 > 1: θ_ema ← β·θ_ema + (1 − β)·θ
    expected = 0.9999 * ema_before + (1 - 0.9999) * weight(m.genA2B)
    torch.testing.assert_close(weight(m.genA2B_ema), expected, rtol=0, atol=1e-7)
    assert not torch.equal(weight(m.genA2B_ema), weight(m.genA2B))
    assert weight(m.genA2B_ema).grad_fn is None and not weight(m.genA2B_ema).requires_grad


def d_losses(*extra: str):
    m = build(*extra, model="ugatit_enhanced")
    m.set_input(batch())
    m.forward()
    m.backward_D()
    return m.loss_D_loss_A, m.loss_D_loss_B


def test_enhanced_per_direction_adv_weights():
    loss_a, loss_b = d_losses("--forward_adv_weight", "0")
    assert loss_b == 0 and loss_a > 0  # forward = A→B, judged by the domain-B discriminators
    loss_a, loss_b = d_losses("--forward_adv_weight", "0", "--adv_dir_legacy")
    assert loss_a == 0 and loss_b > 0


def test_enhanced_options_one_step():
    m = build("--has_blur", "--tv_loss", "--seg_fix_weight", "5", "--seg_D_mask", "--seg_G_detach",
              "--seg_D_cam_fea_mask", "--seg_D_cam_inp_mask", "--use_se", "--attention_gan", "2",
              "--attention_input", "--cam_D_weight", "0.5", "--mask_dir", "unused", model="ugatit_enhanced")  # fmt: skip
    step(m, batch(masks=True))
    losses = m.get_current_losses()
    assert {"G_seg_loss", "G_tv_loss"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())
    t = losses
    d_a = t["D_ad_loss_GA"] + t["D_ad_loss_LA"] + 0.5 * (t["D_ad_cam_loss_GA"] + t["D_ad_cam_loss_LA"])
    torch.testing.assert_close(t["D_loss_A"], d_a)
    assert m.rho_clipper.adaptive_max == 0.9
    assert m.disGA.training  # D back in training mode after the eval-mode G step


def test_mask_follows_flip_and_crop(tmp_path):
    root = tmp_path / "data"
    for sub in ("trainA", "trainB"):
        (root / sub).mkdir(parents=True)
        (tmp_path / "masks" / sub).mkdir(parents=True)
        for i in range(2):
            arr = np.zeros((40, 40), np.uint8)
            arr[5:20, 3 + i : 30] = 255  # asymmetric, so a flip or a shifted crop would show
            Image.fromarray(np.stack([arr] * 3, -1)).save(root / sub / f"{i}.png")
            Image.fromarray(arr).save(tmp_path / "masks" / sub / f"{i}.png")
    opt = TrainOptions().parse(["--model", "ugatit", *TINY, "--img_size", "32", "--dataroot", str(root),
                                "--mask_dir", str(tmp_path / "masks"), *SMALL_D], save=False)  # fmt: skip
    from data import create_dataset

    ds = create_dataset(opt)
    seen = set()
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            for key in ("A", "B"):
                img = (item[key][0] + 1) / 2
                torch.testing.assert_close(item[f"{key}_mask"][0], img, atol=1e-6, rtol=0)
                mask = item[f"{key}_mask"][0]
                assert mask.min() < 0.1 and mask.max() > 0.9
                seen.add(tuple(mask.flatten().round(decimals=2).tolist()))
    assert len(seen) > 3  # different crops and flips were drawn, and each mask followed its image


# ---------------------------------------------------------------------------------------------------------
# end to end


@pytest.mark.parametrize("model", ["ugatit", "ugatit_enhanced"])
def test_train_then_test_scripts(synthetic_root, tmp_path, model):
    common = ["--model", model, "--dataroot", synthetic_root, "--name", "u", "--checkpoints_dir",
              str(tmp_path / "ck"), *TINY]  # fmt: skip
    assert train.main([*common, "--iteration", "1"]) == 0
    extra = ["--save_panels"] if model == "ugatit" else ["--save_heatmaps"]
    argv = [a for i, a in enumerate(common) if "--display_id" not in common[max(i - 1, 0) : i + 1]]
    assert test_script.main([*argv, "--results_dir", str(tmp_path / "res"), "--num_test", "2", *extra]) == 0
    images = os.listdir(tmp_path / "res" / "u" / "test_latest" / "images")
    assert any(f.endswith("_fake_B.png") for f in images) and any(f.endswith("_fake_A.png") for f in images)
    assert any("heatmap" in f for f in images)
