"""Conversions between network tensors in [-1, 1] and displayable uint8 images."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid


def _to_chw3(t: torch.Tensor) -> torch.Tensor:
    """First image of a batch as a float CHW tensor with 3 channels, clamped to [-1, 1].

    Accepts NCHW, CHW, 1HW and HW (heat maps such as U-GAT-IT's CAM panels).
    """
    t = t.detach().cpu().float()
    if t.dim() == 4:
        t = t[0]
    if t.dim() == 2:
        t = t.unsqueeze(0)
    if t.dim() != 3:
        raise ValueError(f"expected an image tensor of 2-4 dims, got shape {tuple(t.shape)}")
    if t.shape[0] == 1:
        # Grayscale outputs (--output_nc 1, depth, heat maps) are tiled so every panel is RGB.
        t = t.expand(3, -1, -1)
    return t.clamp(-1.0, 1.0)


def _chw_to_uint8(t: torch.Tensor) -> np.ndarray:
    # Same arithmetic as the official tensor2im: (x + 1) / 2 * 255 in float32, then astype(uint8),
    # i.e. truncation rather than rounding, so saved images match the official ones byte for byte.
    arr = (t.permute(1, 2, 0).numpy() + 1.0) / 2.0 * 255.0
    return arr.astype(np.uint8)


def tensor2im(t: torch.Tensor) -> np.ndarray:
    """Convert the first image of ``t`` (values in [-1, 1]) to an HxWx3 uint8 array."""
    return _chw_to_uint8(_to_chw3(t))


def save_image(arr_or_tensor: np.ndarray | torch.Tensor, path: str, aspect_ratio: float = 1.0) -> None:
    """Save an HxWxC / HxW uint8 array or an image tensor as PNG, creating parent folders.

    ``aspect_ratio`` > 1 stretches the height and < 1 the width, which is what the official
    ``save_image`` produces for square images (it passes (h, w) to PIL's (width, height) resize,
    so for non-square images its result is not a pure stretch; here it is).
    """
    arr = tensor2im(arr_or_tensor) if isinstance(arr_or_tensor, torch.Tensor) else arr_or_tensor
    img = Image.fromarray(arr)
    w, h = img.size
    if aspect_ratio > 1.0:
        img = img.resize((w, int(h * aspect_ratio)), Image.BICUBIC)
    elif aspect_ratio < 1.0:
        img = img.resize((int(w / aspect_ratio), h), Image.BICUBIC)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    img.save(path, format="PNG")


def make_grid_image(list_of_tensors: list[torch.Tensor], nrow: int, padding: int = 2) -> np.ndarray:
    """Tile the first image of every tensor into one HxWx3 uint8 grid with ``nrow`` images per row.

    Panels of a different size (e.g. low-resolution heat maps) are resized to the first panel's size
    so that one grid can hold every visual; padding is white like the official visdom table.
    """
    panels = [_to_chw3(t) for t in list_of_tensors]
    size = panels[0].shape[1:]
    panels = [
        p
        if p.shape[1:] == size
        else F.interpolate(p[None], size=size, mode="bilinear", align_corners=False)[0]
        for p in panels
    ]
    grid = make_grid(torch.stack(panels), nrow=max(1, nrow), padding=padding, pad_value=1.0)
    return _chw_to_uint8(grid)
