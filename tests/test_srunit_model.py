"""SRUNIT: options, the SR loss against the official formula, v1/v2 gradients, inactive epochs, FD, CLI."""

from __future__ import annotations

import os

import pytest
import torch
from conftest import directional_errors

import models
import test as test_script
import train
from models.networks.heads import sample_patch_ids
from options import TrainOptions
from util.checkpoint import load_checkpoint

SMALL = ["--netF_nc", "64", "--num_patches", "16"]


def make_model(train_args, *extra, double=False):
    opt = TrainOptions().parse(train_args(*SMALL, *extra, model="srunit"), save=False)
    torch.manual_seed(0)
    net = models.create_model(opt)
    return net.double() if double else net


def images(n=1, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(n, 3, 32, 32, generator=g, dtype=dtype) * 2 - 1 for k in ("A", "B")}


def tap_shapes(model):
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        return [
            f.shape[1:] for f in model.netG.encode(torch.zeros(1, 3, 32, 32, dtype=dtype), model.nce_layers)
        ]


def sr_draws(model, choice, n=1, seed=3):
    """Every random value one SR loss needs: choice, raw randn, raw uniform, patch ids."""
    c, h, w = tap_shapes(model)[choice]
    g = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    return dict(
        sr_choice=[choice],
        sr_noise=[torch.randn(n, c, h, w, generator=g, dtype=dtype)],
        sr_magnitude=[torch.rand(n, 1, h, w, generator=g, dtype=dtype)],
        sr_patch_ids=[[sample_patch_ids(h * w, model.opt.num_patches, g)]],
    )


def nce_ids(model, seed=4):
    g = torch.Generator().manual_seed(seed)
    return [sample_patch_ids(s[1] * s[2], model.opt.num_patches, g) for s in tap_shapes(model)]


def snapshot(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


# ---------------------------------------------------------------- options


def test_options_defaults_alias_and_validation(train_args):
    opt = TrainOptions().parse(train_args(model="srunit"), save=False)
    assert (opt.reg_type, opt.reg, opt.reg_noise, opt.reg_layers, opt.inact_epochs, opt.D_noise) == (
        "v2",
        0.001,
        0.001,
        "0,1,2,3,4",
        100,
        0.0,
    )
    assert (opt.save_epoch_freq, opt.n_epochs, opt.n_epochs_decay, opt.nce_idt, opt.lambda_NCE) == (
        25,
        200,
        200,
        True,
        1.0,
    )
    assert (opt.inact_freeze_G, opt.sr_noise_mode, opt.sr_anchor) == (False, "sampled", "input")
    # Bug #7: the README's --init_epochs is the same option.
    assert (
        TrainOptions().parse(train_args("--init_epochs", "7", model="srunit"), save=False).inact_epochs == 7
    )
    for bad in (
        ["--reg_layers", "0,5"],
        ["--netF", "sample"],
        ["--reg_type", "v3"],
        ["--sr_noise_mode", "x"],
    ):
        with pytest.raises(SystemExit):
            TrainOptions().parse(train_args(*bad, model="srunit"), save=False)
    # --reg 0 is the README's CUT baseline: no SR loss, F may even be a plain sampler.
    assert (
        TrainOptions().parse(train_args("--reg", "0", "--netF", "sample", model="srunit"), save=False).reg
        == 0
    )


# ---------------------------------------------------------------- the SR loss


def test_perturbation_norm_is_m_when_sampled_and_reg_noise_when_fixed(train_args):
    feat = torch.randn(2, 5, 6, 6)
    for mode, expected in (("sampled", None), ("fixed", 0.001)):
        model = make_model(train_args, "--sr_noise_mode", mode)
        delta, m = model.sample_perturbation(feat)
        assert m.shape == (2, 1, 6, 6) and float(m.min()) >= 1e-7 and float(m.max()) <= 0.001
        norms = delta.norm(dim=1, keepdim=True)
        torch.testing.assert_close(norms, m if expected is None else torch.full_like(m, expected))


def official_reg_loss(model, real_A, draws, reg_noise, sampled):
    """The official compute_reg_loss, transcribed (permute gather, SRUNIT Normalize, explicit G loops)."""
    G, layers = list(model.netG.model), model.nce_layers
    choice = draws["sr_choice"][0]
    feat, feats = real_A, []
    for i, module in enumerate(G):
        feat = module(feat)
        if i in layers:
            feats.append(feat)
    layer, f = layers[choice], feats[choice]
    noise = draws["sr_noise"][0]
    unit = noise / (noise.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-12)
    mag = 1e-7 + (reg_noise - 1e-7) * draws["sr_magnitude"][0]
    x = f + unit * (mag if sampled else reg_noise)
    for module in G[layer + 1 :] + G[: layer + 1]:
        x = module(x)
    ids = draws["sr_patch_ids"][0][0]
    mlp = getattr(model.netF, f"mlp_{choice}")

    def embed(t):
        s = mlp(t.permute(0, 2, 3, 1).flatten(1, 2)[:, ids, :].flatten(0, 1)) + 1e-12
        return s / s.pow(2).sum(1, keepdim=True).pow(0.5)

    d = ((embed(x) - embed(f)).pow(2).sum(-1) + 1e-12).pow(0.5)
    return (d / mag.flatten(1, 3)[:, ids].flatten(0, 1)).mean() / len(layers)


@pytest.mark.parametrize("mode,choice", [("fixed", 4), ("fixed", 0), ("sampled", 2)])
def test_reg_loss_equals_the_official_formula(train_args, mode, choice):
    model = make_model(
        train_args, "--sr_noise_mode", mode, "--nce_idt", "False", "--batch_size", "2", double=True
    )
    data = images(n=2, dtype=torch.float64)
    model.set_input(data)
    draws = sr_draws(model, choice, n=2)
    model.inject_draws(**draws)
    with torch.no_grad():
        model.forward()
        ours = model.compute_reg_loss()
        official = official_reg_loss(model, data["A"], draws, 0.001, mode == "sampled")
    torch.testing.assert_close(ours, official, rtol=1e-10, atol=0)
    assert float(ours) > 0


def test_reg_gradient_matches_finite_differences_in_float64_at_batch_1(train_args):
    model = make_model(train_args, "--nce_idt", "False", double=True)
    model.set_input(images(dtype=torch.float64))
    draws = sr_draws(model, choice=4)
    draws["sr_magnitude"] = [0.5 + 0.5 * draws["sr_magnitude"][0]]  # keep 1/m moderate

    def loss():
        model.inject_draws(**draws)
        model.forward()
        return model.compute_reg_loss()

    errors = directional_errors(loss, model.netG.model[1].weight)  # float64, steps 1e-7 .. 1e-9
    assert min(errors) <= 1e-6, errors


# ---------------------------------------------------------------- step semantics


def gradients(model, which):
    return {
        k: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
        for k, p in getattr(model, which).named_parameters()
    }


def run_step(train_args, *extra, epoch=2, choice=2):
    # Gradients are read after the step: keep them (they are released after each step by default).
    model = make_model(
        train_args, "--lr", "0", "--inact_epochs", "1", "--no-free_grads_after_step", *extra, double=True
    )
    model.set_input(images(dtype=torch.float64))
    ids = nce_ids(model)
    draws = sr_draws(model, choice)
    model.inject_draws(patch_ids=[ids, ids])  # NCE(A, G(A)) and NCE(B, G(B))
    model.inject_draws(**draws)
    model.set_progress(epoch, 0)
    model.optimize_parameters()
    return model


def assert_same_gradients(a: dict, b: dict, keys=None) -> None:
    """Equal up to float64 noise, measured against the largest gradient (biases before an InstanceNorm have
    mathematically zero gradients, so their values are pure rounding noise)."""
    scale = max(float(g.abs().max()) for g in b.values())
    for k in keys if keys is not None else a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-9 * scale, msg=k)


def test_v1_and_v2_gradients(train_args):
    v1 = run_step(train_args, "--reg_type", "v1")
    v2 = run_step(train_args, "--reg_type", "v2")
    cut = run_step(train_args, "--reg_type", "v2", epoch=1)  # inactive epoch: the plain CUT step
    reg1, reg2 = float(v1.loss_reg.detach()), float(v2.loss_reg.detach())
    assert reg1 == pytest.approx(reg2, rel=1e-12) and reg1 > 0 and float(cut.loss_reg) == 0.0
    # G gets L_G + reg * L_reg in both versions, and that differs from the CUT step.
    g1, g2, g_cut = gradients(v1, "netG"), gradients(v2, "netG"), gradients(cut, "netG")
    assert_same_gradients(g1, g2)
    with pytest.raises(AssertionError):
        assert_same_gradients(g2, g_cut)
    # F: v1 gets the CUT gradient only; v2 adds the SR part, in the chosen layer's MLP (index 2) only.
    f1, f2, f_cut = gradients(v1, "netF"), gradients(v2, "netF"), gradients(cut, "netF")
    assert_same_gradients(f1, f_cut)
    assert_same_gradients(f2, f_cut, [k for k in f2 if not k.startswith("mlp_2.")])
    for k in [k for k in f2 if k.startswith("mlp_2.")]:
        with pytest.raises(AssertionError):
            assert_same_gradients(f2, f_cut, [k])
    assert all(p.requires_grad for p in v1.netF.parameters())  # v1 unfreezes F again


def test_inactive_epochs_train_G_by_default_and_freeze_it_officially(train_args):
    for freeze, g_moves in ((False, True), (True, False)):
        model = make_model(train_args, "--inact_epochs", "1", *(["--inact_freeze_G"] if freeze else []))
        model.set_input(images())
        before = {n: snapshot(getattr(model, n)) for n in ("netG", "netF", "netD")}
        model.set_progress(1, 0)
        model.optimize_parameters()
        for name in ("netG", "netF", "netD"):
            after = snapshot(getattr(model, name))
            moved = any(not torch.equal(after[k], before[name][k]) for k in after)
            assert moved == (g_moves or name == "netD"), (freeze, name)
        assert float(model.loss_reg) == 0.0 and torch.isfinite(model.loss_G)


def test_fastcut_mode_flips_like_cut_and_keeps_real_B(train_args):
    # Bugs #2/#3: the official SRUNIT asserts on flipped steps and empties real_B without nce_idt.
    model = make_model(train_args, "--CUT_mode", "FastCUT", "--inact_epochs", "0")
    data = images()
    model.set_input(data)
    model.inject_draws(flip=[True], patch_ids=[nce_ids(model)], **sr_draws(model, choice=1))
    model.set_progress(1, 0)
    model.optimize_parameters()
    assert model.flipped_for_equivariance and "NCE_Y" not in model.loss_names
    assert torch.equal(model.real_A, data["A"]) and torch.equal(model.real_B, data["B"])
    losses = model.get_current_losses()
    assert all(torch.isfinite(v) for v in losses.values()) and float(losses["D_real"]) > 0
    assert float(losses["reg"]) > 0


def test_official_checkpoints_load(train_args, tmp_path):
    source = make_model(train_args)
    for name, label in (("netG", "G"), ("netF", "F"), ("netD", "D")):
        state = {
            "module." + k: v for k, v in getattr(source, name).state_dict().items() if not k.endswith("filt")
        }
        torch.save(state, tmp_path / f"latest_net_{label}.pth")
    torch.manual_seed(5)
    target = models.create_model(TrainOptions().parse(train_args(*SMALL, model="srunit"), save=False))
    assert target.import_official(str(tmp_path), "latest", ["netG", "netF", "netD"])
    for name in ("netG", "netF", "netD"):
        a, b = snapshot(getattr(source, name)), snapshot(getattr(target, name))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_train_and_test_scripts_run(train_args, inference_args, tmp_path):
    flags = "--n_epochs 1 --n_epochs_decay 0 --max_dataset_size 1 --init_epochs 0".split()
    args = train_args(*SMALL, *flags, name="sr_cli", model="srunit")
    assert train.main(args) == 0
    ckpt = load_checkpoint(str(tmp_path / "checkpoints" / "sr_cli" / "latest.pth"))
    assert set(ckpt["networks"]) == {"netG", "netF", "netD"}
    out = tmp_path / "out"
    outputs = ["--results_dir", str(tmp_path / "results"), "--num_test", "1", "--output_path", str(out)]
    assert test_script.main(inference_args(*outputs, name="sr_cli", model="srunit")) == 0
    assert len(os.listdir(out)) == 1


@pytest.mark.parametrize("split", [False, True])
def test_official_path_translates_A_and_B_in_two_batch1_passes(train_args, split):
    """As the official SRUNIT forward: G(A), then G(B), never one batch-2 pass on cat(A, B)."""
    model = make_model(train_args, "--inact_epochs", "0", *([] if split else ["--no-split_idt_backward"]))
    passes = []
    model.netG.model[0].register_forward_hook(lambda m, args, out: passes.append(args[0].shape[0]))
    model.set_input(images())
    model.set_progress(1, 0)
    model.forward()
    assert passes == ([1] if split else [1, 1])  # split: G(B) waits for the backward of G(A)'s losses
    if not split:
        assert model.idt_B.shape == model.real_B.shape and model.feats_domains == "AB"
        with torch.no_grad():
            expected = [model.netG.encode(x, model.nce_layers) for x in (model.real_A, model.real_B)]
        for got, a, b in zip(model.feats_real, *expected):
            torch.testing.assert_close(got, torch.cat((a, b)))
    model.optimize_parameters()
    assert torch.isfinite(model.loss_G) and float(model.loss_reg.detach()) > 0
