"""Thread and DataLoader-worker defaults chosen from the machine the run is on.

On a small CPU, oversubscription costs more than anything else: four loader workers and two torch threads per
process on 2 shared cores made the README quick start take 20 minutes instead of a few. The defaults here give
every process its share of the usable cores (``os.sched_getaffinity``: what a container or ``taskset`` allows)
and start loader workers only where spare cores exist for them.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def local_processes() -> int:
    """Training processes sharing this machine (torchrun sets LOCAL_WORLD_SIZE)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))


def default_workers(cores: int, processes: int = 1) -> int:
    """DataLoader workers per process: none on 1-2 cores per process (decoding in the loop is cheaper than
    a worker competing with the training threads), then one per two spare cores, at most 4."""
    per_process = cores // processes
    return min(4, max(0, (per_process - 2) // 2))


def default_torch_threads(cores: int, workers: int, processes: int = 1) -> int:
    """Torch intra-op threads per process: the cores left after the loader workers, shared by the processes.

    An explicit ``OMP_NUM_THREADS`` wins (the user or a launcher already decided).
    """
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, cores // processes - workers)


def apply_torch_threads(opt) -> None:
    """Set this process's torch intra-op threads to ``--torch_threads`` (train.py and test.py call it)."""
    import torch

    if opt.torch_threads > 0 and torch.get_num_threads() != opt.torch_threads:
        torch.set_num_threads(opt.torch_threads)
