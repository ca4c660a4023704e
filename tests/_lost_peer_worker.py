"""One rank of ``tests/test_lost_peer.py``: rank 1 joins and then stops answering; rank 0 enters each
collective of a training run in turn and writes, per collective, the error it got."""

import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from util.distributed import DistInfo, PeerLostError, all_gather_cat, init_distributed  # noqa: E402
from util.grad_reduce import GradientReducer  # noqa: E402
from util.nonfinite import LossWatch  # noqa: E402
from util.sync_batchnorm import SyncBatchNorm  # noqa: E402
from util.trainer_checkpoints import gather_to_main  # noqa: E402


def collectives() -> dict:
    net = torch.nn.Linear(2, 2)
    net(torch.ones(1, 2)).sum().backward()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    reducer = GradientReducer(2, check_every_step=True, hooks=False)
    watch = LossWatch(torch.device("cpu"))
    watch.observe({"G": torch.tensor(1.0)}, 1)
    return {
        "loss check": lambda: watch.raise_if_bad(all_reduce=True),
        "state gather": lambda: gather_to_main({"pool": 1}, 2),
        "gradient check": lambda: reducer.reduce(optimizer),
        "MoCo keys": lambda: all_gather_cat(torch.ones(2, 3)),
        "SyncBatchNorm": lambda: SyncBatchNorm(3)(torch.ones(2, 3, 2, 2)),
    }


def main(out: str, timeout: float) -> None:
    rank = int(os.environ["RANK"])
    init_distributed(DistInfo(rank, 2, rank), torch.device("cpu"), timeout)
    if rank == 1:
        time.sleep(60)  # hung: joined, never answers again (killed by the test)
        return
    results = {}
    for name, call in collectives().items():
        try:
            call()
            results[name] = "returned"
        except PeerLostError as exc:
            results[name] = "PeerLostError: " + str(exc)
        except BaseException as exc:  # noqa: BLE001 - the test reports what escaped
            results[name] = f"{type(exc).__name__}: {exc}"
    with open(out, "w") as f:
        json.dump(results, f)
    os._exit(0)  # the hung peer never joins the shutdown


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
