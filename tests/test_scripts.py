"""Every experiment script in scripts/ calls train.py/test.py with options that parse (``--dry_run`` appended)."""

from __future__ import annotations

import glob
import os

import pytest

from options import TestOptions, TrainOptions
from tests.test_docs_commands import recorded_calls

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(
    os.path.relpath(p, ROOT)
    for p in glob.glob(os.path.join(ROOT, "scripts", "**", "*.sh"), recursive=True)
    if not os.path.basename(p).startswith(("download", "prepare", "_"))
)


def test_scripts_exist():
    assert any(s.startswith(os.path.join("scripts", "cyclegan")) for s in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_options_parse(script, tmp_path, capsys):
    calls = [c for c in recorded_calls(script, [], {}, tmp_path) if c and c[0] in ("train.py", "test.py")]
    assert calls, f"{script} runs neither train.py nor test.py"
    for call in calls:
        options = TrainOptions if call[0] == "train.py" else TestOptions
        try:
            opt = options().parse(call[1:], save=False)
        except SystemExit:
            pytest.fail(f"{script}: {' '.join(call)} does not parse: {capsys.readouterr().err}")
        assert opt.dry_run, f"{script} does not pass its extra arguments on (\"$@\")"
