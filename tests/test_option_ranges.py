"""Every bad option value stops at parse time with one line naming the option (exit status 2), never a traceback
from deep inside a network, a scheduler or the data loader."""

from __future__ import annotations

import pytest

from options import TestOptions, TrainOptions

HUGE = "9" * 5000  # beyond Python's int-from-str limit: argparse's own message, shortened
LONG = "9" * 4000  # parses, but no option can use it

# (argv, what the error line must contain: the option as spelled in the message)
TRAIN_CASES = [
    # experiment name and suffix
    (["--name", ""], "--name"),
    (["--name", "  "], "--name"),
    (["--name", "."], "--name"),
    (["--name", ".."], "--name"),
    (["--name", "../elsewhere"], "--name"),
    (["--name", "group/exp"], "--name"),
    (["--name", "exp", "--suffix", "{dataroot}"], "--name (with --suffix)"),
    (["--suffix", "{bogus}"], "--suffix: unknown field {bogus}"),
    (["--suffix", "{"], "--suffix"),
    (["--suffix", "{0}"], "--suffix"),
    (["--suffix", "{lr:d}"], "--suffix"),
    # shared numbers
    (["--max_dataset_size", "0"], "--max_dataset_size"),
    (["--max_dataset_size", "-1"], "--max_dataset_size"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--beta1", "1"], "--beta1"),
    (["--beta1", "-0.5"], "--beta1"),
    (["--beta2", "1.5"], "--beta2"),
    (["--beta2", "nan"], "--beta2"),
    (["--init_gain", "-0.02"], "--init_gain"),
    (["--init_gain", "-inf"], "--init_gain"),
    (["--pool_size", "-1"], "--pool_size"),
    (["--epoch_count", "0"], "--epoch_count"),
    (["--epoch_count", "-3"], "--epoch_count"),
    (["--lr_policy", "step", "--lr_decay_iters", "0"], "--lr_decay_iters"),
    (["--model", "cycle_gan", "--lambda_A", "nan"], "--lambda_A"),
    # huge integers
    (["--crop_size", HUGE], "--crop_size"),
    (["--load_size", HUGE], "--load_size"),
    (["--crop_size", LONG], "--crop_size"),
    (["--seed", LONG], "--seed"),
    (["--crop_size", "70000", "--load_size", "70000"], "--load_size"),
    (["--model", "ugatit", "--img_size", LONG], "--img_size"),
    # CUT / SRUNIT
    (["--model", "cut", "--netF_nc", "0"], "--netF_nc"),
    (["--model", "cut", "--num_patches", "0"], "--num_patches"),
    (["--model", "cut", "--nce_T", "0"], "--nce_T"),
    (["--model", "cut", "--nce_layers", "99"], "--nce_layers must index the 32 layers"),
    (["--model", "cut", "--nce_layers", "0,-1"], "--nce_layers"),
    (["--model", "cut", "--nce_layers", "a,b"], "--nce_layers"),
    (["--model", "cut", "--no_antialias", "--no_antialias_up", "--nce_layers", "28"], "(0..27)"),
    (["--model", "srunit", "--nce_layers", "40"], "--nce_layers"),
    # U-GAT-IT
    (["--model", "ugatit", "--n_res", "-1"], "--n_res"),
    (["--model", "ugatit", "--ch", "0"], "--ch"),
    (["--model", "ugatit", "--n_global_dis", "2"], "--n_global_dis"),
    (["--model", "ugatit", "--n_local_dis", "2"], "--n_local_dis"),
    (["--model", "ugatit", "--weight_decay", "-1e-4"], "--weight_decay"),
    (["--model", "ugatit_enhanced", "--ema_beta", "1.5"], "--ema_beta"),
    # UNIT (dotted official config keys are named as such)
    (["--model", "unit", "--dis.num_scales", "0"], "--dis.num_scales"),
    (["--model", "unit", "--num_scales", "-1"], "--dis.num_scales"),
    (["--model", "unit", "--dis.n_layer", "0"], "--dis.n_layer"),
    (["--model", "unit", "--gen.n_res", "-1"], "--gen.n_res"),
    (["--model", "unit", "--gen.n_downsample", "-1"], "--gen.n_downsample"),
    (["--model", "unit", "--step_size", "0"], "--step_size"),
    (["--model", "unit", "--weight_decay", "-1"], "--weight_decay"),
    # TUNIT
    (["--model", "tunit", "--output_k", "0"], "--output_k"),
    (["--model", "tunit", "--sty_dim", "0"], "--sty_dim"),
    (["--model", "tunit", "--tunit_g_nf", "-1"], "--tunit_g_nf"),
    (["--model", "tunit", "--tunit_g_nf_mlp", "0"], "--tunit_g_nf_mlp"),
    (["--model", "tunit", "--tunit_d_nf", "-1"], "--tunit_d_nf"),
    (["--model", "tunit", "--tunit_d_max_nf", "0"], "--tunit_d_max_nf"),
    (["--model", "tunit", "--moco_k", "0"], "--moco_k"),
    (["--model", "tunit", "--moco_t", "0"], "--moco_t"),
    (["--model", "tunit", "--tunit_epoch_iters", "0"], "--tunit_epoch_iters"),
    (["--model", "tunit", "--tunit_epochs", "0"], "--tunit_epochs"),
    (["--model", "tunit", "--c_weight_decay", "-1"], "--c_weight_decay"),
    (["--model", "tunit", "--tunit_c_widths", "abc"], "--tunit_c_widths"),
    (["--model", "tunit", "--tunit_c_widths", "64,M,0"], "--tunit_c_widths"),
    (["--model", "tunit", "--tunit_c_widths", "64" + ",M" * 8], "--tunit_c_widths"),
    (["--model", "tunit", "--dataset_mode", "class_folder"], "--dataset_mode tunit"),
]
TEST_CASES = [
    (["--name", ""], "--name"),
    (["--max_dataset_size", "0"], "--max_dataset_size"),
    (["--init_gain", "nan"], "--init_gain"),
    (["--crop_size", LONG], "--crop_size"),
    (["--model", "tunit", "--tunit_c_widths", "abc"], "--tunit_c_widths"),
    (["--model", "tunit", "--sty_dim", "0"], "--sty_dim"),
]


def one_line_error(capsys, options, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        options().parse(argv, save=False)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err and len(lines[0]) < 1500
    return lines[0]


def case_id(case) -> str:
    return " ".join(token if len(token) < 20 else f"<{len(token)} chars>" for token in case[0])


@pytest.mark.parametrize("argv,needle", TRAIN_CASES, ids=[case_id(c) for c in TRAIN_CASES])
def test_bad_training_values_fail_in_one_line(capsys, synthetic_root, argv, needle):
    line = one_line_error(capsys, TrainOptions, ["--dataroot", synthetic_root, "--gpu_ids", "-1", *argv])
    assert "error: " in line and needle in line


@pytest.mark.parametrize("argv,needle", TEST_CASES, ids=[case_id(c) for c in TEST_CASES])
def test_bad_test_values_fail_in_one_line(capsys, synthetic_root, tmp_path, argv, needle):
    argv = ["--dataroot", synthetic_root, "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", *argv]
    line = one_line_error(capsys, TestOptions, argv)
    assert "error: " in line and needle in line


def test_messages_say_what_is_expected(capsys, synthetic_root):
    base = ["--dataroot", synthetic_root]
    assert "got 0" in one_line_error(capsys, TrainOptions, [*base, "--max_dataset_size", "0"])
    suffix = one_line_error(capsys, TrainOptions, [*base, "--suffix", "{bogus}"])
    assert "model" in suffix and "netG" in suffix  # the valid fields are listed
    huge = one_line_error(capsys, TrainOptions, [*base, "--crop_size", HUGE])
    assert "5002 characters" in huge  # the value is shown by its start and its length
    assert "expected an integer of at most 19 digits" in one_line_error(
        capsys, TrainOptions, [*base, "--crop_size", LONG]
    )


def test_unit_config_values_are_checked_too(capsys, synthetic_root, tmp_path):
    config = tmp_path / "unit.yaml"
    config.write_text("dis:\n  num_scales: 0\n")
    argv = ["--dataroot", synthetic_root, "--model", "unit", "--config", str(config)]
    assert "--dis.num_scales must be >= 1" in one_line_error(capsys, TrainOptions, argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--name", "exp_1", "--suffix", "{model}_{netG}_size{load_size}"],
        ["--beta1", "0", "--init_gain", "0", "--pool_size", "0", "--epoch_count", "5"],
        ["--model", "cut", "--nce_layers", "0,31"],
        ["--model", "ugatit", "--n_global_dis", "3", "--n_local_dis", "3", "--ch", "8"],
        ["--model", "unit", "--gen.n_downsample", "0", "--dis.num_scales", "1"],
        ["--model", "tunit", "--tunit_c_widths", "64,M,128,M", "--tunit_g_nf", "0"],
    ],
)
def test_edge_values_still_parse(synthetic_root, class_root, argv):
    root = class_root if "tunit" in argv else synthetic_root
    opt = TrainOptions().parse(["--dataroot", root, "--gpu_ids", "-1", *argv], save=False)
    assert opt.name.startswith(argv[1] if argv[0] == "--name" else "experiment_name")


def test_tunit_refuses_an_unaligned_root_naming_the_class_layout(capsys, synthetic_root):
    """The CycleGAN layout (trainA, trainB, ...) is not read as the classes "trainA", "trainB", ...: refused when
    the options are parsed, before a folder is made; the dataset refuses it too when built from other options."""
    import data
    from data.image_io import DataError

    line = one_line_error(capsys, TrainOptions, ["--model", "tunit", "--dataroot", synthetic_root])
    assert "trainA" in line and f"{synthetic_root}/train/<class>/<images>" in line
    opt = TrainOptions().parse(["--model", "tunit"], save=False)  # the synthetic class folders
    with pytest.raises(DataError) as exc:
        data.create_dataset(opt.replace(dataroot=synthetic_root))
    message = str(exc.value)
    assert "\n" not in message and "trainA" in message


def test_tunit_reads_class_folders(tmp_path):
    from data import create_dataset
    from datasets.make_synthetic import make_synthetic

    root = make_synthetic(
        str(tmp_path / "classes"), layout="class_folder", size=32, n_train=2, n_test=1, seed=0
    )
    opt = TrainOptions().parse(["--model", "tunit", "--dataroot", root, "--crop_size", "32", "--load_size", "32"],
                               save=False)  # fmt: skip
    assert len(create_dataset(opt).classes) >= 2


@pytest.mark.parametrize("label", ["../other/latest", "a/b", "..", ""])
def test_epoch_names_a_checkpoint_of_the_experiment(capsys, synthetic_root, label):
    line = one_line_error(capsys, TrainOptions, ["--dataroot", synthetic_root, "--epoch", label])
    assert line.count("--epoch") >= 1 and "expected a checkpoint name of the experiment" in line
    assert TrainOptions().parse(["--dataroot", synthetic_root, "--epoch", "iter_200"], save=False).epoch == "iter_200"
