"""Train any registered model: ``python train.py --model cycle_gan --dataroot DATA --name EXP``.

With no ``--dataroot`` a small synthetic dataset is generated and used, so a fresh clone can train at once.
``--continue_train`` resumes exactly where the last checkpoint stopped; a new run into a folder holding
checkpoints needs ``--overwrite``. SIGTERM/SIGINT save and exit, a second one exits at once. One run at a
time per experiment folder (``run.lock``), and nothing is written to that folder before the options and the
checkpoint to resume from have been checked; a refused start leaves no folder behind that it created.
"""

import contextlib
import os
import sys

from data.image_io import DataError
from options import TrainOptions
from options.machine import apply_torch_threads
from util.checkpoint import CheckpointError, remove_orphan_temps
from util.distributed import PeerLostError, barrier
from util.fresh_start import check_fresh_start, remove_previous_checkpoints
from util.metrics.evaluate import set_aside_history
from util.run_lock import RunLock, RunLockedError
from util.trainer import NonFiniteLossError, Trainer, TrainingAborted, TrainingInterrupted


def experiment_lock(opt) -> contextlib.AbstractContextManager:
    """The experiment folder's lock, taken by one process per run (rank 0) and not for a dry run."""
    if opt.dry_run or int(os.environ.get("RANK", "0")) != 0:
        return contextlib.nullcontext()
    return RunLock(os.path.join(opt.checkpoints_dir, opt.name))


def main(argv: list[str] | None = None) -> int:
    options = TrainOptions()
    opt = options.parse(argv, save=False)
    apply_torch_threads(opt)
    try:
        with experiment_lock(opt) as lock:
            check_fresh_start(opt)  # every rank: a file check, so no rank waits for one that refused
            if lock is not None:
                removed = remove_orphan_temps(lock.expr_dir)
                if removed:
                    print(f"removed {len(removed)} temp file(s) of killed saves: {', '.join(removed)}")
            trainer = Trainer(opt)  # checks options against the checkpoint before anything is written
            # Every rank has passed its checks and read what it needs (e.g. --pretrained_name from this folder)
            # before rank 0 deletes the old checkpoints; a rank that refused keeps them all.
            barrier(trainer.dist, "every process started")
            if int(os.environ.get("RANK", "0")) == 0:
                if not opt.continue_train and not opt.dry_run:
                    set_aside_history(trainer.expr_dir)
                if opt.overwrite and not opt.dry_run:
                    removed = remove_previous_checkpoints(trainer.expr_dir)
                    if removed:
                        print(f"--overwrite: removed the previous run's {', '.join(removed)}")
                options.save(opt)
            trainer.fit()
    except TrainingInterrupted as exc:
        print(exc)
        return 0
    except TrainingAborted as exc:
        print(exc, file=sys.stderr)
        return 128 + exc.signum
    except (NonFiniteLossError, CheckpointError, DataError, RunLockedError, PeerLostError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk or a read-only folder while writing logs or images
        print(f"error: could not write {exc.filename or 'a file'}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
