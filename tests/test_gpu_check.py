"""benchmarks/gpu_check.py runs on a CPU in its --cpu --tiny mode: the same code path a GPU run takes."""

from __future__ import annotations

import pytest

from benchmarks import gpu_check


def test_one_configuration_measures_a_step_without_host_syncs(tmp_path):
    args = gpu_check.parse_args(
        ["--cpu", "--tiny", "--steps", "1", "--warmup", "1", "--data_root", str(tmp_path)]
    )
    row = gpu_check.run_case("unit_nsgan", "bf16", args)
    assert row["ms/step"] > 0 and row["img/s"] > 0 and row["peak MiB"] > 0
    assert row["syncs/step"] == 0
    table = gpu_check.format_table([{"case": "unit_nsgan", "precision": "bf16", "status": "ok", **row}], True)
    assert table.splitlines()[2].startswith("| unit_nsgan | bf16 | ok |")


@pytest.mark.slow
def test_cpu_tiny_run_prints_and_writes_the_table(tmp_path, capsys):
    """The whole command, worker processes included (~20 s on a busy 2-core machine)."""
    md = tmp_path / "table.md"
    argv = ["--cpu", "--tiny", "--cases", "unit_nsgan", "--precisions", "fp32", "--steps", "1", "--warmup", "1",
            "--no-ddp", "--markdown", str(md), "--data_root", str(tmp_path / "data")]  # fmt: skip
    assert gpu_check.main(argv) == 0
    out = capsys.readouterr().out
    assert "unit_nsgan" in out and "syncs/step" in out
    row = next(line for line in md.read_text().splitlines() if line.startswith("| unit_nsgan"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["unit_nsgan", "fp32", "ok"] and cells[-1] == "0"  # no host sync in the step


def test_bad_case_or_precision_is_one_line(capsys):
    for flag, value in (("--cases", "nope"), ("--precisions", "fp8")):
        with pytest.raises(SystemExit):
            gpu_check.parse_args(["--cpu", flag, value])
        assert f"{flag}: unknown {value}; valid:" in capsys.readouterr().err


def test_a_failing_configuration_is_a_row_not_a_crash(tmp_path, monkeypatch):
    args = gpu_check.parse_args(["--cpu", "--tiny", "--cases", "cut", "--precisions", "fp32"])
    monkeypatch.setattr(
        gpu_check, "run_case", lambda *a: (_ for _ in ()).throw(RuntimeError("CUDA error: boom"))
    )
    rows = []
    monkeypatch.setattr("builtins.print", lambda line, **k: rows.append(line))
    args.worker = "cut"
    gpu_check.worker(args)
    assert '"status": "error: RuntimeError: CUDA error: boom"' in rows[0]


@pytest.mark.slow
def test_two_process_check_finds_identical_ranks(tmp_path):
    args = gpu_check.parse_args(["--cpu", "--tiny", "--data_root", str(tmp_path)])
    assert "identical" in gpu_check.ddp_check(args, cap=300)
