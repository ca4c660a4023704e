"""Seconds per iteration, images per second and peak memory of one model's training step.

    python -m benchmarks.benchmark --threads 1 --iters 8 --warmup 2 -- --model cycle_gan --crop_size 128 ...

Everything after ``--`` is a train.py command line. The step timed is the trainer's own ``train_step``
(data already on the device), so the figure is what training pays per iteration minus data loading.
Results are medians over iterations; run competing implementations side by side in one session, as the
machine is shared and noisy. Prints one JSON line (and appends it to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from options import TrainOptions  # noqa: E402
from util.trainer import Trainer, move_to  # noqa: E402


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # VmHWM is this process image's peak resident set. ru_maxrss would do where /proc is absent, but a child
    # started from a large parent (a memory run after a speed run) inherits the parent's figure in it.
    try:
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("VmHWM:")).split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark(train_args: list[str], iters: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "--checkpoints_dir",
            tmp,
            "--display_id",
            "0",
            "--no_html",
            "--no_progress",
            "--num_threads",
            "0",
            "--print_freq",
            "1000000",
            "--display_freq",
            "1000000",
            *train_args,
        ]
        opt = TrainOptions().parse(args, save=False)
        trainer = Trainer(opt)
        batch = move_to(next(iter(trainer.loader)), trainer.device)
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.device)
        times = []
        for i in range(warmup + iters):
            sync(trainer.device)
            t0 = time.perf_counter()
            trainer.train_step(batch)
            sync(trainer.device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        return {
            "model": opt.model,
            "crop_size": opt.crop_size,
            "batch_size": opt.batch_size,
            "amp": opt.amp,
            "device": str(trainer.device),
            "threads": torch.get_num_threads(),
            "iters": iters,
            "s_per_iter_median": round(median, 4),
            "s_per_iter_min": round(min(times), 4),
            "images_per_s": round(opt.batch_size / median, 3),
            "peak_memory_mb": round(peak_memory_mb(trainer.device), 1),
            "args": " ".join(train_args),
        }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, train_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iters", type=int, default=6, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    parser.add_argument("--out", default="", help="append the JSON result to this file")
    args = parser.parse_args(own)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    result = benchmark(train_args, args.iters, args.warmup)
    line = json.dumps(result)
    print(line)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
