"""UNIT losses, as computed by the official ``UNIT_Trainer`` / ``MsImageDis`` (mingyuliutw/UNIT master).

- :func:`kl_loss` is the official "KL" term ``mean(h**2)``: for the unit-variance posterior N(h, I) the full
  KL(N(h, I) || N(0, I)) is ``0.5 * sum(h**2)``, so this is ``(2 / numel) * KL``. Kept as published (the loss
  weights ``recon_kl_w`` are tuned for it).
- :func:`recon_loss` is the mean absolute error.
- :func:`dis_loss` / :func:`gen_adv_loss` sum (do not average) over the discriminator scales.
- :class:`PerceptualLoss` is the domain-invariant perceptual loss (``vgg_w``): MSE between instance-normalised
  VGG16 relu5_3 features. Its weights come from a local file only (:func:`load_vgg16`); nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

GAN_TYPES = ("lsgan", "nsgan")
VGG_INPUT_MODES = ("caffe", "torchvision")


def kl_loss(mu: torch.Tensor) -> torch.Tensor:
    """Official ``__compute_kl``: ``mean(mu**2)``, the KL of N(mu, I) from N(0, I) up to the factor 2/numel."""
    return torch.mean(torch.pow(mu, 2))


def recon_loss(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Official ``recon_criterion``: mean |input - target|."""
    return torch.mean(torch.abs(input - target))


def _check_gan_type(gan_type: str) -> None:
    if gan_type not in GAN_TYPES:
        raise ValueError(f"unsupported gan_type {gan_type!r}; valid choices: {', '.join(GAN_TYPES)}")


def bce_of_sigmoid(logits: torch.Tensor, target: float) -> torch.Tensor:
    """The official ``BCE(sigmoid(logits), target)`` (mean), always evaluated in float32 outside autocast.

    CUDA autocast refuses ``binary_cross_entropy`` (unsafe in half precision), and the logits form would
    drop BCE's clamp of log at -100 (a saturated D scores 100 there, not |logit|): an fp32 region keeps the
    official numbers under every ``--amp`` setting.
    """
    with torch.autocast(logits.device.type, enabled=False):
        p = torch.sigmoid(logits if logits.dtype == torch.float64 else logits.float())
        return F.binary_cross_entropy(p, torch.full_like(p, target))


def dis_loss(outs_fake: Sequence[torch.Tensor], outs_real: Sequence[torch.Tensor], gan_type: str = "lsgan"):
    """Discriminator loss summed over scales (official ``MsImageDis.calc_dis_loss``).

    lsgan: ``sum_s mean(D(fake)**2) + mean((D(real) - 1)**2)``; nsgan: ``sum_s mean(BCE(sigmoid(D(fake)), 0) +
    BCE(sigmoid(D(real)), 1))``. The nsgan form keeps sigmoid + ``binary_cross_entropy`` (not the logits
    variant) because that is what the official code evaluates, including BCE's clamp of log at -100
    (see :func:`bce_of_sigmoid`).
    """
    _check_gan_type(gan_type)
    loss = 0
    for out_fake, out_real in zip(outs_fake, outs_real, strict=True):
        if gan_type == "lsgan":
            loss = loss + torch.mean((out_fake - 0) ** 2) + torch.mean((out_real - 1) ** 2)
        else:
            loss = loss + torch.mean(bce_of_sigmoid(out_fake, 0.0) + bce_of_sigmoid(out_real, 1.0))
    return loss


def gen_adv_loss(outs_fake: Sequence[torch.Tensor], gan_type: str = "lsgan"):
    """Generator adversarial loss summed over scales (official ``MsImageDis.calc_gen_loss``)."""
    _check_gan_type(gan_type)
    loss = 0
    for out_fake in outs_fake:
        if gan_type == "lsgan":
            loss = loss + torch.mean((out_fake - 1) ** 2)
        else:
            loss = loss + torch.mean(bce_of_sigmoid(out_fake, 1.0))
    return loss


# VGG16 conv layers in order, with the index of each in torchvision's ``vgg16().features``.
_VGG_LAYERS = (
    ("conv1_1", 0), ("conv1_2", 2),
    ("conv2_1", 5), ("conv2_2", 7),
    ("conv3_1", 10), ("conv3_2", 12), ("conv3_3", 14),
    ("conv4_1", 17), ("conv4_2", 19), ("conv4_3", 21),
    ("conv5_1", 24), ("conv5_2", 26), ("conv5_3", 28),
)  # fmt: skip
# Max-pooling follows these layers in the official graph; note: none after conv4_3.
_VGG_POOL_AFTER = ("conv1_2", "conv2_2", "conv3_3")
# Caffe VGG16 channel means in BGR order (official ``utils.vgg_preprocess``).
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.680)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class Vgg16(nn.Module):
    """The official ``networks.Vgg16`` feature extractor: returns relu5_3.

    Parameter names ``conv1_1`` ... ``conv5_3`` match the official ``vgg16.weight`` file. Unlike torchvision's
    ``vgg16().features``, the official graph has **no max-pool between relu4_3 and conv5_1**, so relu5_3 is at
    1/8 of the input resolution; that graph is kept whichever weights are loaded.
    """

    def __init__(self) -> None:
        super().__init__()
        in_ch = 3
        for name, _ in _VGG_LAYERS:
            out_ch = {"1": 64, "2": 128, "3": 256}.get(name[4], 512)
            setattr(self, name, nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1))
            in_ch = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, _ in _VGG_LAYERS:
            x = F.relu(getattr(self, name)(x))
            if name in _VGG_POOL_AFTER:
                x = F.max_pool2d(x, kernel_size=2, stride=2)
        return x


def vgg_preprocess(batch: torch.Tensor, mode: str = "caffe") -> torch.Tensor:
    """Map generator-range images in [-1, 1] (RGB) to the VGG input the weights were trained with.

    ``caffe`` (official): RGB -> BGR, scale to [0, 255], subtract the caffe BGR means.
    ``torchvision``: [0, 1] RGB normalised with the ImageNet mean / std.
    """
    if mode == "caffe":
        r, g, b = torch.chunk(batch, 3, dim=1)
        batch = (torch.cat((b, g, r), dim=1) + 1) * 255 * 0.5
        return batch - batch.new_tensor(_CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    if mode == "torchvision":
        mean = batch.new_tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        std = batch.new_tensor(_IMAGENET_STD).view(1, 3, 1, 1)
        return ((batch + 1) * 0.5 - mean) / std
    raise ValueError(f"unsupported VGG input mode {mode!r}; valid choices: {', '.join(VGG_INPUT_MODES)}")


def load_vgg16(path: str) -> tuple[Vgg16, str]:
    """Build :class:`Vgg16` from a local weights file; return it (frozen, eval) and its input mode.

    Accepted formats, told apart by their keys:
    - the official ``vgg16.weight`` (a state_dict with ``conv1_1.weight`` ... ``conv5_3.bias``; caffe VGG16
      converted from ``vgg16.t7``) -> mode ``caffe``, bit-faithful to the official loss;
    - a torchvision VGG16 state_dict (``features.<i>.weight`` ..., e.g. ``vgg16-397923af.pth``; ``classifier.*``
      ignored) -> mode ``torchvision``. Not faithful: different weights and input normalisation, so loss values
      and training dynamics differ from the official runs.
    The file is never downloaded: a missing file is an error.
    """
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(
            f"VGG16 weights not found at {path!r}. The perceptual loss (vgg_w > 0) needs a local file passed with "
            "--vgg_weights: either the official UNIT 'vgg16.weight' (keys conv1_1.weight ...) or a torchvision "
            "VGG16 state_dict such as 'vgg16-397923af.pth' (keys features.0.weight ...). Nothing is downloaded."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    with torch.device("meta"):  # skip a throw-away random init of 14.7M weights; load_state_dict assigns
        vgg = Vgg16()
    if "conv1_1.weight" in state:
        vgg.load_state_dict(state, strict=True, assign=True)
        mode = "caffe"
    elif "features.0.weight" in state:
        mapped = {}
        for name, idx in _VGG_LAYERS:
            for suffix in ("weight", "bias"):
                key = f"features.{idx}.{suffix}"
                if key not in state:
                    raise KeyError(f"{path}: torchvision VGG16 state_dict lacks {key!r}")
                mapped[f"{name}.{suffix}"] = state[key]
        vgg.load_state_dict(mapped, strict=True, assign=True)
        mode = "torchvision"
    else:
        raise ValueError(
            f"{path}: unrecognised VGG16 weights (expected keys 'conv1_1.weight' of the official vgg16.weight "
            "or 'features.0.weight' of torchvision's vgg16)"
        )
    vgg.eval()
    vgg.requires_grad_(False)
    return vgg, mode


class PerceptualLoss(nn.Module):
    """Official ``compute_vgg_loss``: ``mean((IN(vgg(pre(img))) - IN(vgg(pre(target))))**2)`` with an
    affine-free InstanceNorm (eps 1e-5) on the relu5_3 features. UNIT applies it across domains, between
    x_ba and x_b (and x_ab and x_a), so it constrains content, not colour."""

    def __init__(self, vgg: Vgg16, mode: str = "caffe") -> None:
        super().__init__()
        if mode not in VGG_INPUT_MODES:
            raise ValueError(
                f"unsupported VGG input mode {mode!r}; valid choices: {', '.join(VGG_INPUT_MODES)}"
            )
        self.vgg = vgg
        self.mode = mode

    @classmethod
    def from_file(cls, path: str) -> PerceptualLoss:
        vgg, mode = load_vgg16(path)
        return cls(vgg, mode)

    def train(self, mode: bool = True) -> PerceptualLoss:
        # The VGG is a fixed feature extractor: keep it in eval mode whatever the owning model does.
        super().train(mode)
        self.vgg.eval()
        return self

    def forward(self, img: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        img_fea = self.vgg(vgg_preprocess(img, self.mode))
        target_fea = self.vgg(vgg_preprocess(target, self.mode))
        return torch.mean((F.instance_norm(img_fea) - F.instance_norm(target_fea)) ** 2)


__all__ = [
    "GAN_TYPES",
    "bce_of_sigmoid",
    "kl_loss",
    "recon_loss",
    "dis_loss",
    "gen_adv_loss",
    "Vgg16",
    "vgg_preprocess",
    "load_vgg16",
    "PerceptualLoss",
]
