"""What a resume cannot restore exactly, said once, and where else a failed resume could start from.

``--continue_train`` is exact when the command matches the checkpoint's. Some changes cannot be exact and
used to pass in silence: another ``--seed`` or ``--serial_batches`` reorders the rest of the epoch (so images
already seen may come again and others be left out), and a dataset that grew or shrank (images added or
removed, another ``--max_dataset_size``) changes the epoch order as well, or leaves the saved position
beyond the epoch's new end. These produce notes, not refusals: the run is still valid, only not the one the
original command would have drawn. A missing or damaged checkpoint names the others in the folder and the
``--epoch`` that resumes from one, instead of leaving the researcher to find them.
"""

from __future__ import annotations

import os

from util.checkpoint import checkpoint_path

#: other checkpoints named in a failed resume's message; more are counted, not listed
SHOWN = 4


def others_newest_first(expr_dir: str, failed: str) -> list[str]:
    """Labels (``--epoch`` values) of the checkpoints in ``expr_dir`` other than ``failed``, newest first.

    Newest by modification time: epoch and iteration numbers count different things, write order is shared.
    """
    if not os.path.isdir(expr_dir):
        return []
    paths = [os.path.join(expr_dir, n) for n in os.listdir(expr_dir) if n.endswith(".pth")]
    paths = [p for p in paths if os.path.isfile(p) and os.path.abspath(p) != os.path.abspath(failed)]
    paths.sort(key=lambda p: (os.stat(p).st_mtime_ns, p), reverse=True)
    return [os.path.basename(p)[: -len(".pth")] for p in paths]


def other_checkpoints_hint(
    expr_dir: str, failed: str, use: str = "resume from one with --continue_train"
) -> str:
    """'; <dir> also holds A.pth, B.pth (newest first): resume from one with --continue_train --epoch A'.

    "" if the folder holds no other checkpoint; ``use`` is what the ``--epoch`` flag follows.
    """
    labels = others_newest_first(expr_dir, failed)
    if not labels:
        return ""
    more = f" and {len(labels) - SHOWN} more" if len(labels) > SHOWN else ""
    shown = ", ".join(f"{label}.pth" for label in labels[:SHOWN])
    return f"; {expr_dir} also holds {shown}{more} (newest first): {use} --epoch {labels[0]}"


def branch_note(expr_dir: str, label: str) -> str:
    """A resume from an older checkpoint: its saves will replace latest.pth (and later numbered files)."""
    latest = checkpoint_path(expr_dir, "latest")
    if str(label) == "latest" or not os.path.isfile(latest):
        return ""
    return (
        f"note: resuming from {label}.pth: this run's saves replace latest.pth and any numbered checkpoint "
        f"it reaches again; copy them aside first to keep the original run's later state"
    )


def data_order_notes(
    saved: dict, saved_size: int | None, opt, size: int | None, epoch: int, images: int
) -> list[str]:
    """Notes for a resume at image ``images`` of ``epoch`` whose data order differs from the checkpoint's.

    ``saved`` holds the checkpoint's options and ``saved_size`` its dataset length (None in older files);
    ``size`` is the dataset length now (None when no data was built).
    """
    notes = []
    mid_epoch = images > 0
    rest = (
        f"the rest of epoch {epoch} follows the new order, so some images already seen this epoch may come "
        f"again and others be left out"
        if mid_epoch
        else f"epochs from {epoch} on differ from the original run's"
    )
    changed = [
        f"--{key} {saved[key]} -> {getattr(opt, key)}"
        for key in ("seed", "serial_batches")
        if key in saved and saved[key] != getattr(opt, key)
    ]
    if changed:
        notes.append(f"note: {', '.join(changed)} changes the data order and augmentation: {rest}")
    resized = size is not None and saved_size is not None and saved_size != size
    past_end = size is not None and mid_epoch and (images > size or (images == size and resized))
    if past_end:
        notes.append(
            f"note: the checkpoint stopped at image {images} of epoch {epoch}, but the dataset has {size} "
            f"items now: epoch {epoch} ends here and training continues with epoch {epoch + 1}"
        )
    elif resized:
        notes.append(
            f"note: the dataset has {size} items now, {saved_size} when the checkpoint was written: {rest}"
        )
    return notes
