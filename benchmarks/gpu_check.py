"""One command that proves on a CUDA machine what a CPU cannot: every model trains in every precision.

    python benchmarks/gpu_check.py                      # CUDA: the whole check, under 8 minutes on one H100
    python benchmarks/gpu_check.py --markdown gpu.md    # also write the table as Markdown
    python benchmarks/gpu_check.py --cpu --tiny         # the same code path on a CPU, in seconds (tests)

Every configuration of ``benchmarks/model_cases.py`` (CycleGAN, CUT, FastCUT, SRUNIT, LiSS, U-GAT-IT full /
light / enhanced, UNIT lsgan / nsgan, TUNIT pre-GAN / GAN phase) runs a few training steps through the real
trainer at its default size (256 px, batch 1; TUNIT 128 px, batch 8) in fp32, bf16, fp16 and bf16 +
``--compile``. One table: ok / error, ms per step, images per second, peak memory
(``torch.cuda.max_memory_allocated``) and host synchronisations in one step (``torch.cuda.set_sync_debug_mode``
warnings on CUDA, ``util.host_sync.HostSyncCounter`` findings on a CPU). Then a 2-process ``torchrun`` run
checks that both ranks end with identical parameters and buffers (on 2 GPUs with NCCL; with fewer, on the
CPU with gloo, and the table says so).

Each configuration runs in its own process with a time cap, eager precisions first for every model, the
compiled runs after them, so a slow compile or a hang costs only its own row ("skipped: ..." rows say what
the time budget left out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.model_cases import CASES, case_args, make_dataroot  # noqa: E402

PRECISIONS = {"fp32": [], "bf16": ["--amp", "bf16"], "fp16": ["--amp", "fp16"],
              "bf16+compile": ["--amp", "bf16", "--compile"]}  # fmt: skip
RESULT = "GPU_CHECK_RESULT "
COLUMNS = ("case", "precision", "status", "ms/step", "img/s", "peak MiB", "syncs/step")


# ------------------------------------------------------------------ one configuration (worker process)
def _syncs_in_step(trainer, batch) -> int:
    """Host synchronisations in one training step."""
    import torch

    if trainer.device.type == "cuda":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                trainer.train_step(batch)
                torch.cuda.synchronize()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)
    from util.host_sync import HostSyncCounter

    with HostSyncCounter.for_model(trainer.model, batch) as counter:
        trainer.train_step(batch)
    return counter.total


def run_case(name: str, precision: str, args: argparse.Namespace) -> dict:
    """Build the trainer, take ``warmup`` steps, time ``steps``, count one step's syncs."""
    import torch

    from benchmarks.benchmark import peak_memory_mb, sync
    from options import TrainOptions
    from util.trainer import Trainer, move_to

    device = ["--gpu_ids", "-1"] if args.cpu else ["--gpu_ids", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        argv = [*case_args(name, args.tiny), *PRECISIONS[precision], *device,
                "--dataroot", make_dataroot(args.data_root, name, args.tiny), "--checkpoints_dir", tmp,
                "--display_id", "0", "--no_html", "--no_progress", "--num_threads", "0",
                "--print_freq", "1000000000", "--display_freq", "1000000000"]  # fmt: skip
        trainer = Trainer(TrainOptions().parse(argv, save=False))
        batch = move_to(next(iter(trainer.loader)), trainer.device)
        for _ in range(args.warmup):  # the first steps make lazy state (and compile)
            trainer.train_step(batch)
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.device)
        sync(trainer.device)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step(batch)
        sync(trainer.device)
        seconds = (time.perf_counter() - t0) / args.steps
        syncs = _syncs_in_step(trainer, batch)
        trainer.check_finite(all_reduce=False)  # a NaN/inf loss is an error row
        return {"ms/step": round(1000 * seconds, 1), "img/s": round(trainer.opt.batch_size / seconds, 2),
                "peak MiB": round(peak_memory_mb(trainer.device)), "syncs/step": syncs}  # fmt: skip


def worker(args: argparse.Namespace) -> int:
    """Run the given precisions of one case, one result line each as soon as it is known."""
    for precision in args.precisions:
        try:
            row = {"status": "ok", **run_case(args.worker, precision, args)}
        except Exception as exc:  # a row says what failed; the other rows still run
            row = {
                "status": f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            }
        print(RESULT + json.dumps({"case": args.worker, "precision": precision, **row}), flush=True)
    return 0


# ------------------------------------------------------------------ the orchestration
def _run_worker(name: str, precisions: list[str], args: argparse.Namespace, cap: float) -> list[dict]:
    """One worker process; rows it did not finish within ``cap`` seconds are reported as skipped."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--precisions", ",".join(precisions),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--data_root", args.data_root]  # fmt: skip
    cmd += ["--cpu"] * args.cpu + ["--tiny"] * args.tiny
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    rows, tail = [], []

    def read():
        for line in proc.stdout:
            if line.startswith(RESULT):
                rows.append(json.loads(line[len(RESULT) :]))
            else:
                tail.append(line.rstrip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=cap)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join(timeout=5)
    done = {r["precision"] for r in rows}
    for precision in precisions:
        if precision not in done:
            why = f"skipped: over the {cap:.0f} s cap" if proc.returncode in (-9, None) else "crashed"
            if why == "crashed" and tail:
                why += f": {tail[-1][:120]}"
            rows.append({"case": name, "precision": precision, "status": why})
    return rows


def ddp_check(args: argparse.Namespace, cap: float) -> str:
    """2 processes, a few steps of CUT: do both ranks hold the same parameters and buffers afterwards?"""
    import torch

    on_gpus = not args.cpu and torch.cuda.is_available() and torch.cuda.device_count() >= 2
    where = (
        "2 GPUs, NCCL"
        if on_gpus
        else "CPU, gloo" + ("" if args.cpu else f" ({torch.cuda.device_count()} GPU visible)")
    )
    tiny = args.tiny or not on_gpus  # on the CPU the check needs no real size: it compares the ranks
    with tempfile.TemporaryDirectory() as tmp:
        argv = [*case_args("cut", tiny), "--gpu_ids", "0" if on_gpus else "-1", "--dataroot",
                make_dataroot(args.data_root, "cut", tiny), "--checkpoints_dir", tmp, "--display_id", "0",
                "--no_html",
                "--no_progress", "--num_threads", "0"]  # fmt: skip
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               os.path.abspath(__file__), "--ddp_worker", "--", *argv]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, cwd=ROOT, env=env)
        except subprocess.TimeoutExpired:
            return f"2-process check ({where}): skipped, over the {cap:.0f} s cap"
    found = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not found:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        return f"2-process check ({where}): error: {lines[-1][:160] if lines else proc.returncode}"
    result = json.loads(found[0][len(RESULT) :])
    verdict = (
        "identical" if result["max_abs_diff"] == 0 else f"DIFFER (max |diff| {result['max_abs_diff']:.3g})"
    )
    return f"2-process check ({where}): {result['tensors']} parameters and buffers after {result['steps']} steps: {verdict}"


def ddp_worker(train_argv: list[str], steps: int = 3) -> int:
    """Inside torchrun: a few training steps, then every floating state tensor compared with rank 0's."""
    import torch
    import torch.distributed as dist

    from options import TrainOptions
    from util.distributed import cleanup
    from util.trainer import Trainer

    trainer = Trainer(TrainOptions().parse(train_argv, save=False))
    done = 0
    while done < steps:  # a tiny dataset gives each rank one batch per pass
        for batch in trainer.loader:
            trainer.train_step(batch)
            done += 1
            if done == steps:
                break
    state = [
        t.detach().float().reshape(-1) for t in trainer.model.state_dict().values() if t.is_floating_point()
    ]
    flat = torch.cat(state).to(trainer.device)
    reference = flat.clone()
    dist.broadcast(reference, 0)
    diff = (flat - reference).abs().max()
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    if dist.get_rank() == 0:
        print(RESULT + json.dumps({"max_abs_diff": float(diff), "tensors": len(state), "steps": steps}))
    cleanup(trainer.dist)
    return 0


def format_table(rows: list[dict], markdown: bool) -> str:
    table = [[str(r.get(c, "")) for c in COLUMNS] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in table])
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(COLUMNS)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*COLUMNS)] + [fmt.format(*r) for r in table])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)  # fmt: skip
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (no CUDA needed)")
    parser.add_argument("--tiny", action="store_true", help="the smallest sizes (seconds per model on a CPU)")
    parser.add_argument(
        "--cases", default=",".join(CASES), help="comma-separated names from benchmarks/model_cases.py"
    )
    parser.add_argument("--precisions", default="", help=f"comma-separated from {', '.join(PRECISIONS)} "
                        "(default: all on CUDA, the eager ones with --cpu)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed steps first (compilation happens here)"
    )
    parser.add_argument(
        "--case_cap", type=float, default=60.0, help="seconds per case for its eager precisions"
    )
    parser.add_argument("--compile_cap", type=float, default=75.0, help="seconds per compiled configuration")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for everything (8 minutes: 480)")
    parser.add_argument("--no-ddp", dest="ddp", action="store_false", help="skip the 2-process check")
    parser.add_argument("--markdown", default="", help="also write the table (Markdown) to this file")
    parser.add_argument(
        "--data_root", default="", help="where the synthetic datasets go (default: a temp dir)"
    )
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    parser.add_argument("--ddp_worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"--cases: unknown {', '.join(unknown)}; valid: {', '.join(CASES)}")
    default = [p for p in PRECISIONS if not (args.cpu and "compile" in p)]
    args.precisions = [p for p in args.precisions.split(",") if p] or default
    bad = [p for p in args.precisions if p not in PRECISIONS]
    if bad:
        parser.error(f"--precisions: unknown {', '.join(bad)}; valid: {', '.join(PRECISIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--ddp_worker" in argv:
        return ddp_worker(argv[argv.index("--") + 1 :])
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible; use --cpu (with --tiny for a quick run)")
        return 2
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        args.data_root = args.data_root or tmp
        rows = _all_rows(args, start)
        ddp = ddp_check(args, max(30.0, args.budget - (time.monotonic() - start))) if args.ddp else ""
    device = "CPU" if args.cpu else torch.cuda.get_device_name(0)
    header = f"gpu_check on {device}, torch {torch.__version__}, {'tiny' if args.tiny else 'default'} sizes, " \
             f"{args.steps} timed steps after {args.warmup}; {time.monotonic() - start:.0f} s"  # fmt: skip
    print(header)
    print(format_table(rows, markdown=False))
    if ddp:
        print(ddp)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"{header}\n\n{format_table(rows, markdown=True)}\n\n{ddp}\n")
    return 0 if all(r["status"] == "ok" for r in rows) and "error" not in ddp and "DIFFER" not in ddp else 1


def _all_rows(args: argparse.Namespace, start: float) -> list[dict]:
    """Eager precisions of every case first, then the compiled ones, within the budget (40 s kept for DDP)."""
    eager = [p for p in args.precisions if "compile" not in p]
    compiled = [p for p in args.precisions if "compile" in p]
    reserve = 40.0 if args.ddp else 0.0
    rows = []
    for precisions, cap in ((eager, args.case_cap), (compiled, args.compile_cap * len(compiled))):
        for name in args.cases if precisions else ():
            left = args.budget - reserve - (time.monotonic() - start)
            if left < 5:
                rows += [{"case": name, "precision": p, "status": "skipped: time budget"} for p in precisions]
            else:
                rows += _run_worker(name, precisions, args, min(cap, left))
    order = {(n, p): i for i, (n, p) in enumerate((n, p) for n in args.cases for p in args.precisions)}
    return sorted(rows, key=lambda r: order[(r["case"], r["precision"])])


if __name__ == "__main__":
    sys.exit(main())
