"""Parse-time behaviour a newcomer meets first: per-model --help, machine defaults, length and size checks."""

from __future__ import annotations

import contextlib
import io

import pytest

import models
from options import TestOptions, TrainOptions, machine


def help_text(argv: list[str], options=TrainOptions) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        options().parse([*argv, "--help"], save=False)
    assert exc.value.code == 0
    return out.getvalue()


@pytest.mark.parametrize(
    "model,flag,test_flag,group",
    [
        ("cut", "--lambda_NCE", "--no_antialias", "cut options"),
        ("ugatit", "--light", "--light", "U-GAT-IT (official option names)"),
        ("tunit", "--output_k", "--output_k", "tunit options"),
    ],
)
def test_help_lists_the_models_and_dataset_modes_options(model, flag, test_flag, group):
    text = help_text(["--model", model])
    assert flag in text and group in text and "dataset mode" in text
    assert "--ngf" in text and "--n_epochs" in text  # base and train options stay
    test_text = help_text(["--model", model], TestOptions)
    assert test_flag in test_text and "--results_dir" in test_text


def test_help_of_the_default_model_has_its_options():
    assert "--lambda_identity" in help_text([])
    assert "--lambda_NCE" not in help_text([])


# ---------------------------------------------------------------- machine defaults
def test_workers_and_threads_share_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [machine.default_workers(c) for c in (1, 2, 3, 4, 8, 16, 64)] == [0, 0, 0, 1, 3, 4, 4]
    for cores in (1, 2, 4, 8, 16):
        workers = machine.default_workers(cores)
        threads = machine.default_torch_threads(cores, workers)
        assert threads >= 1 and (cores == 1 or workers + threads <= cores)
    assert machine.default_workers(8, processes=4) == 0  # two cores per torchrun process
    assert machine.default_torch_threads(8, 0, processes=4) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert machine.default_torch_threads(16, 4) == 3  # an explicit OMP_NUM_THREADS wins


def test_parsed_defaults_come_from_the_usable_cores(synthetic_root, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(machine, "usable_cores", lambda: 2)
    opt = TrainOptions().parse(["--dataroot", synthetic_root], save=False)
    assert (opt.num_threads, opt.torch_threads) == (0, 2)  # no worker warning on 2 cores
    monkeypatch.setattr(machine, "usable_cores", lambda: 8)
    opt = TrainOptions().parse(["--dataroot", synthetic_root, "--num_threads", "1"], save=False)
    assert (opt.num_threads, opt.torch_threads) == (1, 7)


# ---------------------------------------------------------------- length options
def parse_error(capsys, argv: list[str], options=TrainOptions) -> str:
    with pytest.raises(SystemExit) as exc:
        options().parse(argv, save=False)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


@pytest.mark.parametrize(
    "model,length", [("ugatit", "--iteration"), ("unit", "--max_iter"), ("tunit", "--tunit_epochs")]
)
def test_iteration_models_refuse_epoch_counts(capsys, synthetic_root, class_root, model, length):
    root = class_root if model == "tunit" else synthetic_root
    for given, flag in ((["--n_epochs", "3"], "--n_epochs"), (["--n_epochs_decay=3"], "--n_epochs_decay")):
        err = parse_error(capsys, ["--model", model, "--dataroot", root, *given])
        assert length in err and flag in err
    TrainOptions().parse(["--model", model, "--dataroot", root], save=False)  # defaults: fine


def test_epoch_models_keep_their_epoch_counts(synthetic_root):
    opt = TrainOptions().parse(["--model", "cut", "--CUT_mode", "FastCUT", "--dataroot", synthetic_root,
                                "--n_epochs", "7"], save=False)  # fmt: skip
    assert (opt.n_epochs, opt.n_epochs_decay) == (7, 50)


# ---------------------------------------------------------------- value ranges and sizes
@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--lr", "-1"], "--lr must be >= 0"),
        (["--num_threads", "-1"], "--num_threads must be >= 0"),
        (["--ngf", "0"], "--ngf must be >= 1"),
        (["--netG", "unet_256", "--crop_size", "30"], "--crop_size 30 is too small: --model cycle_gan"),
        (["--netD", "n_layers", "--n_layers_D", "5", "--crop_size", "64"], "at least 96 x 96"),
        (["--model", "ugatit", "--img_size", "32"], "--img_size 32 is too small: --model ugatit"),
        (["--model", "unit", "--crop_size", "32"], "at least 64 x 64"),
        (["--model", "unit", "--crop_size", "16", "--num_scales", "2"], "at least 32 x 32"),
        (["--model", "liss", "--crop_size", "80", "--jigsaw_size", "78"], "at least 84 x 84"),
        (["--model", "tunit", "--crop_size", "16", "--load_size", "16"], "at least 32 x 32"),
        (["--preprocess", "scale_width", "--load_size", "16"], "--load_size 16 is too small"),
        (["--crop_size", "70", "--load_size", "72"], "--crop_size 70 is not a multiple of 4: --model cycle_gan"),
        (["--model", "cut", "--crop_size", "66"], "(use 64 or 68)"),
        (["--model", "ugatit", "--img_size", "98"], "--img_size 98 is not a multiple of 4"),
        (["--netG", "unet_128", "--crop_size", "192"], "--crop_size 192 is not a multiple of 128"),
    ],
)
def test_bad_values_fail_at_parse_time_in_one_line(capsys, synthetic_root, argv, expected):
    assert expected in parse_error(capsys, ["--dataroot", synthetic_root, *argv])


def test_test_time_minimum_is_the_generators(capsys, synthetic_root):
    opt = TestOptions().parse(["--dataroot", synthetic_root, "--crop_size", "8"], save=False)
    TestOptions().parse(["--dataroot", synthetic_root, "--crop_size", "70"], save=False)  # test.py pads, any size
    assert models.find_model_class("cycle_gan").min_image_size(opt) == 8
    assert "at least 8 x 8" in parse_error(capsys, ["--dataroot", synthetic_root, "--crop_size", "4"], TestOptions)


def test_options_are_not_abbreviated(capsys, synthetic_root):
    assert "unrecognized arguments: --lambda_ident" in parse_error(
        capsys, ["--dataroot", synthetic_root, "--lambda_ident", "0"]
    )


def test_given_options_ignore_values_that_look_like_flags():
    from options.checks import given_options

    parser = TrainOptions().build_parser(["--model", "cut"])
    given = given_options(parser, ["--model", "cut", "--name", "x", "--n_epochs=3", "--no-fast_cpu_convs"])
    assert given == {"model", "name", "n_epochs", "fast_cpu_convs"}


# ---------------------------------------------------------------- unknown flags
@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--lamda_A", "5"], "--lamda_A: did you mean --lambda_A?"),
        (["--lambda-A", "5"], "--lambda-A: did you mean --lambda_A?"),
        (["--lambda_NCE", "5"], "--lambda_NCE is an option of --model cut, srunit"),  # not "--lambda_B?"
        (["--light", "True"], "--light is an option of --model ugatit, ugatit_enhanced"),
    ],
)
def test_an_unknown_flag_gets_a_suggestion(capsys, synthetic_root, argv, expected):
    err = parse_error(capsys, ["--model", "cycle_gan", "--dataroot", synthetic_root, *argv])
    assert "unrecognized arguments" in err
    assert expected in err and err.count("\n") == 0


def test_a_flag_like_nothing_gets_no_suggestion(capsys, synthetic_root):
    err = parse_error(capsys, ["--dataroot", synthetic_root, "--zzzqqq", "1"])
    assert err.endswith("unrecognized arguments: --zzzqqq 1 (--help lists the options)")
