"""Every command shown in README.md and docs/*.md code blocks works as written.

Commands are read from fenced and indented code blocks (line continuations joined, ``&&``/``;`` split,
comments dropped); optional groups such as ``[--gpu_ids 0 | -1]`` are checked with their first alternative and
placeholders (DATA, EXP, DIR_A...) are replaced by a tiny synthetic dataset or a temporary folder. Then:

* ``python train.py``/``test.py``: a real in-process ``--dry_run`` (model and data built) for commands at
  <= 64 px; at larger sizes the options are parsed only (building 256 px networks is slow);
* ``python export.py``, ``python -m MODULE``, ``python scripts/X.py``: their options are parsed (a script with
  a ``--dry_run`` runs it);
* ``bash scripts/X.sh``: run with ``--dry_run`` and a stand-in ``python`` that records each call, and every
  recorded train.py/test.py call must parse;
* download and preparation scripts (they need the network): the script exists and knows the named dataset.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import importlib.util
import os
import re
import shlex
import stat
import subprocess
import sys

import pytest

from options import TestOptions, TrainOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))]
SMALL = 64  # the largest --crop_size run as a real dry run


def code_lines(text: str) -> list[str]:
    """Lines of fenced blocks and of 4-space indented blocks (outside fences), continuations joined."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or (line.startswith("    ") and not line.lstrip().startswith(("-", "*", "|"))):
            lines.append(line)
    return re.sub(r"\\\n\s*", " ", "\n".join(lines)).splitlines()


def first_alternatives(command: str) -> str:
    """``[--amp bf16|fp16]`` -> ``--amp bf16``; ``...`` (more options) is dropped."""
    command = re.sub(r"\[([^\[\]]*)\]", lambda m: m.group(1).split("|")[0], command)
    return command.replace("...", " ")


def environment(words: list[str]) -> dict[str, str]:
    """Leading ``NAME=value`` words of a command (``NAME=x bash ...``)."""
    env = {}
    for word in words:
        if not re.fullmatch(r"[A-Z_]+=\S*", word):
            break
        key, value = word.split("=", 1)
        env[key] = value
    return env


def documented_commands() -> list[tuple[str, str]]:
    """(file, command) for each ``python ...`` / ``bash ...`` command of the docs."""
    found = []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
            text = f.read()
        for line in code_lines(text):
            for part in re.split(r"\s*(?:&&|;)\s*", line.strip()):
                words = shlex.split(first_alternatives(part), comments=True) if part else []
                words = words[len(environment(words)) :]
                if words and words[0] in ("python", "bash") and words[1:3] != ["-m", "pytest"]:
                    found.append((doc, part.strip()))
    return found


COMMANDS = documented_commands()


@pytest.fixture(scope="module")
def places(tmp_path_factory, synthetic_root):
    """What each placeholder stands for here."""
    from datasets.make_synthetic import make_synthetic

    root = tmp_path_factory.mktemp("docs_commands")
    config = root / "unit_config.yaml"  # an official UNIT YAML (only the keys it sets are read)
    config.write_text("max_iter: 10\ngen:\n  dim: 8\ndis:\n  dim: 8\n")
    classes = make_synthetic(str(root / "classes"), layout="class_folder", size=32, n_train=4, n_test=2, seed=0)
    return {
        "root": root,
        "data": synthetic_root,
        "config": str(config),
        "classes": classes,
        "words": {
            "DATA": synthetic_root,
            "EXP": "exp",
            "DIR_A": os.path.join(synthetic_root, "testA"),
            "DIR_B": os.path.join(synthetic_root, "testB"),
            "DIR": str(root / "dir"),
            "OUT": str(root / "out"),
            "P": str(root / "weights.pth"),
            "PATH": str(root / "path"),
            "FILE": str(root / "file.json"),
            "N": "1",
        },
    }


def substituted(words: list[str], places: dict) -> list[str]:
    """Placeholders replaced, a missing --dataroot pointed at synthetic data, and the CPU used."""
    out = [places["words"].get(w, w) for w in words]
    out = [places["config"] if w.startswith("path/to/") and w.endswith(".yaml") else w for w in out]
    model = out[out.index("--model") + 1] if "--model" in out[:-1] else "cycle_gan"
    for i, w in enumerate(out[:-1]):
        if w == "--dataroot" and not os.path.isdir(out[i + 1]):
            out[i + 1] = places["classes"] if model == "tunit" else places["data"]
        if w == "--gpu_ids":
            out[i + 1] = "-1"
    return out


class Parsed(Exception):
    """Raised by the patched ``ArgumentParser.parse_args``: the options parsed, nothing was run."""


def parse_only(main, argv: list[str], monkeypatch) -> None:
    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):
        original(self, args, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
    with pytest.raises(Parsed):
        main(argv)


def crop_size(argv: list[str]) -> int:
    return int(argv[argv.index("--crop_size") + 1]) if "--crop_size" in argv[:-1] else 256


def run_python(words: list[str], places: dict, monkeypatch, tmp_path) -> None:
    folders = ["--checkpoints_dir", str(tmp_path / "checkpoints"), "--num_threads", "0"]
    target, argv = words[1], words[2:]
    if target in ("train.py", "test.py"):
        script, options = (importlib.import_module("train"), TrainOptions) if target == "train.py" else (
            importlib.import_module("test"), TestOptions)  # fmt: skip
        if target == "test.py":
            folders += ["--results_dir", str(tmp_path / "results")]
        if crop_size(argv) <= SMALL:
            assert script.main([*argv, *folders, "--dry_run"]) == 0
        else:
            options().parse([*argv, *folders], save=False)
    elif target == "export.py":
        importlib.import_module("export").parse([*argv, *folders])
    elif target == "-m":
        module = importlib.import_module(argv[0])
        parse_only(module.main, argv[1:], monkeypatch)
    else:
        assert os.path.isfile(os.path.join(ROOT, target)), f"{target} does not exist"
        spec = importlib.util.spec_from_file_location("documented_script", os.path.join(ROOT, target))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with open(os.path.join(ROOT, target), encoding="utf-8") as f:
            dry = "dry_run" in f.read()
        if dry:
            assert module.main([*argv, *folders, "--dry_run"]) == 0
        else:
            parse_only(module.main, argv, monkeypatch)


def recorded_calls(script: str, args: list[str], env: dict[str, str], tmp_path) -> list[list[str]]:
    """Run a shell script with a stand-in ``python`` (and wget/curl) that records its arguments."""
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.txt"
    shim = shim_dir / "python"
    shim.write_text(f'#!/usr/bin/env bash\nprintf "%s\\0" "$@" >> "{log}"\nprintf "\\n" >> "{log}"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    for tool in ("python3", "wget", "curl"):
        (shim_dir / tool).symlink_to(shim)
    env = {**os.environ, **env, "PATH": f"{shim_dir}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", script, *args, "--dry_run"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, f"bash {script} {' '.join(args)}: {proc.stderr[-1500:]}"
    text = log.read_text() if log.exists() else ""
    return [[a for a in line.split("\0") if a] for line in text.split("\n") if line]


def run_bash(words: list[str], env: dict[str, str], tmp_path) -> None:
    script, args = words[1], words[2:]
    assert os.path.isfile(os.path.join(ROOT, script)), f"{script} does not exist"
    if os.path.basename(script).startswith(("download", "prepare")):  # needs the network: check the names
        with open(os.path.join(ROOT, script), encoding="utf-8") as f:
            text = f.read()
        for name in args:
            assert name.startswith(("./", "/")) or name in text, f"{script} does not know {name!r}"
        return
    for call in recorded_calls(script, args, env, tmp_path):
        if call[0] in ("train.py", "test.py"):
            options = TrainOptions if call[0] == "train.py" else TestOptions
            options().parse(call[1:], save=False)


def test_the_docs_show_commands():
    docs = {d for d, _ in COMMANDS}
    assert "README.md" in docs and len(COMMANDS) >= 20


@pytest.mark.parametrize("doc,command", COMMANDS, ids=[f"{d}:{c[:60]}" for d, c in COMMANDS])
def test_documented_command_works(doc, command, places, monkeypatch, tmp_path, capsys):
    words = shlex.split(first_alternatives(command), comments=True)
    env = environment(words)
    words = substituted(words[len(env) :], places)
    monkeypatch.setattr(sys, "argv", words[1:2])
    try:
        if words[0] == "python":
            run_python(words, places, monkeypatch, tmp_path)
        else:
            run_bash(words, env, tmp_path)
    except SystemExit as exc:
        pytest.fail(f"{doc}: `{command}` exits {exc.code}: {capsys.readouterr().err[-1500:]}")


WRITERS = sorted(
    os.path.relpath(p, ROOT)
    for folder in ("scripts", "benchmarks", "datasets")
    for ext in ("sh", "py")
    for p in glob.glob(os.path.join(ROOT, folder, "**", f"*.{ext}"), recursive=True)
)


def test_no_script_writes_into_docs():
    """Scripts write under results/ and checkpoints/; docs/ holds tracked figures that a run must not replace.

    A path into docs/ may only appear in a comment or a docstring sentence, never as a file to write."""
    offenders = []
    for path in WRITERS:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                code = line.split("#", 1)[0]
                if re.search(r"docs/[\w/.-]+\.(png|jpe?g|gif|svg|json|csv|md|html)\b", code) and "``" not in code:
                    offenders.append(f"{path}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)

