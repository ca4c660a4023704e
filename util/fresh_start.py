"""A fresh training run in an experiment folder that already holds one.

Re-running a training command without ``--continue_train`` used to overwrite the old run's checkpoints one save
at a time, so a repeated command could cost weeks of training. A fresh start into a folder holding checkpoints
(``*.pth``) is therefore refused before anything is written, unless ``--overwrite`` says to start over. A folder
with options and logs but no checkpoint (a run that failed before its first save) is no loss and is reused.

``--overwrite`` removes the old run's checkpoints once the new run has passed its checks (the lock is held, the
options and data are valid), so that no numbered file of the old run is later scored or resumed as part of the
new one. The evaluation history, which decides ``best.pth``, belongs to the run that wrote it, so every fresh
run sets it aside (:func:`util.metrics.evaluate.set_aside_history`).
"""

from __future__ import annotations

import os

from util.checkpoint import CheckpointError

#: names shown in the refusal; more are counted, not listed
SHOWN = 4


def existing_checkpoints(expr_dir: str) -> list[str]:
    """Names of the checkpoint files (``*.pth``) in ``expr_dir``; temp files of killed saves do not count."""
    if not os.path.isdir(expr_dir):
        return []
    names = os.listdir(expr_dir)
    return sorted(n for n in names if n.endswith(".pth") and os.path.isfile(os.path.join(expr_dir, n)))


def check_fresh_start(opt) -> None:
    """Refuse a fresh run (no ``--continue_train``) over existing checkpoints unless ``--overwrite`` is given.

    A pure file check with no writes and no collectives: every rank of a torchrun job runs it and refuses
    alike, so no rank is left waiting for one that stopped.
    """
    if opt.continue_train and opt.overwrite:
        raise CheckpointError(
            "--continue_train resumes the run in the folder and --overwrite starts a new one: give only one"
        )
    if opt.dry_run or opt.continue_train or opt.overwrite:
        return
    expr_dir = os.path.join(opt.checkpoints_dir, opt.name)
    found = existing_checkpoints(expr_dir)
    if found:
        more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        raise CheckpointError(
            f"{expr_dir} already holds checkpoints ({', '.join(found[:SHOWN])}{more}); use --continue_train to "
            f"resume, another --name, or --overwrite to start over"
        )


def remove_previous_checkpoints(expr_dir: str) -> list[str]:
    """``--overwrite``: delete the old run's checkpoints (names returned), before the new run saves any."""
    found = existing_checkpoints(expr_dir)
    for name in found:
        os.remove(os.path.join(expr_dir, name))
    return found
