"""Every experiment script in scripts/ calls train.py/test.py with options that parse (``--dry_run`` appended)."""

from __future__ import annotations

import glob
import os
import stat
import subprocess

import pytest

from options import TestOptions, TrainOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(
    os.path.relpath(p, ROOT)
    for p in glob.glob(os.path.join(ROOT, "scripts", "**", "*.sh"), recursive=True)
    if not os.path.basename(p).startswith(("download", "prepare", "_"))
)


def recorded_calls(script: str, tmp_path) -> list[list[str]]:
    """Run the script with a stand-in ``python`` that records its arguments instead of training."""
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.txt"
    shim = shim_dir / "python"
    shim.write_text(f'#!/usr/bin/env bash\nprintf "%s\\0" "$@" >> "{log}"\nprintf "\\n" >> "{log}"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    for tool in ("python3", "wget", "curl"):
        target = shim_dir / tool
        if not target.exists():
            target.symlink_to(shim)
    env = {**os.environ, "PATH": f"{shim_dir}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", script, "--dry_run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = []
    if log.exists():
        for line in log.read_text().split("\n"):
            if line:
                calls.append([a for a in line.split("\0") if a != ""])
    return calls


def test_scripts_exist():
    assert any(s.startswith(os.path.join("scripts", "cyclegan")) for s in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_options_parse(script, tmp_path, capsys):
    calls = [c for c in recorded_calls(script, tmp_path) if c and c[0] in ("train.py", "test.py")]
    assert calls, f"{script} runs neither train.py nor test.py"
    for call in calls:
        options = TrainOptions if call[0] == "train.py" else TestOptions
        try:
            opt = options().parse(call[1:], save=False)
        except SystemExit:
            pytest.fail(f"{script}: {' '.join(call)} does not parse: {capsys.readouterr().err}")
        assert opt.dry_run, f"{script} does not pass its extra arguments on (\"$@\")"
