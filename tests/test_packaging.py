"""The repository is an installable package: a wheel holds every package, the scripts and the entry points.

The wheel is built from a copy of the sources (``pip wheel --no-deps --no-build-isolation``: no download, no
torch install), so the checkout gets no build/ or egg-info folders.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ("train", "test", "export")
ENTRY_POINTS = {"i2i-train", "i2i-test", "i2i-export", "i2i-fid", "i2i-rescore"}
NOT_INSTALLED = {"tests", "benchmarks", "scripts"}  # tools run from a checkout


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def source_packages() -> set[str]:
    """Every folder with an ``__init__.py`` (outside tests and tools), as a dotted name."""
    found = set()
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_")) and d not in NOT_INSTALLED]
        if "__init__.py" in files and folder != ROOT:
            found.add(os.path.relpath(folder, ROOT).replace(os.sep, "."))
    return found


def copy_sources(dest: str) -> None:
    """pyproject, README, LICENSE, the top-level scripts and the packages' .py files."""
    for name in ("pyproject.toml", "README.md", "LICENSE", *(f"{s}.py" for s in SCRIPTS)):
        shutil.copy(os.path.join(ROOT, name), dest)
    for package in source_packages():
        if "." in package:
            continue
        shutil.copytree(
            os.path.join(ROOT, package),
            os.path.join(dest, package),
            ignore=lambda folder, names: [
                n for n in names if not n.endswith(".py") and not os.path.isdir(os.path.join(folder, n))
            ],
        )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("wheel_src")
    copy_sources(str(src))
    out = src / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
    done = subprocess.run(cmd, cwd=str(src), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = out.glob("*.whl")
    return zipfile.ZipFile(path)


def test_every_package_is_listed():
    assert set(pyproject()["tool"]["setuptools"]["packages"]) == source_packages()


def test_the_wheel_holds_every_package_and_script(wheel):
    names = set(wheel.namelist())
    for package in source_packages():
        folder = package.replace(".", "/")
        modules = {f"{folder}/{f}" for f in os.listdir(os.path.join(ROOT, folder)) if f.endswith(".py")}
        assert modules <= names, sorted(modules - names)
    assert {f"{s}.py" for s in SCRIPTS} <= names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


def test_the_wheel_declares_the_entry_points(wheel):
    (entry_file,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    lines = wheel.read(entry_file).decode().splitlines()
    scripts = dict(line.replace(" ", "").split("=", 1) for line in lines if "=" in line)
    assert set(scripts) == ENTRY_POINTS
    assert all(target.startswith("util.cli:") for target in scripts.values())


def test_runtime_dependencies_match_requirements_txt():
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as f:
        required = [line.split("#")[0].strip() for line in f]
    assert pyproject()["project"]["dependencies"] == [r for r in required if r]


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_each_entry_point_runs(name, monkeypatch, capsys):
    """What the installed ``i2i-*`` commands call, asked for --help (test.py's name clashes with Python's
    own ``test`` package: the entry point must still reach the script)."""
    from util import cli

    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        getattr(cli, name.split("-", 1)[1])()
    assert exit_info.value.code in (0, None)
    assert "usage" in capsys.readouterr().out.lower()
