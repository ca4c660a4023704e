"""One process of the 2-process (gloo) checks in ``tests/test_distributed_ranks.py``; run by torchrun.

``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/_dist_worker.py OUT TMP CASE...``
trains each case for a few steps through the trainer (sharded data, SyncBatchNorm, bucketed all-reduce,
MoCo key gathering) and writes this rank's parameters, buffers and MoCo queue to ``OUT/rank<R>.pt``. The
case ``mismatch`` instead gives rank 1 a gradient that rank 0 lacks and records the error message.
"""

from __future__ import annotations

import faulthandler
import os
import sys

import torch
import torch.distributed as dist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from tiny_models import parse  # noqa: E402

import data  # noqa: E402
import models.tunit_model  # noqa: E402
from util.distributed import all_gather_cat, launch_info  # noqa: E402
from util.trainer import Trainer  # noqa: E402

STEPS = 2
# Per case: extra options on top of tests/tiny_models.py (the queue is smaller than 2 ranks x steps x batch,
# so its content has wrapped around and shows the gather order).
EXTRA: dict[str, list[str]] = {
    "cycle_gan": ["--norm", "batch", "--grad_comm", "bf16", "--bucket_mb", "0.05"],
    "tunit_gan": ["--moco_k", "6", "--dist_debug"],
}


def run_case(case: str, tmp: str) -> dict[str, torch.Tensor]:
    opt = parse(case, tmp, "--dry_run", "--name", case, *EXTRA.get(case, []))
    trainer = Trainer(opt)
    for step in range(STEPS):  # one image per rank per epoch: each step is an epoch of its own
        data.set_epoch(trainer.loader, step + 1)
        trainer.train_step(next(iter(trainer.loader)))
    state = {f"state/{k}": v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
    queue = getattr(trainer.model, "queue", None)
    if queue is not None:
        state["queue"] = queue.tensor.detach().cpu().clone()
        state["gathered"] = [(a.cpu(), b.cpu()) for a, b in GATHERS]
    return state


GATHERS: list[tuple[torch.Tensor, torch.Tensor]] = []


def recording_gather(tensor: torch.Tensor) -> torch.Tensor:
    """TUNIT's key gathering, recording (this rank's keys, all ranks' keys) of every call."""
    gathered = all_gather_cat(tensor)
    GATHERS.append((tensor.detach().clone(), gathered.detach().clone()))
    return gathered


def mismatch() -> str:
    """Rank 1 has a gradient for a parameter that rank 0 has none for: the step must fail with its name."""
    from util.runtime import Runtime

    w, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    runtime = Runtime("cpu", distributed=True, param_names={id(w): "net.w", id(b): "net.b"})
    opt = torch.optim.SGD([w, b], lr=0.1)
    loss = (w * 2).sum() + ((b * 3).sum() if dist.get_rank() == 1 else 0)
    runtime.backward(loss, final_for=[opt])
    try:
        runtime.step(opt)
    except RuntimeError as exc:
        return str(exc)
    return "no error"


def main() -> None:
    out, tmp, cases = sys.argv[1], sys.argv[2], sys.argv[3:]
    faulthandler.dump_traceback_later(float(os.environ.get("DIST_WORKER_TIMEOUT", "240")), exit=True)
    torch.set_num_threads(1)
    info = launch_info()
    dist.init_process_group("gloo")
    models.tunit_model.all_gather_cat = recording_gather
    results: dict[str, object] = {}
    for case in cases:
        results[case] = mismatch() if case == "mismatch" else run_case(case, os.path.join(tmp, f"r{info.rank}"))
    torch.save(results, os.path.join(out, f"rank{info.rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
