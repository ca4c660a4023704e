"""The trainer's checkpoint side: what a checkpoint holds, writing it, and resuming from it.

Kept apart from the loop in ``util.trainer`` so that the loop reads as the schedule and this file as the
file format: ``state`` is the complete, self-describing dictionary; ``resume`` restores every part of it.
"""

from __future__ import annotations

import os

from util import checkpoint as ckpt_io


class CheckpointingMixin:
    """Mixed into ``Trainer``; relies on its ``opt``, ``model``, ``dist``, ``expr_dir`` and counters."""

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
                "global_step": self.global_step,
                "world_size": self.dist.world_size,
            },
            "rng": ckpt_io.rng_state(),
        }

    def save(self, *labels: str | int) -> None:
        if not self.dist.is_main:
            return
        state = self.state()
        for label in labels:
            ckpt_io.atomic_save(state, ckpt_io.checkpoint_path(self.expr_dir, label))

    def resume(self, path: str) -> None:
        ckpt = ckpt_io.load_checkpoint(path, self.opt.model)
        m = self.model
        try:
            m.load_network_state(ckpt["networks"], source=path)
        except ckpt_io.CheckpointError as exc:
            raise ckpt_io.CheckpointError(f"{exc}\n{option_differences(ckpt['options'], self.opt)}") from exc
        for name, state in ckpt["optimizers"].items():
            m.optimizers[name].load_state_dict(state)
        for name, state in ckpt["schedulers"].items():
            m.schedulers[name].load_state_dict(state)
        m.runtime.load_state_dict(ckpt["scaler"])
        m.load_extra_state(ckpt["model_state"])
        progress = ckpt["progress"]
        self.epoch, self.epoch_iter, self.global_step = (
            progress["epoch"],
            progress["epoch_iter"],
            progress["global_step"],
        )
        if self.dist.is_main and progress.get("world_size", 1) == self.dist.world_size:
            ckpt_io.set_rng_state(ckpt["rng"])  # only rank 0's states are saved; others reseed below
        else:
            ckpt_io.seed_everything(self.opt.seed + self.dist.rank + self.global_step)
        print(
            f"resumed from {path}: epoch {self.epoch}, iteration {self.epoch_iter} of the epoch, "
            f"step {self.global_step}"
        )

    def load_pretrained(self, name: str) -> None:
        path = ckpt_io.checkpoint_path(os.path.join(self.opt.checkpoints_dir, name), self.opt.epoch)
        ckpt = ckpt_io.load_checkpoint(path, self.opt.model)
        self.model.load_network_state(ckpt["networks"], source=path)
        print(f"initialised networks from {path}")


def option_differences(saved: dict, opt) -> str:
    """Name the options that differ between a checkpoint and the current command line."""
    ignore = {"continue_train", "epoch", "gpu_ids", "num_threads", "dry_run", "display_id", "print_freq"}
    diffs = [
        f"--{k}: checkpoint {v!r}, now {getattr(opt, k)!r}"
        for k, v in sorted(saved.items())
        if k not in ignore and hasattr(opt, k) and getattr(opt, k) != v
    ]
    return "options that differ from the checkpoint: " + ("; ".join(diffs) if diffs else "none")
