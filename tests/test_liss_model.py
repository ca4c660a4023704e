"""LiSS model: options, forward semantics, losses, schedules, distillation, optimisers, decay, checkpoints."""

from __future__ import annotations

import io
import os

import pytest
import torch
import torch.nn.functional as F

import test as test_script
import train
from data.liss_dataset import LiSSDataset
from models.liss_training import LegacyRAdam, TaskSchedule, TranslationLinearDecay
from models.networks.liss import LiSSGenerator
from options import TestOptions, TrainOptions
from util.checkpoint import load_checkpoint

TASKS = ("rotation", "jigsaw", "depth", "gray")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    from datasets.make_synthetic import make_synthetic

    return make_synthetic(str(tmp_path_factory.mktemp("liss")), size=96, n_train=3, n_test=2, depths=True)


def args(root: str, *extra: str, crop: int = 96) -> list[str]:
    """96-px crops and 84-px jigsaw windows: the smallest sizes whose classifier maps are 2x2 (>1 for IN)."""
    sizes = f"--load_size {crop + 4} --crop_size {crop} --jigsaw_size {84 if crop == 96 else 222}"
    tiny = "--gpu_ids -1 --ngf 8 --ndf 8 --num_threads 0 --display_id 0 --no_progress"
    return ["--model", "liss", "--dataroot", root, *sizes.split(), *tiny.split(), *extra]


def build(root: str, *extra: str, crop: int = 96):
    from models.liss_model import LiSSModel

    torch.manual_seed(0)
    return LiSSModel(TrainOptions().parse(args(root, *extra, crop=crop), save=False))


def batch_of(model, n: int = 2) -> dict:
    ds = LiSSDataset(model.opt)
    return torch.utils.data.default_collate([ds[i] for i in range(n)])


def snapshot(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


def metrics(passing: set[str]) -> dict[str, float]:
    """Validation metrics where exactly the tasks in ``passing`` pass the default thresholds, both domains."""
    out = {}
    for d in "AB":
        for t in ("rotation", "jigsaw"):
            out[f"test_G_{d}_{t}_acc"] = 0.9 if t in passing else 0.1
        for t in ("depth", "gray"):
            out[f"test_G_{d}_{t}_loss"] = 0.1 if t in passing else 0.9
    return out


# ----------------------------------------------------------------------------------------------- options


def test_official_option_names_and_defaults(root):
    opt = TrainOptions().parse(args(root, "--lambda_CA", "3", "--lambda_I", "0.1", crop=256), save=False)
    assert (opt.lambda_A, opt.lambda_B, opt.lambda_identity) == (3.0, 10.0, 0.1)
    assert (opt.task_schedule, opt.repr_mode, opt.dataset_mode, opt.no_flip, opt.jigsaw_size) == (
        "parallel", "freeze", "liss", True, 222)  # fmt: skip
    assert (opt.rotation_acc_threshold, opt.jigsaw_acc_threshold, opt.depth_loss_threshold) == (0.2, 0.2, 0.5)
    assert (opt.lambda_distillation, opt.encoder_merge_ratio, opt.lambda_DR, opt.D_rotation) == (
        5.0,
        1.0,
        1.0,
        False,
    )
    assert opt.auxiliary_tasks == "rotation, gray, depth, jigsaw"


@pytest.mark.parametrize(
    "extra",
    [
        ["--auxiliary_tasks", "rotation, colour"],
        ["--crop_size", "64", "--load_size", "70", "--jigsaw_size", "63"],  # 1x1 classifier maps
        ["--jigsaw_size", "48"],  # jigsaw map 1x1 vs rotation 2x2
        ["--jigsaw_size", "85"],  # not a multiple of 3
        ["--lr_policy", "step"],
        ["--D_rotation", "--auxiliary_tasks", "depth"],
        ["--task_schedule", "continual"],
        ["--norm", "batch"],
    ],
)
def test_bad_option_combinations_are_rejected(root, extra, capsys):
    with pytest.raises(SystemExit):
        TrainOptions().parse(args(root, *extra), save=False)


def test_networks_optimizer_groups_and_counts_at_official_size(root):
    model = build(root, "--lr_depth", "1e-3", "--lr_rotation", "5e-4", crop=256)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(model.netG_A) == count(model.netG_B) == 2_306_587
    assert model.model_names == ["netG_A", "netG_B", "netD_A", "netD_B", "netD_A_gray", "netD_B_gray"]
    assert all(count(getattr(model, n)) == 50_067 for n in model.model_names[2:])
    groups = model.optimizers["G"].param_groups
    assert [g["group_name"] for g in groups] == ["default", *TASKS]
    sizes = [sum(p.numel() for p in g["params"]) for g in groups]
    assert sizes == [249_862, 1_934_600, 2_180_480, 123_330, 124_902]  # official figures, ngf = 8
    assert [g["lr"] for g in groups] == [2e-4, 5e-4, 2e-4, 1e-3, 2e-4]
    assert isinstance(model.optimizers["G"], torch.optim.RAdam)
    assert (
        len(model.optimizers["D"].param_groups) == 1 and sum(map(count, model.discriminators())) == 4 * 50_067
    )
    legacy = build(root, "--lr_depth", "1e-3", "--lr_rotation", "5e-4", "--liss_legacy_optim", crop=256)
    assert isinstance(legacy.optimizers["G"], LegacyRAdam)
    assert [g["lr"] for g in legacy.optimizers["G"].param_groups] == [2e-4, 2e-4, 2e-4, 1e-3, 2e-4]
    few = build(root, "--auxiliary_tasks", "depth", crop=256)
    assert few.model_names == ["netG_A", "netG_B", "netD_A", "netD_B"]
    assert [g["group_name"] for g in few.optimizers["G"].param_groups] == ["default", "depth"]
    assert set(few.netG_A.state_dict()) == set(model.netG_A.state_dict())  # every head always exists


# ----------------------------------------------------------------------------------------------- forward


def test_forward_semantics_and_shapes(root):
    model = build(root)
    model.set_input(batch_of(model))
    assert model.rotation_A.shape == (8, 3, 96, 96) and model.rotation_target_A.shape == (8,)
    torch.testing.assert_close(
        model.rotation_A[5], torch.rot90(model.real_A[1], int(model.rotation_target_A[5]), (1, 2))
    )
    with torch.no_grad():
        model.forward()
        G_A, G_B = model.netG_A, model.netG_B
        assert model.z_A.shape == (2, 32, 24, 24)
        torch.testing.assert_close(model.fake_B, G_A(model.real_A), rtol=0, atol=0)
        torch.testing.assert_close(model.rec_A, G_B(model.fake_B), rtol=0, atol=0)
        # Official identity: G_A's decoder on G_B's encoding of B (not CycleGAN's G_A(B)).
        torch.testing.assert_close(model.idt_A, G_A.decoder(G_B.encoder(model.real_B)), rtol=0, atol=0)
        assert not torch.allclose(model.idt_A, G_A(model.real_B))
        assert model.rotation_pred_A.shape == (8, 4) and model.jigsaw_pred_B.shape == (2, 64)
        assert model.depth_pred_A.shape == (2, 1, 96, 96) and model.gray_pred_B.shape == (2, 3, 96, 96)
        torch.testing.assert_close(model.depth_pred_A, G_A.depth(model.z_A), rtol=0, atol=0)
    own = build(root, "--liss_idt_own_encoder")
    own.set_input(batch_of(own))
    with torch.no_grad():
        own.forward()
        torch.testing.assert_close(own.idt_A, own.netG_A(own.real_B), rtol=0, atol=0)


def test_generator_losses_closed_form(root):
    model = build(root, "--lambda_D", "2", "--lambda_G", "3")
    model.set_input(batch_of(model))
    model.forward()
    total = model.backward_G()
    opt = model.opt
    ce = F.cross_entropy(model.rotation_pred_A, model.rotation_target_A)
    torch.testing.assert_close(model.loss_G_A_rotation, ce)
    gan = F.mse_loss(model.netD_B_gray(model.gray_pred_B)[0], torch.ones(2, 1, 10, 10))
    torch.testing.assert_close(
        model.loss_G_B_gray, 0.1 * gan + 0.9 * F.l1_loss(model.gray_pred_B, model.real_B)
    )
    torch.testing.assert_close(model.loss_idt_A, F.l1_loss(model.idt_A, model.real_B) * 10 * 0.5)
    parts = 2 * (model.loss_G_A_depth + model.loss_G_B_depth) + 3 * (
        model.loss_G_A_gray + model.loss_G_B_gray
    )
    parts = (
        parts
        + model.loss_G_A_rotation
        + model.loss_G_B_rotation
        + model.loss_G_A_jigsaw
        + model.loss_G_B_jigsaw
    )
    parts = parts + model.loss_idt_A + model.loss_idt_B + model.loss_G_A + model.loss_G_B
    parts = parts + model.loss_cycle_A + model.loss_cycle_B
    torch.testing.assert_close(total, parts)
    assert model.loss_G_distillation_A is None and opt.lambda_identity == 0.5


def test_one_parallel_step_trains_everything_and_first_radam_step_is_sgd(root):
    model = build(root, "--lr", "1e-3")
    model.set_input(batch_of(model))
    before = {n: snapshot(net) for n, net in model.networks().items()}
    p = model.netG_A.decoder[10].weight
    p0 = p.detach().clone()
    model.optimize_parameters()
    for name, net in model.networks().items():
        # Without --D_rotation the discriminators' rotation heads get no gradient (they exist, as officially).
        frozen = {k for k in before[name] if k.startswith("rotation.")} if name.startswith("netD") else set()
        assert changed(before[name], net) == set(before[name]) - frozen, name
    # RAdam's first step is not rectified (N_sma < 5): p - lr * grad.
    torch.testing.assert_close(p.detach(), p0 - 1e-3 * p.grad, rtol=1e-5, atol=1e-9)
    losses = model.get_current_losses()
    assert {"G", "D_A", "D_B_gray", "G_A_jigsaw", "idt_B"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())


def test_sequential_first_stage_trains_only_the_encoders_and_the_first_head(root):
    model = build(root, "--task_schedule", "sequential")
    assert model.schedule.on == {"identity": False, "translation": False, "rotation": True, "jigsaw": False,
                                 "depth": False, "gray": False}  # fmt: skip
    model.set_input(batch_of(model))
    before = {n: snapshot(net) for n, net in model.networks().items()}
    model.optimize_parameters()
    moved = {k.split(".")[0] for k in changed(before["netG_A"], model.netG_A)}
    assert moved == {"encoder", "rotation"}
    assert all(not changed(before[n], getattr(model, n)) for n in model.model_names[2:])
    assert set(model.get_current_losses()) == {"G", "G_A_rotation", "G_B_rotation"}


def test_d_rotation_losses(root):
    model = build(root, "--D_rotation", "--lambda_DR", "2", "--auxiliary_tasks", "rotation")
    model.set_input(batch_of(model))
    model.optimize_parameters()
    torch.testing.assert_close(
        model.loss_G_D_rotation, 2 * (model.loss_G_A_D_rotation + model.loss_G_B_D_rotation)
    )
    assert model.loss_D_A_rotation > 0 and model.loss_D_A > model.loss_D_A_rotation
    assert model.netD_A.rotation[4].in_features == 100  # the 10x10 patch map of a 96-px crop


# ----------------------------------------------------------------------------------------------- schedules


def test_task_schedules():
    thresholds = {"rotation": 0.2, "jigsaw": 0.2, "depth": 0.5, "gray": 0.5}
    seq = TaskSchedule("sequential", TASKS, thresholds)
    assert seq.update(metrics(set())) is None and seq.on["rotation"]
    order = []
    while not seq.on["translation"]:
        assert seq.update(metrics(set(TASKS))) == "switch"  # one switch per validation, even if all pass
        order.append([k for k, v in seq.on.items() if v])
    assert order == [["jigsaw"], ["depth"], ["gray"], ["identity", "translation"]]
    assert seq.update(metrics(set(TASKS))) is None
    # Both domains must pass, strictly.
    one_domain = {**metrics({"rotation"}), "test_G_B_rotation_acc": 0.2}
    fresh = TaskSchedule("liss", TASKS, thresholds)
    assert fresh.update(one_domain) is None and fresh.on["rotation"]
    add = TaskSchedule("additional", TASKS, thresholds)
    for _ in range(4):
        assert add.update(metrics(set(TASKS))) == "switch"
    assert all(add.on.values())  # README semantics: finished tasks keep training
    rep = TaskSchedule("representational", TASKS, thresholds)
    assert rep.on == {"identity": False, "translation": False, **dict.fromkeys(TASKS, True)}
    assert rep.update(metrics({"rotation", "jigsaw", "depth"})) is None
    assert rep.update(metrics(set(TASKS))) == "handover" and rep.repr_is_frozen
    assert rep.on == {"identity": True, "translation": True, **dict.fromkeys(TASKS, False)}
    par = TaskSchedule("parallel", TASKS, thresholds)
    assert all(par.on.values()) and par.update(metrics(set(TASKS))) is None
    restored = TaskSchedule("sequential", TASKS, thresholds)
    restored.load_state_dict(seq.state_dict())
    assert restored.on == seq.on
    with pytest.raises(ValueError):
        TaskSchedule("parallel", TASKS, thresholds).load_state_dict(seq.state_dict())


def test_liss_reference_encoders_distillation_and_resume_state(root):
    model = build(root, "--task_schedule", "liss", "--encoder_merge_ratio", "0.5")
    model.on_validation(metrics({"rotation"}))
    assert model.schedule.on["jigsaw"] and not model.schedule.on["rotation"]
    enc = model.netG_A.encoder
    assert all(torch.equal(a, b) for a, b in zip(model.ref_encoder_A.parameters(), enc.parameters()))
    assert not any(p.requires_grad for p in model.ref_encoder_B.parameters())
    old = snapshot(model.ref_encoder_A)
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(1.0)
    model.on_validation(metrics({"jigsaw"}))
    for k, v in model.ref_encoder_A.state_dict().items():
        torch.testing.assert_close(v, 0.5 * enc.state_dict()[k] + 0.5 * old[k])
    model.set_input(batch_of(model))
    model.forward()
    model.backward_G()
    torch.testing.assert_close(model.loss_G_distillation_A, F.l1_loss(model.z_A, model.z_ref_A) * 5)
    # Schedule and reference encoders survive a checkpoint (weights_only load).
    buffer = io.BytesIO()
    torch.save(model.extra_state(), buffer)
    buffer.seek(0)
    fresh = build(root, "--task_schedule", "liss", "--encoder_merge_ratio", "0.5")
    fresh.load_extra_state(torch.load(buffer, weights_only=True))
    assert fresh.schedule.on == model.schedule.on and fresh.n_validations == 0
    assert all(
        torch.equal(v, model.ref_encoder_B.state_dict()[k])
        for k, v in fresh.ref_encoder_B.state_dict().items()
    )


@pytest.mark.parametrize("mode", ["freeze", "distillation"])
def test_representational_handover(root, mode):
    model = build(root, "--task_schedule", "representational", "--repr_mode", mode)
    model.on_validation(metrics(set(TASKS)))
    grads = lambda m: {p.requires_grad for p in m.parameters()}  # noqa: E731
    assert grads(model.netG_A.decoder) == {True} and grads(model.netG_B.jigsaw) == {False}
    assert grads(model.netG_A.encoder) == ({False} if mode == "freeze" else {True})
    assert (model.ref_encoder_A is not None) == (mode == "distillation")


def test_representational_traduction_waits_for_the_tasks(root):
    model = build(root, "--task_schedule", "representational-traduction")
    assert not any(p.requires_grad for p in model.netG_A.decoder.parameters())
    model.set_input(batch_of(model))
    before = {n: snapshot(getattr(model, n)) for n in ("netD_A", "netD_A_gray", "netG_A")}
    model.optimize_parameters()
    assert not changed(before["netD_A"], model.netD_A) and changed(before["netD_A_gray"], model.netD_A_gray)
    assert not any(k.startswith("decoder") for k in changed(before["netG_A"], model.netG_A))


def test_validation_metrics_and_cadence(root):
    model = build(root, "--batch_size", "2", "--display_freq", "4")
    model.set_input(batch_of(model))
    real = model.real_A
    model.global_step = 0  # the trainer's count before the first iteration
    model.on_step_end()
    assert model.n_validations == 1 and model.real_A is real  # the training batch is restored
    keys = {f"test_G_{d}_{t}_loss" for d in "AB" for t in TASKS}
    keys |= {f"test_G_{d}_{t}_acc" for d in "AB" for t in ("rotation", "jigsaw")}
    assert set(model.val_metrics) == keys
    assert all(0 <= model.val_metrics[k] <= 1 for k in keys if k.endswith("acc"))
    counts = []
    for step in (1, 2, 3):  # 2 images per step: a validation each time 4 more images have passed
        model.global_step = step
        model.on_step_end()
        counts.append(model.n_validations)
    assert counts == [2, 2, 3]


# ------------------------------------------------------------------------------------------ optimiser, decay


def test_translation_linear_decay():
    p = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [p]}, {"params": [], "lr": 1.0}], lr=0.5)
    decay = TranslationLinearDecay([optimizer], n_epochs=2, n_epochs_decay=2)
    assert decay.total_epochs(translation_on=True) == 5
    for epoch in (1, 2, 3):  # translation starts late: epoch 3 ends with it still off
        decay.epoch_end(epoch, translation_on=False)
    assert decay.decay_epochs == 0 and decay.total_epochs(translation_on=False) == 6
    lrs = []
    for epoch in (4, 5, 6):
        decay.epoch_end(epoch, translation_on=True)
        lrs.append([g["lr"] for g in optimizer.param_groups])
    assert lrs == [pytest.approx([0.5 * 2 / 3, 2 / 3]), pytest.approx([0.5 / 3, 1 / 3]), [0.0, 0.0]]
    assert decay.total_epochs(translation_on=True) == 6  # stop after the epoch where d > n_epochs_decay


def test_legacy_radam_shares_its_step_size_cache():
    def step_once(cls, lrs, start_later=False):
        ps = [torch.nn.Parameter(torch.zeros(2)) for _ in lrs]
        opt = cls([{"params": [p], "lr": lr} for p, lr in zip(ps, lrs)], lr=lrs[0], betas=(0.5, 0.999))
        for i in range(13):
            for j, p in enumerate(ps):
                p.grad = torch.ones(2) if not (start_later and j == 1 and i < 12) else None
            opt.step()
        return [float(p[0].detach()) for p in ps]

    legacy = step_once(LegacyRAdam, [1e-3, 1.0])
    assert legacy[0] == legacy[1]  # the second group reused the first group's step size (and lr)
    modern = step_once(torch.optim.RAdam, [1e-3, 1.0])
    assert modern[1] == pytest.approx(1000 * modern[0], rel=1e-5)
    late = step_once(LegacyRAdam, [1e-3, 1.0], start_later=True)  # 12 steps apart: cache slot refreshed
    assert late[1] == pytest.approx(-1.0, rel=1e-5)  # first RAdam step = -lr * grad with its own lr
    same = step_once(LegacyRAdam, [1e-3, 1e-3]), step_once(torch.optim.RAdam, [1e-3, 1e-3])
    assert same[0] == pytest.approx(same[1], rel=1e-5)


# ----------------------------------------------------------------------------------------------- scripts


def test_train_resume_in_stage_and_test_with_panels(root, tmp_path):
    ckpts, results = str(tmp_path / "ckpt"), str(tmp_path / "results")
    schedule = ["--task_schedule", "sequential", "--rotation_acc_threshold", "-1"]  # rotation passes at once
    common = args(
        root,
        "--checkpoints_dir",
        ckpts,
        "--name",
        "seq",
        *schedule,
        "--display_freq",
        "1000",
        "--print_freq",
        "1",
    )
    assert train.main([*common, "--max_steps", "2"]) == 0
    ckpt = load_checkpoint(os.path.join(ckpts, "seq", "latest.pth"), "liss")
    assert set(ckpt["networks"]) == {"netG_A", "netG_B", "netD_A", "netD_B", "netD_A_gray", "netD_B_gray"}
    state = ckpt["model_state"]
    assert state["schedule"]["on"]["jigsaw"] and not state["schedule"]["on"]["rotation"]  # switched at step 1
    assert state["n_validations"] == 1 and state["ref_encoder_A"] is None
    assert ckpt["schedulers"]["lr"] == {"decay_epochs": 0, "last_epoch": 0}
    # A resumed run continues in the jigsaw stage (official: back to the first task).
    assert train.main([*common, "--max_steps", "3", "--continue_train"]) == 0
    ckpt = load_checkpoint(os.path.join(ckpts, "seq", "latest.pth"), "liss")
    assert ckpt["progress"]["global_step"] == 3 and ckpt["model_state"]["schedule"]["on"]["jigsaw"]
    with open(os.path.join(ckpts, "seq", "loss_log.txt")) as log:
        assert "G_A_jigsaw" in log.read().strip().splitlines()[-1]
    tiny = "--gpu_ids -1 --ngf 8 --ndf 8 --crop_size 96 --load_size 96 --num_threads 0 --no_progress --num_test 1"
    test_args = ["--model", "liss", "--dataroot", root, "--name", "seq", "--checkpoints_dir", ckpts, *tiny.split(),
                 "--results_dir", results, "--liss_panels", "depth, gray"]  # fmt: skip
    assert test_script.main(test_args) == 0
    images = os.listdir(os.path.join(results, "seq", "test_latest", "images"))
    for label in ("real_A", "fake_B", "rec_A", "depth_A", "gray_A", "fake_A", "depth_B", "gray_B"):
        assert any(name.endswith(f"_{label}.png") for name in images), label


def test_official_generator_files_load_for_inference(root, tmp_path):
    from models.liss_model import LiSSModel

    torch.manual_seed(1)
    official = {X: LiSSGenerator(ngf=8) for X in "AB"}  # trained at 256 px: 4x4 classifier maps
    os.makedirs(tmp_path / "run")
    for X, net in official.items():
        torch.save(net.state_dict(), tmp_path / "run" / f"latest_net_G_{X}.pth")
    argv = [
        "--model",
        "liss",
        "--dataroot",
        root,
        *"--gpu_ids -1 --ngf 8 --crop_size 96 --load_size 96".split(),
    ]
    opt = TestOptions().parse(argv, save=False)
    model = LiSSModel(opt)
    assert model.netG_A.head_map_size == 2
    assert model.import_official(str(tmp_path / "run"), "latest", model.inference_names)
    assert model.netG_A.head_map_size == 4
    for k, v in official["B"].state_dict().items():
        assert torch.equal(model.netG_B.state_dict()[k], v)
    x = torch.rand(1, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        visuals = model.translate(x, "AtoB")
        torch.testing.assert_close(visuals["fake_B"], official["A"](x), rtol=0, atol=0)
    assert list(visuals) == ["real_A", "fake_B", "rec_A"]


# ----------------------------------------------------------------------------------------------- speed levers


def encoded_images(model) -> dict[str, int]:
    """Images into each generator's encoder (its first padding), by channels (3: RGB, 1: encode_luma)."""
    counts = {}

    def hook(name):
        def count(module, inputs, output):
            key = f"{name}_{inputs[0].shape[1]}ch"
            counts[key] = counts.get(key, 0) + inputs[0].shape[0]

        return count

    for name in ("netG_A", "netG_B"):
        getattr(model, name).encoder.model[0].register_forward_hook(hook(name))
    return counts


def test_reused_encodings_give_the_official_step(root):
    """--liss_reuse_encodings (default) computes the official losses and gradients, with fewer encodings.

    In float64, so that the comparison is tight: in float32 the sums in another order differ by rounding,
    which InstanceNorm amplifies (gray-head gradients up to 1e-2 of their largest entry at this tiny width).
    """
    fast, slow = build(root), build(root, "--no-liss_reuse_encodings")
    assert fast.opt.liss_reuse_encodings and not slow.opt.liss_reuse_encodings
    for name in fast.model_names:
        getattr(slow, name).load_state_dict(getattr(fast, name).state_dict())
        getattr(slow, name).double(), getattr(fast, name).double()
    batch = {
        k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v
        for k, v in batch_of(fast).items()
    }
    counts = {}
    for model in (fast, slow):
        counts[model] = encoded_images(model)
        model.set_input(batch)
        model.forward()
        model.zero_grad("G")
        model.backward(model.backward_G())
    # Per generator: 2 real + 8 rotation views + 2 gray + 2 jigsaw + 2 fakes (cycle) images, batch 2. Reuse
    # drops each image's unrotated view (2) and moves the gray images to the one-channel stem.
    assert counts[slow] == {"netG_A_3ch": 16, "netG_B_3ch": 16}
    assert counts[fast] == {"netG_A_3ch": 12, "netG_B_3ch": 12, "netG_A_1ch": 2, "netG_B_1ch": 2}
    for key in ("rotation_pred_A", "rotation_pred_B", "gray_pred_A", "jigsaw_pred_B", "fake_B", "idt_A"):
        torch.testing.assert_close(getattr(fast, key), getattr(slow, key), rtol=1e-10, atol=1e-10)
    for name in fast.loss_names:
        a, b = getattr(fast, f"loss_{name}"), getattr(slow, f"loss_{name}")
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=0)
    for name in ("netG_A", "netG_B"):
        slow_grads = dict(getattr(slow, name).named_parameters())
        scale = max(p.grad.abs().max() for p in slow_grads.values() if p.grad is not None)
        for key, p in getattr(fast, name).named_parameters():
            q = slow_grads[key].grad
            assert (p.grad is None) == (q is None), key
            if p.grad is not None:
                # The floor covers the biases of convs before InstanceNorm: their exact gradient is 0.
                assert (p.grad - q).abs().max() <= 1e-9 * q.abs().max() + 1e-12 * scale, key


def test_reuse_falls_back_to_the_official_path_on_other_inputs(root):
    fast, slow = build(root), build(root, "--no-liss_reuse_encodings")
    for name in fast.model_names:
        getattr(slow, name).load_state_dict(getattr(fast, name).state_dict())
    batch = batch_of(fast)
    batch["A_rotation"] = batch["A_rotation"] + 0.01  # unrotated views differ from the images
    batch["A_gray"][:, 2] = 0  # not one luma channel repeated
    counts = encoded_images(fast)
    with torch.no_grad():
        for model in (fast, slow):
            model.set_input(batch)
            model.forward()
    assert counts == {"netG_A_3ch": 16, "netG_B_3ch": 12, "netG_B_1ch": 2}
    assert torch.equal(fast.rotation_pred_A, slow.rotation_pred_A)
    assert torch.equal(fast.gray_pred_A, slow.gray_pred_A)


def test_reuse_skips_unread_encodings_and_zero_weighted_parts(root):
    model = build(root, "--task_schedule", "sequential", "--lambda_identity", "0", "--lambda_G", "0")
    model.schedule.on.update(rotation=False, jigsaw=True)  # a jigsaw stage: nothing reads encoder(real)
    counts = encoded_images(model)
    model.set_input(batch_of(model))
    model.optimize_parameters()
    assert counts == {"netG_A_3ch": 2, "netG_B_3ch": 2}  # the jigsaw windows only (official: + 2 images)
    model.schedule.on.update(jigsaw=False, identity=True, translation=True, gray=True)
    before = snapshot(model.netG_A.gray)
    model.optimize_parameters()
    # Weighted 0: no identity outputs and no gray pass (official: computed, gradients exactly zero).
    assert model.loss_idt_A is None and model.loss_G_A_gray is None and not changed(before, model.netG_A.gray)
    assert model.active_parts()["translation"] and not model.active_parts()["gray"]
    official = build(root, "--task_schedule", "sequential", "--no-liss_reuse_encodings")
    official.schedule.on.update(rotation=False, jigsaw=True)
    counts = encoded_images(official)
    official.set_input(batch_of(official))
    official.optimize_parameters()
    assert counts == {"netG_A_3ch": 4, "netG_B_3ch": 4}


def test_split_backward_gives_the_one_backward_step(root):
    """--liss_split_backward (default): jigsaw and gray backpropagated first, same gradients and losses (float64)."""
    split, one = build(root), build(root, "--no-liss_split_backward")
    assert split.opt.liss_split_backward and not one.opt.liss_split_backward
    for name in split.model_names:
        getattr(one, name).load_state_dict(getattr(split, name).state_dict())
        getattr(one, name).double(), getattr(split, name).double()
    batch = {
        k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v
        for k, v in batch_of(split).items()
    }
    for model in (split, one):
        model.set_input(batch)
        torch.manual_seed(0)  # the image pools draw
        model.optimize_parameters()
    for name in split.loss_names:
        a, b = getattr(split, f"loss_{name}"), getattr(one, f"loss_{name}")
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=0)
    for name in split.model_names:
        ref = dict(getattr(one, name).named_parameters())
        scale = max(p.grad.abs().max() for p in ref.values() if p.grad is not None)
        for key, p in getattr(split, name).named_parameters():
            q = ref[key]
            assert (p.grad is None) == (q.grad is None), (name, key)
            if p.grad is not None:
                assert (p.grad - q.grad).abs().max() <= 1e-9 * q.grad.abs().max() + 1e-12 * scale, (name, key)
                torch.testing.assert_close(p, q, rtol=0, atol=1e-9)  # the RAdam steps agree as well


def test_a_default_step_prints_no_warning(root):
    """The official heads' InstanceNorm(256) on 128 channels made PyTorch warn at every call (bug 9)."""
    import warnings

    model = build(root)
    model.set_input(batch_of(model))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.optimize_parameters()
        with torch.no_grad():
            model.netG_A.rotation(model.netG_A.encoder(model.real_A))
    assert [str(w.message) for w in caught] == []
