"""CUT / FastCUT: presets, sizes, one-step semantics, the NCE loss, gradient correctness, official files, CLI."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from conftest import directional_errors

import models
import test as test_script
import train
from data.cut_unaligned_dataset import CUTUnalignedDataset
from models.losses.patchnce import patch_nce_loss
from models.networks import count_parameters
from models.networks.heads import sample_patch_ids
from options import TestOptions, TrainOptions
from util.checkpoint import load_checkpoint

SMALL = ["--netF_nc", "64", "--num_patches", "32"]


def make_model(train_args, *extra, model="cut", double=False):
    opt = TrainOptions().parse(train_args(*SMALL, *extra, model=model), save=False)
    torch.manual_seed(0)
    net = models.create_model(opt)
    return net.double() if double else net


def batch(n=1, size=32, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return {
        "A": torch.rand(n, 3, size, size, generator=g, dtype=dtype) * 2 - 1,
        "B": torch.rand(n, 3, size, size, generator=g, dtype=dtype) * 2 - 1,
    }


def fixed_ids(model, size=32, seed=1):
    """One id tensor per tapped layer, for a size x size input."""
    probe = torch.zeros(1, 3, size, size, dtype=next(model.parameters()).dtype)
    with torch.no_grad():
        shapes = [f.shape for f in model.netG.encode(probe, model.nce_layers)]
    g = torch.Generator().manual_seed(seed)
    return [sample_patch_ids(s[2] * s[3], model.opt.num_patches, g) for s in shapes]


def snapshot(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


# ---------------------------------------------------------------- options


def test_presets_come_from_parsed_options(train_args, monkeypatch):
    cut = TrainOptions().parse(train_args(model="cut"), save=False)
    assert (cut.nce_idt, cut.lambda_NCE, cut.flip_equivariance, cut.n_epochs, cut.n_epochs_decay) == (
        True,
        1.0,
        False,
        200,
        200,
    )
    assert (cut.pool_size, cut.init_type, cut.no_dropout, cut.dataset_mode) == (
        0,
        "xavier",
        True,
        "cut_unaligned",
    )
    assert (cut.num_patches, cut.nce_T, cut.netF, cut.nce_layers) == (256, 0.07, "mlp_sample", "0,4,8,12,16")
    # Bug #14: the official presets re-read sys.argv; ours depend only on the parsed list.
    monkeypatch.setattr(sys, "argv", ["train.py", "--CUT_mode", "FastCUT"])
    assert TrainOptions().parse(train_args(model="cut"), save=False).nce_idt is True
    fast = TrainOptions().parse(train_args("--CUT_mode", "FastCUT", model="cut"), save=False)
    assert (fast.nce_idt, fast.lambda_NCE, fast.flip_equivariance, fast.n_epochs, fast.n_epochs_decay) == (
        False,
        10.0,
        True,
        150,
        50,
    )
    # Explicit flags beat the preset.
    mixed = TrainOptions().parse(
        train_args("--CUT_mode", "fastcut", "--lambda_NCE", "3", "--nce_idt", "True", model="cut"), save=False
    )
    assert (mixed.lambda_NCE, mixed.nce_idt, mixed.flip_equivariance) == (3.0, True, True)
    with pytest.raises(SystemExit):  # a real choice list: "CU" is no longer accepted as a substring
        TrainOptions().parse(train_args("--CUT_mode", "CU", model="cut"), save=False)
    with pytest.raises(SystemExit):
        TrainOptions().parse(train_args("--netG", "unet_256", model="cut"), save=False)


# ---------------------------------------------------------------- sizes and keys


def test_parameter_counts_buffers_and_keys(train_args):
    full = TrainOptions().parse(train_args("--ngf", "64", "--ndf", "64", model="cut"), save=False)
    model = models.create_model(full)
    assert [count_parameters(model.netG), count_parameters(model.netD), count_parameters(model.netF)] == [
        11_378_179,
        2_764_737,
        560_384,
    ]
    assert sum(b.numel() for b in model.netG.buffers()) == 9_600
    assert sum(b.numel() for b in model.netD.buffers()) == 4_032
    g_keys, d_keys = model.netG.state_dict().keys(), model.netD.state_dict().keys()
    assert {f"model.{i}.filt" for i in (7, 11, 21, 25)} <= set(g_keys)
    assert {"model.2.filt", "model.6.filt", "model.10.filt", "model.14.weight"} <= set(d_keys)
    assert "mlp_4.2.bias" in model.netF.state_dict()
    small = make_model(train_args)  # ngf = ndf = 8, netF_nc 64
    assert [count_parameters(small.netG), count_parameters(small.netD), count_parameters(small.netF)] == [
        180_419,
        44_537,
        28_480,
    ]
    assert model.netF.nc == 256 and small.tap_channels() == [3, 16, 32, 32, 32]


# ---------------------------------------------------------------- one step


def test_one_step_changes_G_D_F_and_G_GAN_uses_the_updated_D(train_args):
    model = make_model(train_args)
    model.set_input(batch())
    before = {n: snapshot(getattr(model, n)) for n in model.model_names}
    model.optimize_parameters()
    for name in model.model_names:
        after = snapshot(getattr(model, name))
        assert any(not torch.equal(after[k], before[name][k]) for k in after if not k.endswith("filt")), name
    assert set(model.get_current_losses()) == {"G_GAN", "D_real", "D_fake", "G", "NCE", "NCE_Y"}
    assert model.idt_B.shape == model.fake_B.shape == (1, 3, 32, 32)
    with torch.no_grad():  # D did not move in the G step, so this recomputes the logged G_GAN exactly
        g_gan = ((model.netD(model.fake_B) - 1) ** 2).mean()
    torch.testing.assert_close(model.loss_G_GAN.detach(), g_gan, rtol=0, atol=0)
    expected_G = model.loss_G_GAN + 0.5 * (model.loss_NCE + model.loss_NCE_Y)
    torch.testing.assert_close(model.loss_G, expected_G)


def test_fastcut_step_has_no_identity_term(train_args):
    model = make_model(train_args, "--CUT_mode", "FastCUT")
    model.set_input(batch())
    model.inject_draws(flip=[True])
    model.optimize_parameters()
    assert "NCE_Y" not in model.get_current_losses() and model.idt_B is None
    assert model.flipped_for_equivariance
    torch.testing.assert_close(model.loss_G, model.loss_G_GAN + model.loss_NCE)


def test_nce_matches_its_definition_with_flip(train_args):
    model = make_model(train_args, "--CUT_mode", "FastCUT", "--batch_size", "2")
    data = batch(n=2)
    model.set_input(data)
    ids = fixed_ids(model)
    model.inject_draws(flip=[True], patch_ids=[ids])
    with torch.no_grad():
        model.forward()
        torch.testing.assert_close(model.fake_B, model.netG(torch.flip(data["A"], [3])))
        loss = model.nce_loss(model.real_A, model.fake_B)
        # By hand: queries are G_enc(fake_B) flipped back, keys G_enc(A); negatives per image (real batch 2).
        q = [torch.flip(f, [3]) for f in model.netG.encode(model.fake_B, model.nce_layers)]
        k = model.netG.encode(data["A"], model.nce_layers)
        qp, _ = model.netF(q, 32, ids)
        kp, _ = model.netF(k, 32, ids)
        by_hand = sum(patch_nce_loss(a, b, 2, 0.07).mean() * 10.0 for a, b in zip(qp, kp)) / 5
    torch.testing.assert_close(loss, by_hand, rtol=1e-6, atol=1e-6)


def test_nce_gradient_matches_finite_differences_in_float64_at_batch_1(train_args):
    """Bug #16: with the official channels-last gather, CPU InstanceNorm backward at batch 1 is wrong."""
    model = make_model(train_args, double=True)
    real_A = batch(dtype=torch.float64)["A"]
    ids = fixed_ids(model)
    with torch.no_grad():
        keys = model.netG.encode(real_A, model.nce_layers)  # the key side is detached: hold it fixed

    def loss() -> torch.Tensor:
        model.inject_draws(patch_ids=[ids])
        return model.nce_loss(real_A, model.netG(real_A), feat_k=keys)

    errors = directional_errors(loss, model.netG.model[1].weight)  # upstream of every InstanceNorm of G
    assert min(errors) <= 1e-6, errors


# ---------------------------------------------------------------- official files


def official_state(net, prefix="module.", drop_filt=False):
    return {
        prefix + k: v.clone() for k, v in net.state_dict().items() if not (drop_filt and k.endswith("filt"))
    }


def test_official_checkpoints_load(train_args, inference_args, tmp_path):
    source = make_model(train_args)
    expr = tmp_path / "official"
    expr.mkdir()
    # CPU saves of the CUT repo carry "module."; older files lack the constant blur buffers.
    torch.save(official_state(source.netG, drop_filt=True), expr / "latest_net_G.pth")
    torch.save(official_state(source.netF), expr / "latest_net_F.pth")
    torch.save(official_state(source.netD, prefix=""), expr / "latest_net_D.pth")
    torch.manual_seed(1)
    target = models.create_model(TrainOptions().parse(train_args(*SMALL, model="cut"), save=False))
    assert not torch.equal(target.netG.model[1].weight, source.netG.model[1].weight)
    assert target.import_official(str(expr), "latest", ["netG", "netF", "netD"])
    for name in ("netG", "netF", "netD"):
        a, b = snapshot(getattr(source, name)), snapshot(getattr(target, name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    test_opt = TestOptions().parse(inference_args(name="official", model="cut"), save=False)
    tester = models.create_model(test_opt)
    assert tester.model_names == ["netG"] and tester.inference_names == ["netG"]
    assert tester.import_official(str(expr), "latest", tester.inference_names)
    x = batch()["A"]
    with torch.no_grad():
        torch.testing.assert_close(tester.translate(x, "AtoB")["fake_B"], source.netG(x))


# ---------------------------------------------------------------- data: decay-phase resize (#15)


def test_decay_phase_resizes_to_crop_size(train_args):
    opt = TrainOptions().parse(train_args("--load_size", "40", "--n_epochs", "2", model="cut"), save=False)
    dataset = CUTUnalignedDataset(opt)
    dataset.set_epoch(2)
    assert dataset.load_size == 40
    dataset.set_epoch(3)
    assert dataset.load_size == 32 and dataset[0]["A"].shape == (3, 32, 32)
    off = TrainOptions().parse(
        train_args("--load_size", "40", "--n_epochs", "2", "--no-resize_in_decay", model="cut"), save=False
    )
    plain = CUTUnalignedDataset(off)
    plain.set_epoch(3)
    assert plain.load_size == 40
    wide = CUTUnalignedDataset(
        TrainOptions().parse(
            train_args("--load_size", "64", "--n_epochs", "1", "--resize_half_height", model="cut"),
            save=False,
        )
    )
    wide.set_epoch(1)
    assert wide[0]["A"].shape == (3, 32, 32)
    wide.set_epoch(2)  # decay: width 2 * crop so the height stays crop_size
    assert wide.load_size == 64 and wide[0]["A"].shape == (3, 32, 32)


# ---------------------------------------------------------------- command line


def test_train_and_test_scripts_run(train_args, inference_args, tmp_path):
    flags = "--n_epochs 1 --n_epochs_decay 1 --max_dataset_size 1 --CUT_mode FastCUT".split()
    args = train_args(*SMALL, *flags, name="cut_cli", model="cut")
    assert train.main(args) == 0
    ckpt = load_checkpoint(str(tmp_path / "checkpoints" / "cut_cli" / "latest.pth"))
    assert set(ckpt["networks"]) == {"netG", "netF", "netD"} and set(ckpt["optimizers"]) == {"G", "D", "F"}
    assert ckpt["progress"]["epoch"] == 3
    results = tmp_path / "results"
    argv = inference_args("--results_dir", str(results), "--num_test", "1", name="cut_cli", model="cut")
    assert test_script.main(argv) == 0
    images = os.listdir(results / "cut_cli" / "test_latest" / "images")
    assert sum(name.endswith("_fake_B.png") for name in images) == 1


# ---------------------------------------------------------------- NCE keys from G's pass (--reuse_nce_keys)


def count_netG_passes(model) -> dict[str, int]:
    """Wrap netG.forward / netG.encode on the instance so every pass through G is counted."""
    calls = {"forward": 0, "encode": 0}
    for name in calls:
        original = getattr(model.netG, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        setattr(model.netG, name, counted)
    return calls


def g_step_gradients(model, data, draws):
    model.set_input(data)
    model.inject_draws(**draws)
    model.forward()
    model.zero_grad("G", "F")
    loss = model.compute_G_loss()
    loss.backward()
    grads = {
        f"{n}.{k}": p.grad.clone() for n in ("netG", "netF") for k, p in getattr(model, n).named_parameters()
    }
    losses = {k: getattr(model, "loss_" + k).detach() for k in model.loss_names if not k.startswith("D_")}
    return losses, grads


def test_reused_nce_keys_match_recomputed_ones_with_fewer_encoder_passes(train_args):
    # The official batch-2 pass for G(A), G(B) (the split step is compared with it below).
    reuse = make_model(train_args, "--no-split_idt_backward")
    official = make_model(train_args, "--no-reuse_nce_keys", "--no-split_idt_backward")
    assert reuse.opt.reuse_nce_keys and not official.opt.reuse_nce_keys
    data, ids_A, ids_B = batch(), fixed_ids(reuse, seed=1), fixed_ids(reuse, seed=2)
    counts = [count_netG_passes(m) for m in (reuse, official)]
    (loss_r, grad_r), (loss_o, grad_o) = (
        g_step_gradients(m, data, {"patch_ids": [ids_A, ids_B]}) for m in (reuse, official)
    )
    # Reuse: one full pass gives G(A), G(B) and the keys, then the two query encodes; official: 1 + 4 passes.
    assert counts == [{"forward": 0, "encode": 3}, {"forward": 1, "encode": 4}]
    assert official.feats_real is None and [f.shape[1] for f in reuse.feats_real] == [3, 16, 32, 32, 32]
    assert set(loss_o) == {"G", "G_GAN", "NCE", "NCE_Y"}
    for k in loss_o:  # only float rounding differs (InstanceNorm over a batch-2 vs batch-1 pass)
        torch.testing.assert_close(loss_r[k], loss_o[k], rtol=1e-5, atol=0)
    assert grad_r.keys() == grad_o.keys() and len(grad_o) > 0
    # Conv biases right before an InstanceNorm have an analytic gradient of 0 (norms < 1e-3 here, vs > 1
    # elsewhere): both runs give only rounding noise there, so they are compared in absolute terms.
    noise = {k for k in grad_o if grad_o[k].norm() < 1e-2}
    assert noise and all(k.startswith("netG.") and k.endswith(".bias") for k in noise) and len(noise) < 25
    for k in grad_o:
        if k in noise:
            assert (grad_r[k] - grad_o[k]).norm() < 1e-2, k
        else:
            assert (grad_r[k] - grad_o[k]).norm() <= 1e-4 * grad_o[k].norm(), k
    # A flipped FastCUT step re-encodes A (G saw flip(A)): identical to the official step, same RNG draws.
    fast_reuse = make_model(train_args, "--CUT_mode", "FastCUT")
    fast_official = make_model(train_args, "--CUT_mode", "FastCUT", "--no-reuse_nce_keys")
    results = []
    for model in (fast_reuse, fast_official):
        torch.manual_seed(3)  # patch ids from the global RNG: the draw order must be the official one
        results.append(g_step_gradients(model, data, {"flip": [True]}))
        assert model.flipped_for_equivariance and model.feats_real is None
    (loss_r, grad_r), (loss_o, grad_o) = results
    assert all(torch.equal(loss_r[k], loss_o[k]) for k in ("G", "NCE")) and all(
        torch.equal(grad_r[k], grad_o[k]) for k in grad_o
    )


@pytest.mark.parametrize("split", [True, False])
@pytest.mark.parametrize("extra", [[], ["--no-reuse_nce_keys"]])
def test_key_branch_builds_no_graph(train_args, extra, split):
    """PatchNCE detaches the keys, so their encode and F embedding run without autograd (saves memory)."""
    model = make_model(train_args, *extra, *([] if split else ["--no-split_idt_backward"]))
    grad_mode = []
    for name in ("encode", "forward"):
        net = model.netF if name == "forward" else model.netG
        original = getattr(net, name)

        def recorded(*args, _original=original, _name=name, **kwargs):
            grad_mode.append((_name, torch.is_grad_enabled()))
            return _original(*args, **kwargs)

        setattr(net, name, recorded)
    model.set_input(batch())
    model.forward()
    loss = model.compute_G_loss()
    keys = [("encode", False)] if extra else []
    # Per NCE term: query encode (graph), [key encode,] F on keys (no graph), F on queries (graph).
    per_term = [("encode", True), *keys, ("forward", False), ("forward", True)]
    g_pass = [("encode", True)] * (not extra)  # G's training pass (tapped when the keys are reused)
    # Split: G(B) runs after the terms of G(A); one batch-2 pass otherwise.
    assert grad_mode == (g_pass + per_term) * 2 if split else g_pass + per_term * 2
    loss.backward()
    assert all(p.grad is not None for p in model.netF.parameters())


class SavedTensorBytes:
    """Bytes of tensors autograd holds for backward, tracked over time (live and peak)."""

    def __init__(self):
        self.live = self.peak = 0

    def pack(self, tensor):
        nbytes = tensor.untyped_storage().nbytes()
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        return _Released(tensor, nbytes, self)

    @staticmethod
    def unpack(held):
        return held.tensor


class _Released:
    def __init__(self, tensor, nbytes, tracker):
        self.tensor, self.nbytes, self.tracker = tensor, nbytes, tracker

    def __del__(self):
        self.tracker.live -= self.nbytes


@pytest.mark.parametrize("model_name, reg_type", [("cut", None), ("srunit", "v2"), ("srunit", "v1")])
def test_split_identity_backward_gives_the_batch2_gradients_with_half_the_saved_activations(
    train_args, model_name, reg_type
):
    """--split_idt_backward (default): G(A)'s losses are backpropagated before G(B) runs; same update."""
    extra = ["--inact_epochs", "0", "--reg", "0.1", "--reg_type", reg_type] if reg_type else []
    # float64: in float32 the tiny nets turn the rounding of batch-1 vs batch-2 passes into ~0.5 % differences.
    split = make_model(train_args, *extra, model=model_name, double=True)
    joint = make_model(train_args, *extra, "--no-split_idt_backward", model=model_name, double=True)
    assert split.opt.split_idt_backward and split.opt.nce_idt
    data, ids = batch(size=64, dtype=torch.float64), [fixed_ids(split, 64, seed=s) for s in (1, 2)]
    peaks, grads, losses = [], [], []
    for model in (split, joint):
        # D's first Adam step turns rounding-level gradient differences into +-lr: keep D fixed.
        model.optimizers["D"].param_groups[0]["lr"] = 0.0
        model.set_input(data)
        model.inject_draws(patch_ids=list(ids), sr_choice=[1], sr_patch_ids=[fixed_ids(split, 64, 3)[1:2]])
        torch.manual_seed(5)  # SRUNIT's perturbation
        tracker = SavedTensorBytes()
        seen = {}

        def step(*names, _model=model, _seen=seen, _step=model.step, **kwargs):
            if "G" in names:  # G's and F's gradients, before their update
                for n in ("netG", "netF"):
                    _seen.update({f"{n}.{k}": p.grad.clone() for k, p in getattr(_model, n).named_parameters()})
            _step(*names, **kwargs)

        model.step = step
        with torch.autograd.graph.saved_tensors_hooks(tracker.pack, tracker.unpack):
            model.optimize_parameters()
        peaks.append(tracker.peak)
        grads.append(seen)
        losses.append(model.get_current_losses())
    assert split.idt_B is not None and split.idt_B.shape == data["B"].shape
    assert losses[0].keys() == losses[1].keys() and "NCE_Y" in losses[0]
    for k in losses[1]:
        torch.testing.assert_close(losses[0][k], losses[1][k], rtol=1e-10, atol=1e-12)
    assert grads[0].keys() == grads[1].keys()
    for k, g in grads[1].items():
        torch.testing.assert_close(grads[0][k], g, rtol=1e-8, atol=1e-10, msg=k)
    # Only one translation's activations at a time (the D step's are smaller still).
    assert peaks[0] < 0.8 * peaks[1], peaks  # v1 keeps G(A)'s graph through its SR pass: 0.77; else < 0.75


def test_mirrored_ids_read_a_flipped_map_at_the_same_values():
    from models.cut_model import mirrored_ids

    feat = torch.arange(2 * 3 * 5, dtype=torch.float32).view(1, 2, 3, 5)  # H 3, W 5: not square
    ids = torch.tensor([0, 4, 6, 12, 14])
    assert mirrored_ids(ids, 5).tolist() == [4, 0, 8, 12, 10]
    flat, flipped = feat.flatten(2), torch.flip(feat, [3]).flatten(2)
    assert torch.equal(flat[:, :, mirrored_ids(ids, 5)], flipped[:, :, ids])


def test_lean_blur_switch_reaches_every_blur_layer(train_args):
    from models.networks.blocks import _BlurFilter

    for extra, expected in (([], True), (["--no-lean_blur"], False)):
        model = make_model(train_args, *extra)
        layers = [m for net in (model.netG, model.netD) for m in net.modules() if isinstance(m, _BlurFilter)]
        assert len(layers) == 7 and all(m.lean_backward is expected for m in layers)  # G: 2 down, 2 up; D: 3


@pytest.mark.parametrize("free", [True, False])
def test_gradients_are_released_after_each_step_by_default(train_args, free):
    """--free_grads_after_step: D's gradients are not held through the G step (nor G's, F's to the next one)."""
    model = make_model(train_args, *([] if free else ["--no-free_grads_after_step"]))
    d_grads_in_G_step = []
    original = model.update_G

    def update_G():
        d_grads_in_G_step.append(any(p.grad is not None for p in model.netD.parameters()))
        original()

    model.update_G = update_G
    model.set_input(batch())
    before = snapshot(model.netD)
    model.optimize_parameters()
    assert any(not torch.equal(v, before[k]) for k, v in snapshot(model.netD).items())  # D did step
    held = [p.grad is not None for n in ("netG", "netF", "netD") for p in getattr(model, n).parameters()]
    assert d_grads_in_G_step == [not free] and (not any(held) if free else all(held))
