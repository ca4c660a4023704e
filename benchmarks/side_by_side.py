"""Timing and memory machinery shared by the ``compare_official_<model>`` scripts.

Each script only knows how to build the official step and ours with the same weights and batch; this module
times the two alternately in one process (so load drift on a shared machine hits both alike), reports medians
and ratios in one JSON shape, and measures each side's peak memory alone in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

from benchmarks.benchmark import peak_memory_mb, sync

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIDES = ("official", "ours")


def split_modules(packages: tuple[str, ...]) -> dict[str, object]:
    """Remove and return every loaded module that belongs to one of ``packages``."""
    names = [n for n in sys.modules if n.split(".")[0] in packages]
    return {n: sys.modules.pop(n) for n in names}


@contextlib.contextmanager
def official_modules(packages: tuple[str, ...], prefix: str, path: str | None = None):
    """Import the official code inside this block with its own top-level ``packages`` (``models``, ...).

    On entry our loaded modules of those packages are set aside (and ``path``, if given, goes first on
    ``sys.path``); on exit the official modules imported meanwhile move to ``<prefix>.<name>`` in
    ``sys.modules`` and ours come back, so both codebases live in one process. Yields a dict that holds the
    official modules by their own names after the block.
    """
    ours = split_modules(packages)
    official: dict[str, object] = {}
    if path is not None:
        sys.path.insert(0, path)
    try:
        yield official
    finally:
        if path is not None:
            sys.path.remove(path)
        official.update(split_modules(packages))
        sys.modules.update({f"{prefix}.{n}": m for n, m in official.items()})
        sys.modules.update(ours)


def add_run_options(p: argparse.ArgumentParser, iters: int = 6, mem_iters: int = 2) -> None:
    """The options every comparison script has: run length, threads, device, memory runs, seed."""
    p.add_argument("--iters", type=int, default=iters, help="timed iterations per implementation")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations per implementation first")
    p.add_argument("--mem_iters", type=int, default=mem_iters, help="steps of each memory-only subprocess")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: leave as is)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--memory", action="store_true", help="also peak memory of each, in separate processes")
    p.add_argument("--seed", type=int, default=0, help="seeds the weights, the draws and the input batch")
    p.add_argument("--only", choices=SIDES, help=argparse.SUPPRESS)


def timed(step: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """Wall seconds and process CPU seconds of one call of ``step``.

    On a shared CPU the CPU time is the steadier figure: time spent waiting for a core is not counted.
    """
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    step()
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def summary(times: list[float]) -> dict:
    return {
        "median": round(statistics.median(times), 4),
        "min": round(min(times), 4),
        "max": round(max(times), 4),
        "all": [round(t, 4) for t in times],
    }


def compare_alternately(
    steps: dict[str, Callable[[], object]], iters: int, warmup: int, device: torch.device
) -> dict:
    """Time ``steps['official']`` and ``steps['ours']`` alternately; per-side summaries and ratios ours/official.

    The side that goes first alternates too, so neither always runs right after the other's allocations.
    Each pair runs back to back under nearly the same load, so the median of per-pair ratios is the steadiest
    estimate; the ratio of medians is given as well.
    """
    wall: dict[str, list[float]] = {name: [] for name in SIDES}
    cpu: dict[str, list[float]] = {name: [] for name in SIDES}
    for i in range(warmup + iters):
        for name in SIDES if i % 2 == 0 else SIDES[::-1]:
            t_wall, t_cpu = timed(steps[name], device)
            if i >= warmup:
                wall[name].append(t_wall)
                cpu[name].append(t_cpu)
    result: dict = {
        n: {"s_per_iter_wall": summary(wall[n]), "s_per_iter_cpu": summary(cpu[n])} for n in SIDES
    }
    result["ratio_ours_over_official"] = {
        f"{kind}_{how}": round(value, 3)
        for kind, d in (("wall", wall), ("cpu", cpu))
        for how, value in (
            ("paired_median", statistics.median(u / o for u, o in zip(d["ours"], d["official"]))),
            ("of_medians", statistics.median(d["ours"]) / statistics.median(d["official"])),
        )
    }
    return result


def current_rss_mb() -> float:
    """Resident set now (Linux ``/proc``; 0 elsewhere): what imports and construction hold before the steps."""
    try:
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0.0
    return int(line.split()[1]) / 1024


def measure_alone(step: Callable[[], object], rss_before_mb: float, steps: int, device: torch.device) -> dict:
    """Run ``step`` ``steps`` times in this process (one side only) and report its peak memory.

    ``rss_before_mb`` is read by the caller after both codebases were imported, so ``peak_minus_before_mb``
    compares what networks, optimisers and steps cost, not a difference in what got imported.
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = [timed(step, device) for _ in range(steps)]
    peak = peak_memory_mb(device)
    return {
        "peak_memory_mb": round(peak, 1),
        "rss_before_steps_mb": round(rss_before_mb, 1),
        "peak_minus_before_mb": round(peak - rss_before_mb, 1) if device.type == "cpu" else None,
        "s_per_iter_wall_median": round(statistics.median(t[0] for t in times), 4),
        "s_per_iter_cpu_median": round(statistics.median(t[1] for t in times), 4),
    }


def memory_in_subprocesses(module: str, argv: list[str], env: dict[str, str] | None = None) -> dict:
    """Each side alone: ``python -m module ARGV --only official|ours`` in a fresh process, its last JSON line.

    A fresh process is needed: peak memory never goes down, so the speed run's peak would hide both.
    ``argv`` must keep anything after a ``--`` last (it is appended before ``--only`` otherwise).
    """
    results = {}
    for which in SIDES:
        own, sep, rest = _split_at_double_dash(argv)
        cmd = [sys.executable, "-m", module, *own, "--only", which, *sep, *rest]
        out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
        results[which] = json.loads(out.strip().splitlines()[-1])
    return results


def _split_at_double_dash(argv: list[str]) -> tuple[list[str], list[str], list[str]]:
    if "--" not in argv:
        return list(argv), [], []
    i = argv.index("--")
    return argv[:i], ["--"], argv[i + 1 :]


def run_config(device: torch.device) -> dict:
    """The run facts every result carries."""
    return {"threads": torch.get_num_threads(), "device": str(device), "torch": torch.__version__}


def report(
    argv: list[str],
    module: str,
    cfg,
    device: torch.device,
    compare: Callable,
    alone: Callable,
    config: dict,
    child_options: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> int:
    """The scripts' common ``main`` after parsing: print one JSON object and return the exit status.

    With ``--only official|ours`` (a memory subprocess) it prints ``alone(which, cfg, device)``; otherwise the
    side-by-side timing of ``compare(cfg, device)`` under ``config`` and, with ``--memory``, each side alone in
    a fresh process started with this run's options plus ``child_options`` (absolute paths of checkouts).
    """
    with contextlib.redirect_stdout(sys.stderr):  # the official constructors print
        if cfg.only:
            result = alone(cfg.only, cfg, device)
        else:
            result = {
                "config": config | run_config(device),
                "official_checkout": os.path.basename(os.path.abspath(cfg.official)),
                **compare(cfg, device),
            }
    if cfg.memory and not cfg.only:
        own, sep, rest = _split_at_double_dash(argv)
        own = [a for a in own if a != "--memory"] + ["--official", os.path.abspath(cfg.official)]
        result["memory_alone"] = memory_in_subprocesses(module, [*own, *child_options, *sep, *rest], env)
    print(json.dumps(result))
    return 0
