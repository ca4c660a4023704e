"""Losses shared by the models; method-specific ones live in their own modules (patchnce, contrastive, ...)."""

from __future__ import annotations

from .gan import GAN_MODES, GANLoss, cal_gradient_penalty

__all__ = ["GAN_MODES", "GANLoss", "cal_gradient_penalty"]
