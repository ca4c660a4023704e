"""Building blocks of the U-GAT-IT networks (official znxlwm/UGATIT-pytorch and the enhanced-U-GAT-IT fork).

Module names and ``nn.Sequential`` positions follow the official code, because they are the state_dict keys of
the official checkpoints (``conv_block.1.weight``, ``norm1.rho``, ``se.cSE.se.1.weight`` ...).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .adaptive_norms import ILN, AdaILN

__all__ = [
    "ChannelSELayer",
    "ChannelSpatialSELayer",
    "ResnetAdaILNBlock",
    "ResnetBlock",
    "SpatialSELayer",
    "class_activation",
    "upsampling_layers",
]


class ChannelSELayer(nn.Module):
    """Channel squeeze-excitation: GAP → 1×1 conv to max(C/reduction, 8) → ReLU → 1×1 conv → sigmoid, times x.

    The minimum hidden width of 8 is the fork's, so that narrow test networks still have a bottleneck.
    """

    def __init__(self, num_channels: int, reduction: int = 4, min_hidden: int = 8) -> None:
        super().__init__()
        hidden = max(num_channels // reduction, min_hidden)
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(num_channels, hidden, kernel_size=1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, num_channels, kernel_size=1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.se(x) * x


class SpatialSELayer(nn.Module):
    """Spatial squeeze-excitation: a 1×1 conv to one channel, sigmoid, times x."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_channels, 1, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.conv(x)) * x


class ChannelSpatialSELayer(nn.Module):
    """scSE (Roy et al., MICCAI 2018): the *sum* of channel and spatial SE, as the fork's ``use_se`` block."""

    def __init__(self, num_channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.cSE = ChannelSELayer(num_channels, reduction)
        self.sSE = SpatialSELayer(num_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.cSE(x) + self.sSE(x)


class ResnetBlock(nn.Module):
    """Encoder residual block: ``x + [pad, conv3, IN, ReLU, pad, conv3, IN, (scSE)](x)``.

    Args:
        dim: channels.
        use_bias: conv bias (False in both official and fork; IN removes it anyway).
        affine: learned IN scale/shift (False official, True in the fork: ``conv_block.{2,6}.weight/bias``).
        use_se: append scSE as ``conv_block.7`` (fork ``--use_se``).
    """

    def __init__(self, dim: int, use_bias: bool = False, affine: bool = False, use_se: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=0, bias=use_bias),
            nn.InstanceNorm2d(dim, affine=affine),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=0, bias=use_bias),
            nn.InstanceNorm2d(dim, affine=affine),
        ]
        if use_se:
            layers.append(ChannelSpatialSELayer(dim))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetAdaILNBlock(nn.Module):
    """Decoder residual block whose two norms are AdaILN driven by the generator's shared (γ, β).

    Args:
        dim: channels.
        use_bias: conv bias (official False, fork True).
        use_se: scSE on the residual branch before the addition, as ``se`` (fork).
        unbiased_var: AdaILN statistics, see ``adaptive_norms``.
        fused_norm: AdaILN through ``fused_instance_layer_norm``.
    """

    def __init__(
        self,
        dim: int,
        use_bias: bool = False,
        use_se: bool = False,
        unbiased_var: bool = True,
        fused_norm: bool = False,
    ) -> None:
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=0, bias=use_bias)
        self.norm1 = AdaILN(dim, unbiased_var=unbiased_var, fused=fused_norm)
        self.relu1 = nn.ReLU(True)
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=0, bias=use_bias)
        self.norm2 = AdaILN(dim, unbiased_var=unbiased_var, fused=fused_norm)
        self.se = ChannelSpatialSELayer(dim) if use_se else None

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), gamma, beta))
        out = self.norm2(self.conv2(self.pad2(out)), gamma, beta)
        if self.se is not None:
            out = self.se(out)
        return out + x


def upsampling_layers(
    ngf: int,
    n_downsampling: int,
    use_bias: bool,
    use_deconv: bool,
    unbiased_var: bool,
    fused_norm: bool = False,
) -> list[nn.Module]:
    """The decoder's ×2 steps from ``ngf·2^n`` down to ``ngf`` channels, each followed by ILN and ReLU.

    Default: nearest up-sampling, reflection pad 1, 3×3 conv (5 modules per step, so the official keys are
    ``UpBlock2.{2,7}``). ``use_deconv``: the fork's earlier ``ConvTranspose2d(k3, s2, p1, output_padding 1)``
    (3 modules per step, keys ``UpBlock2.{0,3}``), same parameter count.
    """
    layers: list[nn.Module] = []
    for i in range(n_downsampling):
        in_ch = ngf * 2 ** (n_downsampling - i)
        out_ch = in_ch // 2
        if use_deconv:
            layers.append(
                nn.ConvTranspose2d(
                    in_ch, out_ch, kernel_size=3, stride=2, padding=1, output_padding=1, bias=use_bias
                )
            )
        else:
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.ReflectionPad2d(1),
                nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=0, bias=use_bias),
            ]
        layers += [ILN(out_ch, unbiased_var=unbiased_var, fused=fused_norm), nn.ReLU(True)]
    return layers


def class_activation(
    x: Tensor,
    gap_fc: nn.Module,
    gmp_fc: nn.Module,
    cam_weight: Callable[[nn.Module], Tensor] | None,
    cam_x: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The CAM module shared by generator and discriminator (before their 1×1 conv).

    Auxiliary logits come from global-average- and global-max-pooled features through ``gap_fc``/``gmp_fc``;
    the features are then scaled per channel by each classifier's weight and concatenated (B, 2C, H, W).

    Args:
        x: features (B, C, H, W) that are weighted.
        gap_fc, gmp_fc: Linear(C → 1) classifiers (possibly spectral-normalised).
        cam_weight: ``fc -> (1, C)`` weight used for the scaling; it is called *after* the classifier ran, so
            a spectral-norm module already holds its normalised ``weight``. None: no scaling (fork
            ``--cam_D_attention`` passed), both halves are ``x``.
        cam_x: features the logits are computed from, if not ``x`` (fork's background-masked D input/features).
    Returns:
        ``(features (B, 2C, H, W), cam_logit (B, 2))``.
    """
    # Same op order as the official code (GAP logit, GAP scaling, then GMP): autograd then accumulates the
    # gradients of x in the same order, which keeps the backward pass bit-identical too.
    src = x if cam_x is None else cam_x
    gap_logit = gap_fc(F.adaptive_avg_pool2d(src, 1).flatten(1))
    gap = x if cam_weight is None else x * cam_weight(gap_fc)[:, :, None, None]
    gmp_logit = gmp_fc(F.adaptive_max_pool2d(src, 1).flatten(1))
    gmp = x if cam_weight is None else x * cam_weight(gmp_fc)[:, :, None, None]
    return torch.cat([gap, gmp], 1), torch.cat([gap_logit, gmp_logit], 1)
