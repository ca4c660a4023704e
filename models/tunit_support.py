"""TUNIT machinery outside the training maths: the official phase schedule, EMA helpers, the importer of
official ``model_N.ckpt`` files and the cluster-average styles used at inference."""

from __future__ import annotations

import contextlib
import os
import re

import numpy as np
import torch
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from data.image_io import list_images, load_image
from data.transforms import to_tensor
from models.networks.tunit import VGG11_WIDTHS
from util.checkpoint import CheckpointError, load_file

#: (labelled-only epochs, GAN start, EMA start) in official epochs, main.py:117-141.
OFFICIAL_EPOCHS = {"unsup": (0, 65, 66), "semi": (20, 35, 36), "sup": (0, 0, 1)}
#: our network attributes -> keys of the official checkpoint dict (``<key>_state_dict``).
OFFICIAL_NAMES = {"netC": "C", "netC_ema": "C_EMA", "netD": "D", "netG": "G", "netG_ema": "G_EMA"}


class TunitSchedule:
    """Official phases of ``main.py`` as iteration numbers (no ``iters // 1000`` division: quirk S1).

    An official epoch is ``epoch_iters`` iterations, except the semi-supervised warm-up epochs, which run only
    ``max(int(epoch_iters * p), 100)`` labelled iterations each (capped at ``epoch_iters`` here so that tiny
    test epochs work). With the defaults: unsupervised GAN from 65k, G_ema from 66k, 200k in all.
    """

    def __init__(
        self,
        mode: str,
        epoch_iters: int = 1000,
        epochs: int = 200,
        p_semi: float = 0.0,
        gan_start: int = -1,
        ema_start: int = -1,
        semi_warm_epochs: int = 20,
    ) -> None:
        if mode not in OFFICIAL_EPOCHS:
            raise ValueError(f"unknown TUNIT mode {mode!r}; choose from {sorted(OFFICIAL_EPOCHS)}")
        if epoch_iters < 1:
            raise ValueError("--tunit_epoch_iters must be >= 1")
        warm, gan_epoch, ema_epoch = OFFICIAL_EPOCHS[mode]
        self.mode = mode
        self.epoch_iters = epoch_iters
        self.warm = semi_warm_epochs if mode == "semi" else warm
        self.n_sup = {"unsup": 0, "sup": epoch_iters, "semi": int(epoch_iters * p_semi)}[mode]
        self.warm_len = min(max(self.n_sup, 100), epoch_iters)
        self.total_steps = self.epoch_start(epochs)
        self.gan_start = gan_start if gan_start >= 0 else self.epoch_start(gan_epoch)
        self.ema_start = ema_start if ema_start >= 0 else self.epoch_start(ema_epoch)

    def epoch_start(self, epoch: int) -> int:
        """First iteration of official epoch ``epoch`` (0-based)."""
        return min(epoch, self.warm) * self.warm_len + max(epoch - self.warm, 0) * self.epoch_iters

    def locate(self, t: int) -> tuple[int, int, int]:
        """(epoch, position in it, its length) of iteration ``t``."""
        warm_total = self.warm * self.warm_len
        if t < warm_total:
            return t // self.warm_len, t % self.warm_len, self.warm_len
        rest = t - warm_total
        return self.warm + rest // self.epoch_iters, rest % self.epoch_iters, self.epoch_iters

    def labelled(self, t: int) -> bool:
        """Whether iteration ``t`` is a labelled one (semi: the first ``n_sup`` of each epoch)."""
        if self.mode != "semi":
            return self.mode == "sup"
        epoch, pos, _ = self.locate(t)
        return epoch < self.warm or pos < self.n_sup

    def epoch_end(self, t: int) -> bool:
        _, pos, length = self.locate(t)
        return pos == length - 1


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, beta: float) -> None:
    """``target <- beta * target + (1 - beta) * source`` on parameters only (official ``update_average``)."""
    src = dict(source.named_parameters())
    for name, p in target.named_parameters():
        p.copy_(beta * p + (1.0 - beta) * src[name])


@torch.no_grad()
def copy_buffers(target: nn.Module, source: nn.Module) -> None:
    """Copy every buffer (BN statistics, counters, AdaIN buffers): official ``copy_norm_params``."""
    src = dict(source.named_buffers())
    for name, b in target.named_buffers():
        b.copy_(src[name])


@contextlib.contextmanager
def repeated_bn_updates(net: nn.Module, times: int):
    """Inside, one train-mode forward of ``net`` moves its BatchNorm running statistics as ``times`` forwards
    of the same batch would (the fast TUNIT step runs a trunk once where the official step runs it on the
    same batch ``times`` times with unchanged weights).

    An update with momentum m maps a running statistic r to (1 - m) r + m s; ``times`` updates with the same
    batch statistic s give (1 - m)^times r + (1 - (1 - m)^times) s, i.e. one update with momentum
    1 - (1 - m)^times (equal up to float rounding); ``num_batches_tracked`` gains ``times``.
    """
    bns = [
        m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if times == 1 or not net.training or not bns:
        yield
        return
    if any(m.momentum is None for m in bns):
        raise ValueError(
            "repeated_bn_updates needs BatchNorm layers with a momentum (not a cumulative average)"
        )
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 1.0 - (1.0 - m.momentum) ** times
    try:
        yield
    finally:
        for m, momentum in zip(bns, saved):
            m.momentum = momentum
            m.num_batches_tracked.add_(times - 1)


def official_checkpoint_path(run_dir: str, epoch: str | int) -> str | None:
    """``model_<epoch>.ckpt`` in an official run folder; for ``latest`` the last line of checkpoint.txt (or
    the highest N). None when the folder holds no official checkpoint."""
    if str(epoch) != "latest":
        path = os.path.join(run_dir, f"model_{epoch}.ckpt")
        return path if os.path.isfile(path) else None
    listing = os.path.join(run_dir, "checkpoint.txt")
    if os.path.isfile(listing):
        with open(listing) as f:
            names = [line.strip() for line in f if line.strip()]
        if names and os.path.isfile(os.path.join(run_dir, names[-1])):
            return os.path.join(run_dir, names[-1])
    if not os.path.isdir(run_dir):
        return None
    found = [
        (int(m.group(1)), n) for n in os.listdir(run_dir) if (m := re.fullmatch(r"model_(\d+)\.ckpt", n))
    ]
    return os.path.join(run_dir, max(found)[1]) if found else None


def official_state_dict(state: dict) -> dict:
    """Strip ``module.`` (DataParallel/DDP saves) and rename the pre-2020-06-17 ``blocks``/``block`` modules."""
    cleaned = {}
    for key, value in state.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        cleaned[key.replace(".blocks.", ".model.").replace(".block.", ".model.")] = value
    return cleaned


def load_official_checkpoint(model: nn.Module, path: str, names: list[str]) -> dict:
    """Load networks ``names`` of ``model`` strictly from an official ``model_N.ckpt``; returns the file's dict.

    ``inceptionNet_state_dict`` (K1) and ``epoch`` (K2: 4568 for the best-FID file) are ignored.
    """
    ckpt = load_file(path)
    for name in names:
        key = f"{OFFICIAL_NAMES[name]}_state_dict"
        if key not in ckpt:
            raise CheckpointError(f"{path} has no {key} (keys: {', '.join(sorted(ckpt))})")
        try:
            getattr(model, name).load_state_dict(official_state_dict(ckpt[key]), strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{path}: {key} does not fit {name} (check --crop_size, --output_k, --sty_dim): "
                f"{str(exc).splitlines()[0]}"
            ) from exc
    return ckpt


def style_images(root: str, size: int, channels: int, limit: int) -> torch.Tensor:
    """Up to ``limit`` images found recursively under ``root``, evenly spaced in sorted order (so every class
    folder contributes), resized bilinearly to ``size`` x ``size`` in [-1, 1]."""
    paths = list_images(root, recursive=True, what="style images")
    if limit > 0 and len(paths) > limit:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]
    resize = InterpolationMode.BILINEAR
    return torch.stack([to_tensor(TF.resize(load_image(p, channels), [size, size], resize)) for p in paths])


@torch.no_grad()
def cluster_styles(
    assign_net: nn.Module, style_net: nn.Module, images: torch.Tensor, k: int, device, batch_size: int = 50
) -> tuple[torch.Tensor, list[int]]:
    """Mean style code of each cluster (validation.py's AVG grids): cluster = argmax ``assign_net.iic``,
    style = ``style_net.moco``. Returns (K, sty_dim) means (zeros for empty clusters) and the counts."""
    sums, counts = None, torch.zeros(k, dtype=torch.long)
    for start in range(0, images.size(0), batch_size):
        x = images[start : start + batch_size].to(device)
        cluster = torch.argmax(assign_net.iic(x), 1)
        codes = style_net.moco(x)
        if sums is None:
            sums = codes.new_zeros(k, codes.size(1))
        sums.index_add_(0, cluster, codes)
        counts += torch.bincount(cluster.cpu(), minlength=k)
    styles = sums / counts.clamp(min=1).to(sums).unsqueeze(1)
    return styles, counts.tolist()


@contextlib.contextmanager
def eval_mode(*nets: nn.Module | None):
    """Run with ``nets`` in eval mode, then restore each one's mode."""
    nets = tuple(n for n in nets if n is not None)
    modes = [n.training for n in nets]
    for n in nets:
        n.eval()
    try:
        yield
    finally:
        for n, mode in zip(nets, modes):
            n.train(mode)


def parse_widths(spec: str) -> tuple[int | str, ...]:
    """``"64,M,128,M"`` -> (64, "M", 128, "M"); empty -> VGG11."""
    if not spec:
        return VGG11_WIDTHS
    return tuple("M" if v.strip().upper() == "M" else int(v) for v in spec.split(","))
