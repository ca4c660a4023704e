"""U-GAT-IT's pieces beside the training maths: the lr decay, CAM heatmap images and the official file layout.

Kept apart from ``ugatit_model`` so that file shows the method; ``UGATITOfficialFiles`` is mixed into the
model and reads/writes the official ``<dataset>_params_<iter>.pt`` dictionary of state_dicts.
"""

from __future__ import annotations

import glob
import os
import re

import torch
import torch.nn.functional as F
from torch import nn

from models.networks.adaptive_norms import ILN, AdaILN
from util.checkpoint import CheckpointError, clean_state_dict, load_file


class UGATITDecay:
    """lr factor of the iteration after ``done`` finished ones: 1, then linear to 0 over the second half."""

    def __init__(self, iterations: int, decay: bool = True):
        self.half, self.decay = iterations // 2, decay

    def __call__(self, done: int) -> float:
        step = done + 1  # the official 1-based step the lr is used for
        if not self.decay or self.half == 0 or step <= self.half:
            return 1.0
        return max(0.0, 1.0 - (step - self.half) / self.half)


def heatmap_image(heatmap: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """CAM heatmap (B, 1, h, w) → jet-coloured (B, 3, H, W) in [−1, 1], min-max normalised per image.

    A constant heatmap maps to 0 instead of the official NaN (bug 8). The colours follow the classic jet
    piecewise-linear map, close to OpenCV's COLORMAP_JET used officially.
    """
    flat = heatmap.flatten(1)
    low, high = flat.min(1)[0].view(-1, 1, 1, 1), flat.max(1)[0].view(-1, 1, 1, 1)
    x = (heatmap - low) / torch.where(high > low, high - low, torch.ones_like(high))
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
    rgb = torch.cat([(1.5 - (4 * x - c).abs()).clamp(0, 1) for c in (3.0, 2.0, 1.0)], dim=1)
    return rgb * 2 - 1


def ugatit_adam(nets: list[nn.Module], opt) -> torch.optim.Adam:
    """Adam(betas (0.5, 0.999)) with coupled L2 weight decay, optionally sparing the norm parameters.

    ``--ugatit_fused_adam``: torch's fused kernel reads and writes each tensor once instead of once per
    elementwise op (the D optimiser updates 113 M parameters per step: ~10x faster on CPU).
    """
    params = [p for net in nets for p in net.parameters()]
    groups: list[dict] = [{"params": params}]
    if not opt.weight_decay_norms:
        norm_ids = {
            id(p)
            for net in nets
            for m in net.modules()
            if isinstance(m, (AdaILN, ILN, nn.InstanceNorm2d))
            for p in m.parameters()
        }
        groups = [
            {"params": [p for p in params if id(p) not in norm_ids]},
            {"params": [p for p in params if id(p) in norm_ids], "weight_decay": 0.0},
        ]
    return torch.optim.Adam(
        groups,
        lr=opt.lr,
        betas=(opt.beta1, opt.beta2),
        weight_decay=opt.weight_decay,
        fused=True if opt.ugatit_fused_adam else None,  # None: torch's default for-each/loop Adam
    )


class UGATITOfficialFiles:
    """The official checkpoint layout, mixed into the U-GAT-IT models (uses ``networks()`` and ``arch``)."""

    def official_state(self) -> dict[str, dict]:
        """The official file layout: one dict of state_dicts (``torch.save`` it as <dataset>_params_<iter>.pt)."""
        return {name: net.state_dict() for name, net in self.networks().items()}

    def load_official_file(self, path: str, names: list[str]) -> None:
        """Load networks from an official ``{genA2B, genB2A, disGA, ...}`` dict with strict key checking."""
        state = load_file(path)
        missing = [n for n in names if n not in state]
        if missing:
            raise CheckpointError(f"{path} has no {', '.join(missing)} (it holds: {', '.join(state)})")
        for name in names:
            net = getattr(self, name)
            result = net.load_state_dict(clean_state_dict(state[name], net.state_dict()), strict=False)
            if result.missing_keys or result.unexpected_keys:
                raise CheckpointError(
                    f"{path}: {name} does not match this {self.arch} U-GAT-IT configuration; missing keys: "
                    f"{', '.join(result.missing_keys) or 'none'}; unexpected keys: "
                    f"{', '.join(result.unexpected_keys) or 'none'} (enhanced-U-GAT-IT files need "
                    "--model ugatit_enhanced; check --light, --ch, --n_res and the image size)"
                )
        print(f"loaded official U-GAT-IT weights ({', '.join(names)}) from {path}")

    def import_official(self, expr_dir: str, epoch: str, names: list[str]) -> bool:
        """``<dataset>_params_<%07d>.pt`` / ``*_params_latest.pt`` in the experiment folder or its ``model/``."""
        path = find_official_file(expr_dir, epoch)
        if path is None:
            return False
        self.load_official_file(path, names)
        return True

    def official_file_labels(self, names: list[str]) -> dict[str, str]:
        return {n: n for n in names}


def find_official_file(expr_dir: str, epoch: str) -> str | None:
    """The official file for ``--epoch`` (a number or ``latest``); numbers are compared as numbers (bug 6)."""
    for folder in (expr_dir, os.path.join(expr_dir, "model")):
        files = [f for f in glob.glob(os.path.join(folder, "*_params_*.pt")) if "_g_params_" not in f]
        if str(epoch).isdigit():
            wanted = [f for f in files if f.endswith(f"_params_{int(epoch):07d}.pt")]
            if wanted:
                return wanted[0]
            continue
        latest = [f for f in files if f.endswith("_params_latest.pt")]
        numbered = [(int(m.group(1)), f) for f in files if (m := re.search(r"_params_(\d+)\.pt$", f))]
        if latest:
            return latest[0]
        if numbered:
            return max(numbered)[1]
    return None
