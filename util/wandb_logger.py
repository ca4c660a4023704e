"""Weights & Biases logging for ``--use_wandb`` (the option name of the CycleGAN/CUT codebases).

wandb is an optional dependency: when it is missing, or ``wandb.init`` fails (no login, no network), one
warning line says so and training goes on without it. ``WANDB_MODE=offline`` writes the run to disk only
(``wandb sync`` uploads it later); the run lives in ``WANDB_DIR`` if set, else in the experiment folder.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)


class WandbLogger:
    """One W&B run per training process: the options as its config, then losses, lr, images and metrics.

    Args:
        project: the W&B project (``--wandb_project_name``).
        name: the run's display name (the experiment name).
        log_dir: the experiment folder; the run's files go under it unless ``WANDB_DIR`` says otherwise.
        config: the parsed options.
    """

    def __init__(self, project: str, name: str, log_dir: str, config: dict[str, Any]) -> None:
        self.run = None
        try:
            import wandb
        except ImportError:
            logger.warning("--use_wandb: the wandb package is not installed (pip install wandb); W&B is off")
            return
        self.wandb = wandb
        folder = os.environ.get("WANDB_DIR") or log_dir
        os.makedirs(folder, exist_ok=True)
        try:
            self.run = wandb.init(project=project, name=name, dir=folder, config=config, reinit="create_new")
        except Exception as exc:  # login, network and permission errors all mean the same here: no W&B
            logger.warning("--use_wandb: could not start a W&B run (%s); W&B is off for this run", exc)
            self.run = None

    def log(self, step: int, values: dict[str, Any]) -> None:
        """Log scalars (and images) at ``step``; a failure turns W&B off with one warning."""
        if self.run is None or not values:
            return
        try:
            self.run.log(values, step=step)
        except Exception as exc:
            logger.warning("W&B logging failed (%s); W&B is off for the rest of the run", exc)
            self.run = None

    def log_losses(self, step: int, losses: dict[str, float], lr: float | None) -> None:
        values = {f"loss/{k}": float(v) for k, v in losses.items()}
        if lr is not None:
            values["lr"] = float(lr)
        self.log(step, values)

    def log_images(self, step: int, images: dict[str, Any]) -> None:
        """``images``: label -> HxWx3 uint8 array."""
        if self.run is not None:
            self.log(step, {f"images/{k}": self.wandb.Image(v, caption=k) for k, v in images.items()})

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.log(step, {f"metrics/{k}": float(v) for k, v in metrics.items()})

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
