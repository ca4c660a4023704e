"""Every registered training configuration at its smallest: options, a model and one real batch.

Shared by the CUDA-readiness, AMP and graph-break tests, which all run "every model" once. The table of
configurations is ``benchmarks/model_cases.py`` (``benchmarks/gpu_check.py`` runs the same ones on a GPU).
"""

from __future__ import annotations

import torch

import data
import models
from benchmarks.model_cases import CASES, case_args, make_dataroot
from options import TrainOptions

__all__ = ["CASES", "build", "parse", "train_step"]


def parse(case: str, tmp_root: str, *extra: str):
    root = make_dataroot(tmp_root, case, tiny=True)
    argv = [*case_args(case, tiny=True), "--dataroot", root, "--checkpoints_dir", f"{tmp_root}/ck",
            "--gpu_ids", "-1", *extra]  # fmt: skip
    return TrainOptions().parse(argv, save=False)


def build(case: str, tmp_root: str, *extra: str, seed: int = 0):
    """``(model, batch)``: a set-up model in train mode and its first training batch."""
    opt = parse(case, tmp_root, *extra)
    torch.manual_seed(seed)
    model = models.create_model(opt)
    model.setup()
    model.train()
    loader = data.create_dataloader(data.create_dataset(opt), opt, shuffle=False, batch_size=opt.batch_size)
    return model, next(iter(loader))


def train_step(model, batch, step: int = 0) -> None:
    """One iteration as the trainer runs it (without the trainer's logging and loss bookkeeping)."""
    model.set_progress(1, step)
    model.set_input(batch)
    with model.runtime.autocast():
        model.optimize_parameters()
    model.runtime.end_iteration()
    model.on_step_end()
