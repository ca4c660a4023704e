"""FID/KID of a trained model's translations: test.py --compute_fid, train-time evaluation and rescore.

A randomly initialised Inception of the right architecture is saved as a pytorch-fid-style weights file, and
the 64-d features (pytorch-fid's --dims 64) keep the run fast; the pipeline is the same as for 2048.
"""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch
from conftest import TINY

import models
import train
from options import TestOptions, TrainOptions
from util.checkpoint import load_checkpoint
from util.metrics import rescore
from util.metrics.evaluate import PeriodicEvaluator, evaluate_translation, score_test_results
from util.metrics.fid import compute_folder_metrics
from util.metrics.inception import FIDInceptionV3
from util.test_loop import Tester


@pytest.fixture(scope="module")
def run(tmp_path_factory, synthetic_root):
    root = tmp_path_factory.mktemp("evaluate")
    data = synthetic_root  # 3 test images a domain
    ckpts = str(root / "checkpoints")
    # What test.py and the evaluation also take (TINY has train.py's display option besides).
    net_args = ["--dataroot", data, "--name", "x", "--checkpoints_dir", ckpts, "--gpu_ids", "-1", "--ngf", "8",
                "--ndf", "8", "--crop_size", "32"]  # fmt: skip
    one_epoch = ["--n_epochs", "1", "--n_epochs_decay", "0", "--save_epoch_freq", "1"]
    assert train.main([*net_args, *TINY, *one_epoch]) == 0
    torch.manual_seed(0)
    net = FIDInceptionV3()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    weights = str(root / "inception.pth")
    torch.save(net.state_dict(), weights)
    fid = {
        "fid_weights": weights,
        "fid_batch_size": 50,
        "fid_dims": 64,
        "fid_cache_dir": str(root / "cache"),
        "fid_num_images": 0,
    }
    return {"root": root, "data": data, "ckpts": ckpts, "net_args": net_args, "fid": fid}


def test_compute_fid_scores_the_saved_translations(run):
    out = run["root"] / "out"
    opt = TestOptions().parse(
        [
            *run["net_args"],
            "--model",
            "cycle_gan",
            "--num_threads",
            "0",
            "--no_progress",
            "--results_dir",
            str(run["root"] / "results"),
            "--output_path",
            str(out),
        ],
        save=False,
    )
    tester = Tester(opt.replace(compute_fid=True, **run["fid"]))
    tester.run()
    metrics = score_test_results(tester)
    assert set(metrics) == {
        "fid",
        "fid_AtoB",
        "kid_AtoB",
        "kid_std_AtoB",
        "fid_BtoA",
        "kid_BtoA",
        "kid_std_BtoA",
    }
    assert metrics["fid"] == pytest.approx((metrics["fid_AtoB"] + metrics["fid_BtoA"]) / 2)
    with open(os.path.join(tester.web_dir, "metrics.json")) as f:
        assert json.load(f) == metrics
    # Scoring in memory equals pytorch-fid-style scoring of the PNG files test.py wrote.
    for direction, target in (("AtoB", "testB"), ("BtoA", "testA")):
        files = compute_folder_metrics(
            str(out / direction),
            os.path.join(run["data"], target),
            run["fid"]["fid_weights"],
            dims=64,
            kid=False,
        )
        assert files["n_a"] == 3 and files["fid"] == pytest.approx(metrics[f"fid_{direction}"], rel=1e-4)


def test_compute_fid_without_weights_skips_with_one_line_and_succeeds(run, no_weights, capsys):
    import test as test_script

    args = [*run["net_args"], "--model", "cycle_gan", "--num_threads", "0", "--no_progress", "--num_test", "1",
            "--results_dir", str(run["root"] / "results_no_weights"), "--compute_fid"]  # fmt: skip
    assert test_script.main(args) == 0
    assert capsys.readouterr().out.count("FID/KID skipped") == 1


def test_training_evaluation_keeps_best_and_leaves_training_untouched(run):
    opt = TrainOptions().parse([*run["net_args"], "--num_threads", "0"], save=False)
    opt = opt.replace(eval_freq=2, eval_phase="test", **run["fid"])
    model = models.create_model(opt)
    model.load_network_state(load_checkpoint(os.path.join(run["ckpts"], "x", "latest.pth"))["networks"])
    expr_dir = str(run["root"] / "eval_run")
    os.makedirs(expr_dir)
    evaluator = PeriodicEvaluator(opt, expr_dir)
    rng = torch.get_rng_state()
    assert evaluator.due(4) and not evaluator.due(3)
    assert evaluator.evaluate(model, epoch=1, step=2) is True  # first score: the best so far
    assert evaluator.evaluate(model, epoch=1, step=4) is False  # same weights: not better
    assert torch.equal(torch.get_rng_state(), rng) and model.netG_A.training
    with open(os.path.join(expr_dir, "eval_history.json")) as f:
        history = json.load(f)
    assert [h["step"] for h in history] == [2, 4] and history[0]["fid"] == pytest.approx(history[1]["fid"])
    assert PeriodicEvaluator(opt, expr_dir).best == pytest.approx(history[0]["fid"])
    direct = evaluate_translation(model, opt, phase="test", eval_mode=True)
    assert direct["fid_AtoB"] == pytest.approx(history[0]["fid_AtoB"])


def test_rescore_scores_every_checkpoint(run, capsys):
    args = [
        "--name",
        "x",
        "--checkpoints_dir",
        run["ckpts"],
        "--fid_weights",
        run["fid"]["fid_weights"],
        "--dims",
        "64",
        "--fid_cache_dir",
        run["fid"]["fid_cache_dir"],
    ]
    assert rescore.main(args) == 0  # the default --gpu_ids: the GPU where there is one, else quietly the CPU
    out = capsys.readouterr().out
    assert "(* lowest mean FID)" in out and "asked for CUDA" not in out
    with open(os.path.join(run["ckpts"], "x", "rescore.csv")) as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["checkpoint"] for r in rows) == ["1", "latest"]
    assert {r["checkpoint"]: r["epoch"] for r in rows} == {"1": "1", "latest": "1"}  # the epoch each holds
    assert float(rows[0]["fid"]) == pytest.approx(float(rows[1]["fid"]))  # both hold the final weights
