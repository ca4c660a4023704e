"""export.py --format official: every model's checkpoint written in the official layout loads back unchanged
through the model's own official importer (import(export(x)) == x), and the CLI writes the official names."""

from __future__ import annotations

import os

import pytest
import torch

import export
import models
from options import TrainOptions
from util.checkpoint import FORMAT, VERSION, atomic_save
from util.official_export import PER_NETWORK_FILES, SUPPORTED, export_official

BASE = ["--gpu_ids", "-1", "--display_id", "0", "--num_threads", "0", "--no_progress"]
SMALL = ["--ngf", "8", "--ndf", "8", "--load_size", "32", "--crop_size", "32"]
UGATIT = ["--ch", "4", "--img_size", "96", "--light", "True", "--n_res", "1"]
ARGS = {
    "cycle_gan": SMALL,
    "cut": [*SMALL, "--netF_nc", "16"],
    "srunit": [*SMALL, "--netF_nc", "16"],
    "liss": ["--ngf", "8", "--ndf", "8", "--load_size", "96", "--crop_size", "96", "--jigsaw_size", "84"],
    "ugatit": UGATIT,
    "ugatit_enhanced": UGATIT,
    "unit": [*SMALL, "--num_scales", "2"],
    "tunit": [*SMALL, "--output_k", "4", "--sty_dim", "16", "--tunit_g_nf", "8", "--tunit_g_nf_mlp", "32",
              "--tunit_c_widths", "4,M,8,M,16,16,M,32,32,M,32,32,M", "--tunit_d_nf", "8", "--tunit_d_max_nf", "32"],
}  # fmt: skip
PROGRESS = {"epoch": 4, "epoch_iter": 0, "global_step": 120}  # after 3 finished epochs, 120 steps


def build(name: str, root: str, seed: int):
    opt = TrainOptions().parse(["--model", name, "--dataroot", root, *BASE, *ARGS[name]], save=False)
    torch.manual_seed(seed)
    return models.create_model(opt)


def our_checkpoint(model) -> dict:
    return {"format": FORMAT, "version": VERSION, "model": model.opt.model, "options": model.opt.to_dict(),
            "networks": model.network_state(), "progress": dict(PROGRESS)}  # fmt: skip


def import_back(model, out_dir: str, names: list[str]) -> None:
    """Each model's existing official importer (the inverse under test)."""
    if model.opt.model == "unit":
        model.load_official(out_dir, with_dis=True)
    elif model.opt.model.startswith("ugatit"):
        assert model.import_official(out_dir, str(PROGRESS["global_step"]), names)
    else:  # per-network files, TUNIT's checkpoint.txt (latest)
        assert model.import_official(out_dir, "latest", names)


def test_every_model_but_the_test_model_has_a_layout():
    assert set(SUPPORTED) == set(models.model_names()) - {"test"}


@pytest.mark.parametrize("name", SUPPORTED)
def test_round_trip_through_the_official_importer(name, synthetic_root, class_root, tmp_path):
    root = class_root if name == "tunit" else synthetic_root
    source = build(name, root, seed=1)
    ckpt = our_checkpoint(source)
    written = export_official(ckpt, str(tmp_path), "latest", dataset="selfie2anime")
    exported = PER_NETWORK_FILES.get(name, ckpt["networks"])
    if name == "liss":
        assert not any("gray" in os.path.basename(p) for p in written)  # not saved officially either
    target = build(name, root, seed=2)
    import_back(target, str(tmp_path), list(exported))
    for net_name in exported:
        expected, got = ckpt["networks"][net_name], getattr(target, net_name).state_dict()
        assert expected.keys() == got.keys(), net_name
        for key, value in expected.items():
            assert torch.equal(got[key], value), (net_name, key)


def test_the_cli_writes_the_official_names(synthetic_root, class_root, tmp_path, capsys):
    ckpts = tmp_path / "checkpoints"
    names = {"cycle_gan": ["latest_net_G_A.pth", "latest_net_G_B.pth", "latest_net_D_A.pth", "latest_net_D_B.pth"],
             "ugatit": ["selfie2anime_params_0000120.pt"], "unit": ["gen_00000120.pt", "dis_00000120.pt"],
             "tunit": ["model_3.ckpt", "checkpoint.txt"]}  # fmt: skip
    data = os.path.join(str(tmp_path), "selfie2anime")
    os.symlink(synthetic_root, data)
    for name, files in names.items():
        os.makedirs(ckpts / name)
        root = class_root if name == "tunit" else synthetic_root
        atomic_save(our_checkpoint(build(name, root, seed=0)), str(ckpts / name / "latest.pth"))
        argv = ["--name", name, "--checkpoints_dir", str(ckpts), "--model", name, "--dataroot", data,
                "--format", "official", "--gpu_ids", "-1"]  # fmt: skip
        assert export.main(argv) == 0, capsys.readouterr().err
        assert sorted(os.listdir(ckpts / name / "official")) == sorted(files), name
    out = tmp_path / "elsewhere"
    assert export.main(["--name", "unit", "--checkpoints_dir", str(ckpts), "--model", "unit", "--format",
                        "official", "--out", str(out), "--gpu_ids", "-1"]) == 0  # fmt: skip
    assert sorted(os.listdir(out)) == ["dis_00000120.pt", "gen_00000120.pt"]
    assert export.main(["--name", "nothing", "--checkpoints_dir", str(ckpts), "--format", "official"]) == 1
    assert "no checkpoint" in capsys.readouterr().err
