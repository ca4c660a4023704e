"""The side-by-side benchmark machinery: alternation, ratios and the per-side memory run."""

from __future__ import annotations

import json

import torch

from benchmarks import side_by_side


def test_alternation_and_ratios(monkeypatch):
    calls = []
    fake_times = {"official": 2.0, "ours": 1.5}

    def fake_timed(step, device):
        name = step()
        calls.append(name)
        return fake_times[name], fake_times[name] / 2

    monkeypatch.setattr(side_by_side, "timed", fake_timed)
    steps = {"official": lambda: "official", "ours": lambda: "ours"}
    result = side_by_side.compare_alternately(steps, iters=3, warmup=1, device=torch.device("cpu"))
    # Who goes first alternates every iteration; warm-up calls are not counted.
    assert calls == ["official", "ours", "ours", "official", "official", "ours", "ours", "official"]
    assert result["official"]["s_per_iter_wall"]["all"] == [2.0, 2.0, 2.0]
    assert result["ours"]["s_per_iter_cpu"]["median"] == 0.75
    assert result["ratio_ours_over_official"] == {
        "wall_paired_median": 0.75, "wall_of_medians": 0.75, "cpu_paired_median": 0.75, "cpu_of_medians": 0.75
    }  # fmt: skip


def test_measure_alone_runs_the_step_and_reports_the_peak():
    count = []
    result = side_by_side.measure_alone(lambda: count.append(1), 10.0, steps=3, device=torch.device("cpu"))
    assert len(count) == 3
    assert result["peak_memory_mb"] > 10.0 and result["rss_before_steps_mb"] == 10.0
    assert result["peak_minus_before_mb"] == round(result["peak_memory_mb"] - 10.0, 1)


def test_memory_subprocess_command_keeps_our_options_last(monkeypatch):
    commands = []

    class Done:
        stdout = 'noise\n{"peak_memory_mb": 1.0}\n'

    monkeypatch.setattr(side_by_side.subprocess, "run", lambda cmd, **kw: commands.append(cmd) or Done())
    result = side_by_side.memory_in_subprocesses("benchmarks.x", ["--iters", "2", "--", "--ngf", "8"])
    assert result == {"official": {"peak_memory_mb": 1.0}, "ours": {"peak_memory_mb": 1.0}}
    assert [c[2:] for c in commands] == [
        ["benchmarks.x", "--iters", "2", "--only", which, "--", "--ngf", "8"]
        for which in ("official", "ours")
    ]


def test_report_prints_one_object_and_passes_options_to_the_memory_runs(monkeypatch, capsys, tmp_path):
    seen = {}
    monkeypatch.setattr(
        side_by_side,
        "memory_in_subprocesses",
        lambda module, argv, env=None: seen.update(argv=argv) or {"x": 1},
    )
    cfg = type("Cfg", (), {"only": None, "memory": True, "official": str(tmp_path / "off")})()
    argv = ["--official", "off", "--memory", "--", "--ngf", "8"]
    status = side_by_side.report(
        argv, "benchmarks.x", cfg, torch.device("cpu"), lambda c, d: {"ratio": 0.5}, None, {"crop_size": 32},
        child_options=("--srunit_official", "/s"),
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["ratio"] == 0.5 and out["memory_alone"] == {"x": 1}
    assert out["config"]["crop_size"] == 32 and out["config"]["threads"] == torch.get_num_threads()
    assert seen["argv"] == ["--official", "off", "--official", str(tmp_path / "off"), "--srunit_official", "/s",
                            "--", "--ngf", "8"]  # fmt: skip


def test_official_modules_imports_a_checkout_beside_our_packages(tmp_path):
    import importlib
    import sys

    from benchmarks.side_by_side import official_modules

    pkg = tmp_path / "models"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "official_thing.py").write_text("VALUE = 'official'\n")
    import models as our_models

    with official_modules(("models",), "_official_test", str(tmp_path)) as official:
        assert "models" not in sys.modules or sys.modules["models"] is not our_models
        module = importlib.import_module("models.official_thing")
    assert module.VALUE == "official" and official["models.official_thing"] is module
    assert sys.modules["models"] is our_models and "models.official_thing" not in sys.modules
    assert sys.modules["_official_test.models.official_thing"] is module
    assert str(tmp_path) not in sys.path
    del sys.modules["_official_test.models"], sys.modules["_official_test.models.official_thing"]


def test_same_draws_reaches_the_official_module_under_our_module_names(tmp_path):
    """The official cut_model module is filed under a prefix while ours holds ``models.cut_model``: the
    flips and SR layers must still be answered in the official module (its ``np``), not in ours."""
    import importlib
    import sys
    from types import SimpleNamespace

    import models.cut_model as our_cut_model
    from benchmarks.compare_official_cut import same_draws
    from benchmarks.side_by_side import official_modules

    pkg = tmp_path / "models"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "cut_model.py").write_text(
        "import numpy as np\n"
        "class CUTModel:\n"
        "    def forward(self):\n"
        "        return bool(np.random.random() < 0.5), int(np.random.choice([0, 1, 2, 3, 4], 1)[0])\n"
    )
    with official_modules(("models",), "_official_draws", str(tmp_path)):
        official = importlib.import_module("models.cut_model").CUTModel()
    try:
        assert sys.modules["models.cut_model"] is our_cut_model
        same_draws(SimpleNamespace(mode="fastcut"), 4, official=official)
        assert [official.forward()[0] for _ in range(4)] == [False, True, False, True]
        same_draws(SimpleNamespace(mode="srunit"), 6, official=official)
        assert [official.forward()[1] for _ in range(6)] == [0, 1, 2, 3, 4, 0]
        assert not hasattr(our_cut_model, "np")
    finally:
        for name in [n for n in sys.modules if n.startswith("_official_draws")]:
            del sys.modules[name]
