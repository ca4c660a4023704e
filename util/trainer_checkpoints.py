"""The trainer's checkpoint side: what a checkpoint holds, writing it, and resuming from it.

Kept apart from the loop in ``util.trainer`` so that the loop reads as the schedule and this file as the
file format: ``state`` is the complete, self-describing dictionary; ``resume`` restores every part of it.

Under several processes the parts that differ per process (model state such as image pools and the MoCo
queue, and the RNG states) are gathered to rank 0 and stored as ``per_rank``; a resume with the same number of
processes gives each rank its own part back. The position inside the epoch is counted in images of the
epoch's global order (``epoch_images``), so a resume with another ``--batch_size`` or number of processes
neither skips nor repeats an image.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from util import checkpoint as ckpt_io
from util import resume_notes, resume_settings
from util.distributed import barrier, guarded
from util.nonfinite import NonFiniteLossError


class CheckpointingMixin:
    """Mixed into ``Trainer``; relies on its ``opt``, ``model``, ``dist``, ``expr_dir``, ``device`` and counters."""

    last_good: tuple[str, int] | None = None  # (path, step) of the newest checkpoint written or resumed from
    saving: bool = False

    def state(self) -> dict:
        m = self.model
        return {
            "format": ckpt_io.FORMAT,
            "version": ckpt_io.VERSION,
            "model": self.opt.model,
            "options": self.opt.to_dict(),
            "networks": m.network_state(),
            "optimizers": {k: o.state_dict() for k, o in m.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in m.schedulers.items()},
            "scaler": m.runtime.state_dict(),
            "model_state": m.extra_state(),
            "progress": {
                "epoch": self.epoch,
                "epoch_iter": self.epoch_iter,
                "epoch_images": self.epoch_images,
                "global_step": self.global_step,
                "world_size": self.dist.world_size,
                "dataset_size": None if self.dataset is None else len(self.dataset),
            },
            "rng": ckpt_io.rng_state(),
        }

    def on_disk(self) -> str:
        """What a stopped run leaves behind, truthfully."""
        if self.last_good is None:
            return "no checkpoint was written by this run"
        path, step = self.last_good
        return f"the last good checkpoint {path} from step {step} is kept"

    def save_outcome(self) -> str:
        """For a second stop signal: did the checkpoint save of the first one finish, or was it skipped?"""
        if self.saving:
            return f"the checkpoint save in progress was abandoned; {self.on_disk()}"
        if self.last_good is not None and self.last_good[1] == self.global_step:
            return f"the checkpoint save had finished: {self.last_good[0]} holds step {self.global_step}"
        return f"the checkpoint save was skipped; {self.on_disk()}"

    def save(self, *labels: str | int) -> None:
        """Write ``labels`` (on rank 0) unless anything in the state is non-finite.

        Every rank calls this at the same step ('latest', numbered and 'best' saves alike): the non-finite
        flags are all-reduced and each rank's model state and RNG gathered into ``per_rank``.
        """
        collective = self.dist.enabled
        self.check_finite(all_reduce=collective)
        mine = {"model_state": self.model.extra_state(), "rng": ckpt_io.rng_state()}
        self.refuse_non_finite_state(mine["model_state"], all_reduce=collective)
        per_rank = gather_to_main(to_cpu(mine), self.dist.world_size) if collective else None
        if not self.dist.is_main:
            self.last_good = (ckpt_io.checkpoint_path(self.expr_dir, labels[0]), self.global_step)
            barrier(self.dist, "rank 0 wrote a checkpoint")  # a stop right after must not lose the file
            return
        state = self.state()
        if per_rank is not None:
            state["per_rank"] = per_rank
        self.saving = True
        try:
            for label in labels:
                path = ckpt_io.checkpoint_path(self.expr_dir, label)
                ckpt_io.atomic_save(state, path)
                self.last_good = (path, self.global_step)
        finally:
            self.saving = False
        removed = ckpt_io.prune_numbered(self.expr_dir, getattr(self.opt, "keep_last", 0))
        if removed:
            print(f"--keep_last {self.opt.keep_last}: removed {', '.join(removed)}")
        if collective:
            barrier(self.dist, "rank 0 wrote a checkpoint")

    def refuse_non_finite_state(self, model_state: dict, all_reduce: bool) -> None:
        """Never write a poisoned checkpoint: weights, optimiser and model state must all be finite."""
        m = self.model
        tree = [m.network_state(), [o.state_dict()["state"] for o in m.optimizers.values()], model_state]
        bad, total = ckpt_io.count_non_finite(tree)
        if all_reduce:
            flag = torch.tensor(bad, device=self.device)
            guarded(lambda: dist.all_reduce(flag, op=dist.ReduceOp.MAX), "checking the state before a save")
            bad = int(flag)
        if bad:
            raise NonFiniteLossError(
                f"{bad} of {total} weight, optimiser-state or model-state tensors became non-finite by step "
                f"{self.global_step} (epoch {self.epoch}); training stopped and nothing was saved; "
                f"{self.on_disk()}. Try a lower --lr, --amp none, or check the input data."
            )

    def resume(self, path: str) -> None:
        try:  # missing or damaged: the folder's other checkpoints may still resume the run
            ckpt = ckpt_io.load_own_file(path)
        except ckpt_io.CheckpointError as exc:
            hint = resume_notes.other_checkpoints_hint(self.expr_dir, path)
            raise ckpt_io.CheckpointError(f"{exc}{hint}") from None
        ckpt_io.check_model(ckpt, path, self.opt.model)  # another model's file: so are its siblings
        m = self.model
        try:
            m.load_network_state(ckpt["networks"], source=path)
        except ckpt_io.CheckpointError as exc:
            differences = option_differences(ckpt["options"], self.opt)
            raise ckpt_io.CheckpointError(
                f"cannot resume: the networks in {path} were built with other options\n{differences}"
                if differences
                else str(exc)
            ) from None
        fresh = resume_settings.snapshot(m.optimizers, m.schedulers)
        for name, state in ckpt["optimizers"].items():
            m.optimizers[name].load_state_dict(state)
        for name, state in ckpt["schedulers"].items():
            m.schedulers[name].load_state_dict(state)
        changes = resume_settings.reapply(m.optimizers, m.schedulers, fresh)
        if changes and self.dist.is_main:
            print(f"note: optimiser settings of this command differ from {path}'s and apply from here on: "
                  + "; ".join(changes))  # fmt: skip
        m.runtime.load_state_dict(ckpt["scaler"])
        self.restore_progress(ckpt)
        self.restore_rank_state(ckpt)
        self.last_good = (path, self.global_step)
        if self.dist.is_main:  # every rank resumes at the same position: said once
            print(
                f"resumed from {path}: epoch {self.epoch}, image {self.epoch_images} of the epoch "
                f"(iteration {self.epoch_iter}), step {self.global_step}"
            )
            self.print_resume_notes(ckpt)

    def print_resume_notes(self, ckpt: dict) -> None:
        """Say what this resume cannot make exact (data order, dataset size) and what its saves replace."""
        size = None if self.dataset is None else len(self.dataset)
        saved_size = ckpt["progress"].get("dataset_size")
        notes = resume_notes.data_order_notes(
            ckpt["options"], saved_size, self.opt, size, self.epoch, self.epoch_images
        )
        notes.append(resume_notes.branch_note(self.expr_dir, self.opt.epoch))
        for note in filter(None, notes):
            print(note)

    def restore_progress(self, ckpt: dict) -> None:
        """Counters; the position in the epoch in images (older files: iterations x their batch x processes)."""
        progress = ckpt["progress"]
        saved_world = progress.get("world_size", 1)
        images = progress.get("epoch_images")
        if images is None:
            saved = ckpt["options"]
            images = (
                progress["epoch_iter"] * saved.get("batch_size", 1) * saved.get("grad_accum", 1) * saved_world
            )
        self.epoch, self.global_step, self.epoch_images = progress["epoch"], progress["global_step"], images
        per_step = self.opt.batch_size * getattr(self.opt, "grad_accum", 1) * self.dist.world_size
        self.epoch_iter = images // per_step

    def restore_rank_state(self, ckpt: dict) -> None:
        """Model state and RNGs: each rank its own where the file has them, else rank 0's and a fresh seed."""
        rank, world = self.dist.rank, self.dist.world_size
        saved_world = ckpt["progress"].get("world_size", 1)
        per_rank = ckpt.get("per_rank")
        if saved_world == world and per_rank and len(per_rank) == world:
            self.model.load_extra_state(per_rank[rank]["model_state"])
            ckpt_io.set_rng_state(per_rank[rank]["rng"])
            return
        self.model.load_extra_state(ckpt["model_state"])
        if saved_world == world and rank == 0:
            ckpt_io.set_rng_state(ckpt["rng"])
            return
        ckpt_io.seed_everything(self.opt.seed + rank + self.global_step)
        if self.dist.is_main and saved_world != world:
            print(
                f"note: the checkpoint was written by {saved_world} process(es), this run has {world}: every "
                f"process starts from rank 0's model state and reseeds its RNGs from (seed, rank, step); the "
                f"data position is exact, the random stream is not the one the original run would have drawn"
            )

    def load_pretrained(self, name: str) -> None:
        """Initialise the networks from experiment ``name``; every refusal is one line naming the option."""
        folder = os.path.join(self.opt.checkpoints_dir, name)
        if not os.path.isdir(folder):
            raise ckpt_io.CheckpointError(
                f"--pretrained_name {name}: no experiment folder {folder} (is --checkpoints_dir right?)"
            )
        path = ckpt_io.checkpoint_path(folder, self.opt.epoch)
        try:
            ckpt = ckpt_io.load_own_file(path)
        except ckpt_io.CheckpointError as exc:
            hint = resume_notes.other_checkpoints_hint(folder, path, use="start from one with")
            raise ckpt_io.CheckpointError(f"--pretrained_name {name}: {exc}{hint}") from None
        ckpt_io.check_model(ckpt, path, self.opt.model, retry="another --pretrained_name")
        try:
            self.model.load_network_state(ckpt["networks"], source=path)
        except ckpt_io.CheckpointError as exc:
            why = architecture_mismatch(ckpt, self.model, self.opt) or exc
            raise ckpt_io.CheckpointError(f"--pretrained_name {name}: {why}") from None
        if self.dist.is_main:
            print(f"initialised networks from {path}")


def architecture_mismatch(ckpt: dict, model, opt) -> str:
    """One line naming the architecture options a checkpoint was built with that differ now ("" if none)."""
    saved = ckpt.get("options") or {}
    diffs = [f"--{k} {saved[k]} (now {getattr(opt, k)})" for k in type(model).architecture_options
             if k in saved and hasattr(opt, k) and saved[k] != getattr(opt, k)]  # fmt: skip
    if not diffs:
        return ""
    return f"its networks were built with {', '.join(diffs)}: pass the same values to start from it"


def gather_to_main(obj, world_size: int) -> list | None:
    """Every rank's ``obj`` as a list on rank 0 (None elsewhere); the objects travel pickled."""
    gathered = [None] * world_size if dist.get_rank() == 0 else None
    guarded(lambda: dist.gather_object(obj, gathered, dst=0), "gathering every rank's state for a save")
    return gathered


def to_cpu(tree):
    """A copy of nested dicts/lists/tuples with every tensor on the CPU (what rank 0 may unpickle)."""
    if torch.is_tensor(tree):
        return tree.detach().cpu()
    if isinstance(tree, dict):
        return {k: to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_cpu(v) for v in tree)
    return tree


def option_differences(saved: dict, opt) -> str:
    """Name the options that differ between a checkpoint and the current command line, one per line."""
    ignore = {"continue_train", "overwrite", "epoch", "gpu_ids", "num_threads", "dry_run", "display_id", "print_freq"}
    diffs = [
        f"  --{k}: checkpoint {v!r}, now {getattr(opt, k)!r}"
        for k, v in sorted(saved.items())
        if k not in ignore and hasattr(opt, k) and getattr(opt, k) != v
    ]
    if not diffs:
        return ""
    return "options that differ from the checkpoint (pass the checkpoint's values, or another --name):\n" + (
        "\n".join(diffs)
    )
