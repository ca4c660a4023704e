"""BiSeNet face parser of zllrunning/face-parsing.PyTorch (19 CelebAMask-HQ classes), for enhanced-U-GAT-IT masks.

enhanced-U-GAT-IT (zheng-yuwei/enhanced-UGATIT ``faceseg/``) computes its segmentation masks online with this
network and the authors' checkpoint ``79999_iter.pth``, which neither repository ships. Here the network only
serves ``scripts/ugatit/make_face_masks.py``, which writes the masks to files once (``--mask_dir``).

Every module and parameter keeps the official name (``cp.resnet.layer1.0.conv1.weight``,
``cp.arm16.conv_atten.weight``, ``ffm.convblk.bn.running_mean``, ``conv_out16.conv_out.weight`` ...), so the
official checkpoint loads with ``strict=True``. Deliberate differences from the official code:

- nothing is downloaded: the official backbone fetches ImageNet ResNet-18 weights in its constructor, although
  the face-parsing checkpoint contains the trained backbone anyway; here the weights start at PyTorch's default
  initialisation and are meant to be replaced by :func:`load_bisenet`;
- the official ``SpatialPath`` is not built (the official BiSeNet never creates it either: the 1/8 ResNet
  feature stands in for it), nor the ``get_params`` optimiser helpers (training is out of scope).

BiSeNet(19): 13,300,416 parameters (191 state_dict entries with the BatchNorm buffers), equal to the official
model's; with the same weights the outputs are bit-identical to the official forward on the CPU.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Class index -> CelebAMask-HQ part, in the order of the official prepropess_data.py (0 = background).
FACE_PARTS: tuple[str, ...] = (
    "background",
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "eye_g",
    "l_ear",
    "r_ear",
    "ear_r",
    "nose",
    "mouth",
    "u_lip",
    "l_lip",
    "neck",
    "neck_l",
    "cloth",
    "hair",
    "hat",
)

# The official README's link to the pre-trained ``79999_iter.pth``.
WEIGHTS_PAGE = "https://drive.google.com/open?id=154JgKpzCPW82qINcVieuPH3fZ2e0P812"
WEIGHTS_REPO = "https://github.com/zllrunning/face-parsing.PyTorch"


class ConvBNReLU(nn.Module):
    """Bias-free conv, BatchNorm, ReLU (official ``ConvBNReLU``; attributes ``conv`` and ``bn``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def global_pool(x: Tensor) -> Tensor:
    """(B, C, 1, 1) mean over the whole map, as the official ``avg_pool2d(x, x.size()[2:])``."""
    return F.avg_pool2d(x, x.shape[2:])


class BasicBlock(nn.Module):
    """ResNet basic block of the official resnet.py: two 3x3 convs, a 1x1 conv + BN shortcut when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if in_ch != out_ch or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: Tensor) -> Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


class Resnet18(nn.Module):
    """ResNet-18 trunk without pooling head or fc; returns the 1/8, 1/16 and 1/32 feature maps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        widths = (64, 64, 128, 256, 512)
        for i in range(1, 5):
            stride = 1 if i == 1 else 2
            blocks = [BasicBlock(widths[i - 1], widths[i], stride), BasicBlock(widths[i], widths[i])]
            self.add_module(f"layer{i}", nn.Sequential(*blocks))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinementModule(nn.Module):
    """3x3 ConvBNReLU whose output is reweighted per channel by a sigmoid of its global average."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_ch, out_ch)
        self.conv_atten = nn.Conv2d(out_ch, out_ch, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(global_pool(feat))))


class ContextPath(nn.Module):
    """ResNet-18 with attention refinement at 1/16 and 1/32 plus a global context vector, merged top-down.

    Returns (1/8 ResNet feature, 128-channel context at 1/8, 128-channel context at 1/16).
    """

    def __init__(self) -> None:
        super().__init__()
        self.resnet = Resnet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, kernel_size=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        # The official code upsamples the 1x1 context with 'nearest' to the 1/32 size: a broadcast.
        context = self.conv_avg(global_pool(feat32))
        up32 = F.interpolate(self.arm32(feat32) + context, feat16.shape[2:], mode="nearest")
        up32 = self.conv_head32(up32)
        up16 = F.interpolate(self.arm16(feat16) + up32, feat8.shape[2:], mode="nearest")
        return feat8, self.conv_head16(up16), up32


class FeatureFusionModule(nn.Module):
    """Concatenate, 1x1 ConvBNReLU, then add a squeeze-excitation-weighted copy (reduction 4) of the result."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_ch, out_ch, kernel_size=1)
        self.conv1 = nn.Conv2d(out_ch, out_ch // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_ch // 4, out_ch, 1, bias=False)

    def forward(self, spatial: Tensor, context: Tensor) -> Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(global_pool(feat)))))
        return feat * atten + feat


class BiSeNetOutput(nn.Module):
    """3x3 ConvBNReLU then a bias-free 1x1 conv to class logits."""

    def __init__(self, in_ch: int, mid_ch: int, n_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_ch, mid_ch)
        self.conv_out = nn.Conv2d(mid_ch, n_classes, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """BiSeNet face parser (Yu et al., ECCV 2018) as trained by zllrunning/face-parsing.PyTorch.

    Args:
        n_classes: number of output classes; the official checkpoint has 19 (:data:`FACE_PARTS`).

    Input: ImageNet-normalised RGB, (B, 3, H, W); the checkpoint was trained at 512x512 (H, W multiples of 32
    keep the feature maps aligned). Output: class logits (B, n_classes, H, W), bilinearly upsampled with
    ``align_corners=True`` as in the official code; with ``with_aux`` also the two auxiliary heads' logits
    (from the 1/8 and 1/16 context features), in the official order (main, out16, out32).
    """

    def __init__(self, n_classes: int = len(FACE_PARTS)) -> None:
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, n_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, n_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, n_classes)

    def forward(self, x: Tensor, with_aux: bool = True) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        size = x.shape[2:]
        feat8, context8, context16 = self.cp(x)
        # The official model has no spatial path: the 1/8 ResNet feature takes its place in the fusion.
        heads = [(self.conv_out, self.ffm(feat8, context8))]
        if with_aux:
            heads += [(self.conv_out16, context8), (self.conv_out32, context16)]
        outs = tuple(
            F.interpolate(head(feat), size, mode="bilinear", align_corners=True) for head, feat in heads
        )
        return outs if with_aux else outs[0]


class FaceParserWeightsError(RuntimeError):
    """The face-parsing checkpoint is missing or is not a BiSeNet state_dict."""


def _brief(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_bisenet(path: str, n_classes: int = len(FACE_PARTS)) -> BiSeNet:
    """A :class:`BiSeNet` in eval mode on the CPU with the official checkpoint at ``path`` (``79999_iter.pth``).

    Accepts the official file (a plain state_dict) and state_dicts saved from a DataParallel/DDP wrapper
    (``module.`` prefix); BatchNorm ``num_batches_tracked`` counters may be absent. Raises :class:`FaceParserWeightsError` naming the download page when the file is
    missing, and the missing/unexpected keys when it is some other network's weights.
    """
    if not os.path.isfile(path):
        raise FaceParserWeightsError(
            f"face-parsing weights not found: {path}. Download the pre-trained BiSeNet '79999_iter.pth' from "
            f"{WEIGHTS_PAGE} (linked from the README of {WEIGHTS_REPO}) and pass its path with --weights"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and weights_only errors come in many types
        raise FaceParserWeightsError(f"cannot read {path} as a PyTorch state_dict: {err}") from err
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise FaceParserWeightsError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    net = BiSeNet(n_classes)
    expected = net.state_dict()
    # Files saved by PyTorch < 0.4.1 have no BatchNorm step counters; they do not affect inference.
    state = {**{k: v for k, v in expected.items() if k.endswith(".num_batches_tracked")}, **state}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        found = [f"missing keys: {_brief(missing)}"] if missing else []
        found += [f"unexpected keys: {_brief(unexpected)}"] if unexpected else []
        raise FaceParserWeightsError(f"{path} is not a BiSeNet face-parsing state_dict ({'; '.join(found)})")
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if state[k].shape != v.shape
    ]
    if wrong:
        raise FaceParserWeightsError(
            f"{path}: tensor shapes differ from BiSeNet({n_classes}) (file vs model): {_brief(wrong, 3)}"
        )
    net.load_state_dict(state, strict=True)
    return net.eval()
