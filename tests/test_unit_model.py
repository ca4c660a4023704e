"""UNIT model: options and config import, one iteration against the official formulas with injected noise,
weight sharing, schedules, official checkpoint import, inference, and train.py / test.py smoke runs."""

import copy
import os
import warnings

import pytest
import torch
import yaml

import models
from models.losses.unit import Vgg16
from options import TestOptions, TrainOptions
from util.checkpoint import CheckpointError

TINY = ["--gpu_ids", "-1", "--ngf", "8", "--ndf", "8", "--load_size", "32", "--crop_size", "32", "--num_scales", "2",
        "--display_id", "0", "--num_threads", "0", "--no_progress"]  # fmt: skip


def parse(root, tmp_path, *extra, train=True):
    tiny = TINY if train else TINY[:10] + ["--num_threads", "0", "--no_progress"]  # no D / display flags
    argv = ["--model", "unit", "--dataroot", root, "--checkpoints_dir", str(tmp_path / "ck"), *tiny, *extra]
    return (TrainOptions() if train else TestOptions()).parse(argv, save=False)


def build(root, tmp_path, *extra, train=True):
    torch.manual_seed(0)
    model = models.create_model(parse(root, tmp_path, *extra, train=train))
    model.setup()
    return model


class Noise:
    """Injected posterior noise: hands out the given tensors in order and records the requests."""

    def __init__(self, tensors):
        self.tensors, self.shapes = list(tensors), []

    def __call__(self, h):
        self.shapes.append(tuple(h.shape))
        n = self.tensors.pop(0)
        assert n.shape == h.shape
        return n


def images(seed, n=1, size=32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def lsgan_d(dis, fake, real):
    return sum(torch.mean(f**2) + torch.mean((r - 1) ** 2) for f, r in zip(dis(fake), dis(real)))


# ---------------------------------------------------------------- options


def test_official_defaults(synthetic_root, tmp_path):
    opt = parse(
        synthetic_root, tmp_path, "--ngf", "64", "--ndf", "64", "--num_scales", "3", "--crop_size", "64"
    )
    assert (opt.lr, opt.beta1, opt.beta2, opt.weight_decay) == (1e-4, 0.5, 0.999, 1e-4)
    assert (opt.lr_policy, opt.step_size, opt.gamma, opt.max_steps) == ("step", 100000, 0.5, 1_000_000)
    assert (opt.gan_w, opt.recon_x_w, opt.recon_kl_w, opt.recon_x_cyc_w, opt.recon_kl_cyc_w, opt.vgg_w) == (
        1,
        10,
        0.01,
        10,
        0.01,
        0,
    )
    assert (opt.n_downsample, opt.n_res, opt.gen_activ, opt.gen_pad_type) == (2, 4, "relu", "reflect")
    assert (opt.n_layer, opt.num_scales, opt.dis_norm, opt.dis_activ, opt.gan_type) == (
        4,
        3,
        "none",
        "lrelu",
        "lsgan",
    )
    assert (opt.init_type, opt.batch_size) == ("kaiming", 1)
    # official dotted key names work as flags
    opt = parse(synthetic_root, tmp_path, "--gen.dim", "16", "--dis.n_layer", "3", "--max_iter", "7")
    assert (opt.ngf, opt.n_layer, opt.max_steps) == (16, 3, 7)


def test_config_import(synthetic_root, tmp_path):
    config = {
        "image_save_iter": 10000, "image_display_iter": 500, "display_size": 16, "snapshot_save_iter": 10000,
        "log_iter": 10, "max_iter": 1000, "batch_size": 1, "weight_decay": 0.0001, "beta1": 0.5, "beta2": 0.999,
        "init": "gaussian", "lr": 0.0002, "lr_policy": "constant", "step_size": 100000, "gamma": 0.5, "gan_w": 1,
        "recon_x_w": 10, "recon_h_w": 0, "recon_kl_w": 0.01, "recon_x_cyc_w": 10, "recon_kl_cyc_w": 0.01,
        "vgg_w": 0, "gen": {"dim": 8, "activ": "relu", "n_downsample": 2, "n_res": 2, "pad_type": "reflect",
                            "mlp_dim": 256, "style_dim": 8},
        "dis": {"dim": 8, "norm": "none", "activ": "lrelu", "n_layer": 3, "gan_type": "nsgan", "num_scales": 2,
                "pad_type": "reflect"},
        "input_dim_a": 3, "input_dim_b": 3, "num_workers": 0, "new_size": 32, "crop_image_height": 32,
        "crop_image_width": 32, "data_root": synthetic_root,
    }  # fmt: skip
    path = tmp_path / "unit_toy_folder.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = ["--model", "unit", "--config", str(path), "--gpu_ids", "-1", "--display_id", "0", "--n_res", "3"]
    opt = TrainOptions().parse(argv, save=False)
    assert (opt.ngf, opt.ndf, opt.n_layer, opt.num_scales, opt.gan_type) == (8, 8, 3, 2, "nsgan")
    assert (opt.lr, opt.lr_policy, opt.max_steps, opt.init_type, opt.dataroot) == (
        2e-4,
        "constant",
        1000,
        "normal",
        synthetic_root,
    )
    assert (opt.load_size, opt.crop_size, opt.print_freq, opt.save_latest_freq) == (32, 32, 10, 10000)
    assert opt.n_res == 3  # the command line wins over the config
    model = models.create_model(opt)
    model.setup()
    assert model.schedulers == {}  # constant policy
    # List mode (the gta2city configs): folder + list file per domain and phase.
    lists = {f"data_{kind}_{phase}_{d}": str(tmp_path / f"{kind}_{phase}_{d}") for kind in ("folder", "list")
             for phase in ("train", "test") for d in "ab"}  # fmt: skip
    path.write_text(yaml.safe_dump({**config, **lists}))
    opt = TrainOptions().parse(argv, save=False)
    assert (opt.list_A, opt.list_root_A) == (lists["data_list_train_a"], lists["data_folder_train_a"])
    assert (opt.list_B, opt.list_root_B) == (lists["data_list_train_b"], lists["data_folder_train_b"])
    test_opt = TestOptions().parse(["--model", "unit", "--config", str(path), "--gpu_ids", "-1"], save=False)
    assert (test_opt.list_A, test_opt.list_root_B) == (lists["data_list_test_a"], lists["data_folder_test_b"])
    config["data_lists"] = "typo.txt"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit):
        TrainOptions().parse(argv, save=False)


@pytest.mark.parametrize(
    "content,expected",
    [(None, "cannot read it (No such file or directory)"), ("gen: [1\n", "not valid YAML at line 2"),
     ("- 1\n", "expected a mapping of UNIT config keys, got list"), ("gen_dim: 8\n", "gen_dim is not a UNIT config key")],
)  # fmt: skip
def test_a_bad_config_file_is_one_line(tmp_path, capsys, content, expected):
    path = tmp_path / "unit.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        TrainOptions().parse(["--model", "unit", "--config", str(path), "--dataroot", str(tmp_path)], save=False)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and f"--config {path}: {expected}" in err


@pytest.mark.parametrize(
    "extra",
    [
        ["--num_scales", "3"],  # 32 px is too small for a 3-scale, 4-layer D
        ["--crop_size", "30", "--load_size", "30"],  # not divisible by 4
        ["--recon_h_w", "1"],
        ["--vgg_w", "1"],  # no --vgg_weights
        ["--lr_policy", "linear"],
        ["--share_layers", "1", "--unit_shared_enc_blocks", "1"],
        ["--unit_shared_dec_blocks", "5"],
    ],
)
def test_invalid_options(synthetic_root, tmp_path, extra):
    with pytest.raises(SystemExit):
        parse(synthetic_root, tmp_path, *extra)


# ---------------------------------------------------------------- one iteration vs the official formulas


def test_iteration_matches_official_formulas(synthetic_root, tmp_path):
    model = build(synthetic_root, tmp_path, "--recon_kl_w", "0.5", "--gan_w", "2", "--no-unit_fast_step")
    assert not model.gen_a.dec.fast
    opt = model.opt
    x_a, x_b = images(1), images(2)
    model.set_input({"A": x_a, "B": x_b})
    g = torch.Generator().manual_seed(3)
    noise = [torch.randn(1, 32, 8, 8, generator=g) for _ in range(6)]
    model.noise_fn = Noise(noise)
    gen_a, gen_b, dis_a, dis_b = (
        copy.deepcopy(getattr(model, n)) for n in ("gen_a", "gen_b", "dis_a", "dis_b")
    )
    model.update_D()
    with torch.no_grad():
        h_a, h_b = gen_a.enc(x_a), gen_b.enc(x_b)
        x_ba, x_ab = gen_a.dec(h_b + noise[1]), gen_b.dec(h_a + noise[0])
        exp_a, exp_b = lsgan_d(dis_a, x_ba, x_a), lsgan_d(dis_b, x_ab, x_b)
    torch.testing.assert_close(model.loss_dis_a, exp_a, rtol=1e-6, atol=0)
    torch.testing.assert_close(model.loss_dis_b, exp_b, rtol=1e-6, atol=0)
    torch.testing.assert_close(model.loss_dis_total, 2 * exp_a + 2 * exp_b, rtol=1e-6, atol=0)
    assert abs(model.loss_dis_a.item() - opt.num_scales) < 0.05  # D outputs ~0 at init
    # G sees the updated D (D step first, as the official trainer)
    gen_a, gen_b, dis_a, dis_b = (
        copy.deepcopy(getattr(model, n)) for n in ("gen_a", "gen_b", "dis_a", "dis_b")
    )
    model.update_G()
    assert model.noise_fn.tensors == []
    n_a, n_b, n_b_rec, n_a_rec = noise[2:]
    with torch.no_grad():
        h_a, h_b = gen_a.enc(x_a), gen_b.enc(x_b)
        x_aa, x_bb = gen_a.dec(h_a + n_a), gen_b.dec(h_b + n_b)
        x_ba, x_ab = gen_a.dec(h_b + n_b), gen_b.dec(h_a + n_a)
        h_b_rec, h_a_rec = gen_a.enc(x_ba), gen_b.enc(x_ab)
        x_aba, x_bab = gen_a.dec(h_a_rec + n_a_rec), gen_b.dec(h_b_rec + n_b_rec)
        expected = {
            "gen_adv_a": sum(torch.mean((o - 1) ** 2) for o in dis_a(x_ba)),
            "gen_adv_b": sum(torch.mean((o - 1) ** 2) for o in dis_b(x_ab)),
            "gen_recon_x_a": (x_aa - x_a).abs().mean(), "gen_recon_x_b": (x_bb - x_b).abs().mean(),
            "gen_recon_kl_a": (h_a**2).mean(), "gen_recon_kl_b": (h_b**2).mean(),
            "gen_cyc_x_a": (x_aba - x_a).abs().mean(), "gen_cyc_x_b": (x_bab - x_b).abs().mean(),
            "gen_recon_kl_cyc_aba": (h_a_rec**2).mean(), "gen_recon_kl_cyc_bab": (h_b_rec**2).mean(),
        }  # fmt: skip
    for name, value in expected.items():
        torch.testing.assert_close(getattr(model, f"loss_{name}"), value, rtol=1e-5, atol=1e-7, msg=name)
    total = (2 * (expected["gen_adv_a"] + expected["gen_adv_b"])
             + 10 * (expected["gen_recon_x_a"] + expected["gen_recon_x_b"])
             + 0.5 * (expected["gen_recon_kl_a"] + expected["gen_recon_kl_b"])
             + 10 * (expected["gen_cyc_x_a"] + expected["gen_cyc_x_b"])
             + 0.01 * (expected["gen_recon_kl_cyc_aba"] + expected["gen_recon_kl_cyc_bab"]))  # fmt: skip
    torch.testing.assert_close(model.loss_gen_total, total, rtol=1e-5, atol=0)
    # images in (-1, 1), two encoder-decoder passes of float rounding apart
    torch.testing.assert_close(model.fake_B, x_ab, rtol=0, atol=1e-5)
    torch.testing.assert_close(model.cyc_A, x_aba, rtol=0, atol=1e-5)


def test_steps_change_the_right_parameters(synthetic_root, tmp_path):
    model = build(synthetic_root, tmp_path, "--gan_type", "nsgan")
    model.set_input({"A": images(1), "B": images(2)})
    nets = {n: copy.deepcopy(getattr(model, n).state_dict()) for n in model.model_names}

    def changed(name):
        now = getattr(model, name).state_dict()
        return any(not torch.equal(now[k], v) for k, v in nets[name].items())

    model.update_D()
    assert changed("dis_a") and changed("dis_b") and not changed("gen_a") and not changed("gen_b")
    nets = {n: copy.deepcopy(getattr(model, n).state_dict()) for n in model.model_names}
    model.update_G()
    assert changed("gen_a") and changed("gen_b") and not changed("dis_a") and not changed("dis_b")
    assert all(p.requires_grad for p in model.dis_a.parameters())
    assert all(torch.isfinite(v) for v in model.get_current_losses().values())
    # nsgan at init: D maps ~0 -> sigmoid 1/2 -> each BCE ~ ln 2, summed over 2 scales
    assert abs(model.loss_gen_adv_a.item() - 2 * 0.6931) < 0.05
    model.noise_fn = Noise([torch.zeros(1, 32, 8, 8)] * 4)
    model.optimize_parameters()  # fast step: n_a, n_b shared by D and G, then the two cycle draws
    assert model.noise_fn.shapes == [(1, 32, 8, 8)] * 4
    official = build(synthetic_root, tmp_path, "--no-unit_fast_step")
    official.set_input({"A": images(1), "B": images(2)})
    official.noise_fn = Noise([torch.zeros(1, 32, 8, 8)] * 6)
    official.optimize_parameters()  # official step: 2 draws for D + 4 for G, in the official order
    assert official.noise_fn.shapes == [(1, 32, 8, 8)] * 6


def test_fast_step_matches_official_formulas(synthetic_root, tmp_path):
    """The default step: one G forward serves D and G, decoders run sub-pixel; given the same noise, every loss
    equals the official formula evaluated with the direct decoders, and all four networks are updated."""
    model = build(synthetic_root, tmp_path, "--recon_kl_w", "0.5", "--gan_w", "2")
    assert model.opt.unit_fast_step and model.gen_a.dec.fast and model.gen_b.dec.fast
    x_a, x_b = images(1), images(2)
    model.set_input({"A": x_a, "B": x_b})
    g = torch.Generator().manual_seed(3)
    noise = [torch.randn(1, 32, 8, 8, generator=g) for _ in range(4)]
    model.noise_fn = Noise(noise)
    before = {n: copy.deepcopy(getattr(model, n)) for n in model.model_names}
    gen_a, gen_b, dis_a, dis_b = before.values()
    gen_a.dec.use_fast_ops(False)
    gen_b.dec.use_fast_ops(False)  # the official op order as reference
    model.optimize_parameters()
    assert model.noise_fn.tensors == []
    for name, net in before.items():  # both generators and both discriminators took a step
        new = getattr(model, name).state_dict()
        assert any(not torch.equal(new[k], v) for k, v in net.state_dict().items()), name
    assert all(p.requires_grad for p in model.dis_a.parameters())
    n_a, n_b, n_b_rec, n_a_rec = noise
    with torch.no_grad():
        h_a, h_b = gen_a.enc(x_a), gen_b.enc(x_b)
        x_aa, x_bb = gen_a.dec(h_a + n_a), gen_b.dec(h_b + n_b)
        x_ba, x_ab = gen_a.dec(h_b + n_b), gen_b.dec(h_a + n_a)  # D trains on the very same translations
        exp_dis_a, exp_dis_b = lsgan_d(dis_a, x_ba, x_a), lsgan_d(dis_b, x_ab, x_b)
        h_b_rec, h_a_rec = gen_a.enc(x_ba), gen_b.enc(x_ab)
        x_aba, x_bab = gen_a.dec(h_a_rec + n_a_rec), gen_b.dec(h_b_rec + n_b_rec)
        # the G step sees the updated D (the G step leaves D as it is)
        expected = {
            "dis_a": exp_dis_a, "dis_b": exp_dis_b, "dis_total": 2 * (exp_dis_a + exp_dis_b),
            "gen_adv_a": sum(torch.mean((o - 1) ** 2) for o in model.dis_a(x_ba)),
            "gen_adv_b": sum(torch.mean((o - 1) ** 2) for o in model.dis_b(x_ab)),
            "gen_recon_x_a": (x_aa - x_a).abs().mean(), "gen_recon_x_b": (x_bb - x_b).abs().mean(),
            "gen_recon_kl_a": (h_a**2).mean(), "gen_recon_kl_b": (h_b**2).mean(),
            "gen_cyc_x_a": (x_aba - x_a).abs().mean(), "gen_cyc_x_b": (x_bab - x_b).abs().mean(),
            "gen_recon_kl_cyc_aba": (h_a_rec**2).mean(), "gen_recon_kl_cyc_bab": (h_b_rec**2).mean(),
        }  # fmt: skip
    assert abs(expected["dis_a"].item() - model.opt.num_scales) < 0.05  # a real D output, not a constant
    for name, value in expected.items():
        torch.testing.assert_close(getattr(model, f"loss_{name}"), value, rtol=1e-5, atol=1e-7, msg=name)
    # images in (-1, 1), two encoder-decoder passes of float rounding apart
    torch.testing.assert_close(model.fake_B, x_ab, rtol=0, atol=1e-5)
    torch.testing.assert_close(model.cyc_A, x_aba, rtol=0, atol=1e-5)


def test_zero_noise_training_path_equals_eval(synthetic_root, tmp_path):
    model = build(synthetic_root, tmp_path, "--recon_x_cyc_w", "0")
    x_a, x_b = images(1), images(2)
    with torch.no_grad():
        expected = model.translate(x_a, "AtoB")["fake_B"]
    model.set_input({"A": x_a, "B": x_b})
    model.noise_fn = Noise([torch.zeros(1, 32, 8, 8)] * 2)
    model.update_G()  # with recon_x_cyc_w 0 no cycle noise is drawn (the official crashes here)
    assert model.noise_fn.tensors == [] and model.cyc_A is None and model.loss_gen_cyc_x_a.item() == 0
    torch.testing.assert_close(model.fake_B.detach(), expected, rtol=0, atol=1e-6)


def test_perceptual_loss_in_the_model(synthetic_root, tmp_path):
    torch.manual_seed(0)
    torch.save(Vgg16().state_dict(), tmp_path / "vgg16.weight")
    model = build(synthetic_root, tmp_path, "--vgg_w", "1", "--vgg_weights", str(tmp_path / "vgg16.weight"))
    assert model.loss_names[-3:] == ["gen_vgg_a", "gen_vgg_b", "gen_total"]
    assert "perceptual" not in model.model_names and model.perceptual.mode == "caffe"
    model.set_input({"A": images(1), "B": images(2)})
    model.optimize_parameters()
    assert model.loss_gen_vgg_a.item() > 0
    assert all(p.grad is None for p in model.perceptual.parameters())


# ---------------------------------------------------------------- sharing and schedules


def test_shared_blocks_step_once(synthetic_root, tmp_path):
    model = build(synthetic_root, tmp_path, "--share_layers", "1")
    assert model.gen_a.enc.model[3].model[-1] is model.gen_b.enc.model[3].model[-1]
    assert model.gen_a.dec.model[0].model[0] is model.gen_b.dec.model[0].model[0]
    params = model.optimizers["G"].param_groups[0]["params"]
    assert len(params) == len({id(p) for p in params}) == 2 * 48 - 8
    assert sum(p.numel() for p in params) == 2 * 176_691 - 2 * 18_496
    shared = model.gen_a.enc.model[3].model[-1].model[0].conv.weight
    before = shared.detach().clone()
    model.set_input({"A": images(1), "B": images(2)})
    model.optimize_parameters()
    # A first Adam step moves each weight by at most lr; a tensor listed twice would move up to 2 lr.
    assert (shared.detach() - before).abs().max().item() <= 1e-4 * 1.001
    assert model.optimizers["G"].state[shared]["step"].item() == 1


def test_step_schedule_counts_iterations(synthetic_root, tmp_path):
    model = build(synthetic_root, tmp_path, "--step_size", "2", "--gamma", "0.5")
    model.on_epoch_end()  # epochs do not move the schedule
    assert model.current_lr() == 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler stepped before optimizer": no update is needed here
        model.on_step_end()
        model.on_step_end()
    assert [o.param_groups[0]["lr"] for o in model.optimizers.values()] == [5e-5, 5e-5]


# ---------------------------------------------------------------- official checkpoints


def official_files(model, folder, iteration, *, running_stats=False):
    os.makedirs(folder, exist_ok=True)
    gen = {"a": model.gen_a.state_dict(), "b": model.gen_b.state_dict()}
    if running_stats:  # torch-0.3 files carry InstanceNorm running statistics
        for sd in gen.values():
            sd["enc.model.0.norm.running_mean"] = torch.zeros(8)
            sd["enc.model.0.norm.running_var"] = torch.ones(8)
    torch.save(gen, os.path.join(folder, f"gen_{iteration:08d}.pt"))
    torch.save({"a": model.dis_a.state_dict(), "b": model.dis_b.state_dict()},
               os.path.join(folder, f"dis_{iteration:08d}.pt"))  # fmt: skip
    torch.save({"gen": model.optimizers["G"].state_dict(), "dis": model.optimizers["D"].state_dict()},
               os.path.join(folder, "optimizer.pt"))  # fmt: skip


def test_official_training_checkpoint_import(synthetic_root, tmp_path):
    src = build(synthetic_root, tmp_path)
    src.set_input({"A": images(1), "B": images(2)})
    src.optimize_parameters()
    folder = tmp_path / "outputs" / "unit_toy" / "checkpoints"
    official_files(src, str(folder), 10, running_stats=True)
    dst = build(synthetic_root, tmp_path, "--official_checkpoint", str(folder / "gen_00000010.pt"),
                "--step_size", "4", "--seed", "5")  # fmt: skip
    for name in ("gen_a", "gen_b", "dis_a", "dis_b"):
        a, b = getattr(src, name).state_dict(), getattr(dst, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    exp_avg = [s["exp_avg"] for s in dst.optimizers["G"].state.values()]
    assert len(exp_avg) == 96 and any(e.abs().sum() > 0 for e in exp_avg)
    assert dst.current_lr() == pytest.approx(1e-4 * 0.5**2)  # iteration 10, decay every 4
    shared = build(synthetic_root, tmp_path, "--share_layers", "1")
    with pytest.raises(CheckpointError, match="without shared blocks"):
        shared.load_official(str(folder), with_dis=False)


# ---------------------------------------------------------------- inference and scripts


def test_translate(synthetic_root, tmp_path):
    model = build(synthetic_root, tmp_path, "--num_style", "2", train=False)
    x = images(4, n=2)
    with torch.no_grad():
        out = model.translate(x, "AtoB")
        assert list(out) == ["real_A", "fake_B", "fake_B_000", "fake_B_001"]
        torch.testing.assert_close(out["fake_B"], model.gen_b.decode(model.gen_a.encode(x)), rtol=0, atol=0)
        assert not torch.allclose(out["fake_B_000"], out["fake_B_001"])
        back = model.translate(x, "BtoA")
        assert list(back)[:2] == ["real_B", "fake_A"] and back["fake_A"].shape == x.shape
    assert model.size_multiple() == 4
    model = build(synthetic_root, tmp_path, "--minmax_output", train=False)
    with torch.no_grad():
        fake = model.translate(x, "AtoB")["fake_B"]
    assert torch.allclose(fake.amin(dim=(1, 2, 3)), torch.full((2,), -1.0))
    assert torch.allclose(fake.amax(dim=(1, 2, 3)), torch.full((2,), 1.0))


def test_train_and_test_scripts(synthetic_root, tmp_path, capsys):
    import test as test_script
    import train

    common = ["--model", "unit", "--dataroot", synthetic_root, "--name", "u", "--checkpoints_dir",
              str(tmp_path / "ck"), *TINY]  # fmt: skip
    assert train.main([*common, "--max_iter", "2", "--print_freq", "1"]) == 0
    assert os.path.isfile(tmp_path / "ck" / "u" / "latest.pth")
    test_args = ["--model", "unit", "--dataroot", synthetic_root, "--name", "u", "--checkpoints_dir",
                 str(tmp_path / "ck"), "--gpu_ids", "-1", "--ngf", "8", "--load_size", "32", "--crop_size", "32",
                 "--num_threads", "0", "--no_progress", "--results_dir", str(tmp_path / "res"), "--num_style", "1",
                 "--num_test", "1"]  # fmt: skip
    assert test_script.main(test_args) == 0
    names = sorted(os.listdir(tmp_path / "res" / "u" / "test_latest" / "images"))
    assert len(names) == 6 and any(n.endswith("_fake_B_000.png") for n in names)
    # An official gen_XXXXXXXX.pt placed in an experiment folder is found by test.py.
    model = build(synthetic_root, tmp_path)
    official_files(model, str(tmp_path / "ck" / "official"), 1234)
    test_args[test_args.index("u")] = "official"
    assert test_script.main([*test_args, "--epoch", "1234"]) == 0
    capsys.readouterr()
    # dry run at the official size prints the official parameter counts
    assert train.main(["--model", "unit", "--dry_run", "--gpu_ids", "-1", "--display_id", "0",
                       "--num_threads", "0", "--dataroot", synthetic_root, "--checkpoints_dir", str(tmp_path / "ck")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "[Network gen_a] Total number of parameters: 11140483" in out
    assert "[Network dis_b] Total number of parameters: 8271171" in out
