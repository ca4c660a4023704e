"""LiSS networks (Schmidt et al. 2020): a CycleGAN ResNet generator cut in two, plus self-supervised heads.

``LiSSGenerator`` is a ``resnet_<n>blocks`` G split after half of its residual blocks: the first half is
the shared ``encoder`` and the second half the translation ``decoder``. Four auxiliary heads read the same
encoding: ``rotation`` (4-way classifier), ``jigsaw`` (64 permutations), ``depth`` (1-channel decoder, no
activation) and ``gray`` (colorisation decoder). ``RotationalNLayerDiscriminator`` is the PatchGAN with a
second, SSGAN-style rotation classifier on its shared trunk (``--D_rotation``).

Module names and indices follow vict0rsch/LiSS (``models/networks.py``), so the official ``*_net_G_A.pth`` and
``*_net_D_A.pth`` files load with ``strict=True``. A CycleGAN ``resnet_6blocks`` state_dict maps onto
``encoder.model`` + ``decoder`` with :func:`resnet_to_liss_keys`.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor, nn

from .discriminators import NLayerDiscriminator
from .generators import ResnetGenerator
from .norms import get_norm_layer, norm_uses_bias

__all__ = [
    "JIGSAW_PERMUTATIONS",
    "JIGSAW_SIZE",
    "LiSSEncoder",
    "LiSSGenerator",
    "RotationalNLayerDiscriminator",
    "TASK_HEADS",
    "classifier_map_size",
    "parse_tasks",
    "patch_map_size",
    "resnet_to_liss_keys",
]

#: The auxiliary heads, in the official task order (losses, optimizer groups and schedules follow it).
TASK_HEADS: tuple[str, ...] = ("rotation", "jigsaw", "depth", "gray")


def parse_tasks(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``--auxiliary_tasks`` ("rotation, gray, depth, jigsaw") as a tuple in the official order of TASK_HEADS.

    Names are stripped and de-duplicated; the official code sorts tasks by a fixed priority whatever the order
    given, and sequential schedules run them in that order. An empty string means no auxiliary task.
    """
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec)]
    names = [n for n in names if n]
    unknown = sorted(set(names) - set(TASK_HEADS))
    if unknown:
        raise ValueError(f"unknown auxiliary task(s) {', '.join(unknown)}; valid: {', '.join(TASK_HEADS)}")
    return tuple(t for t in TASK_HEADS if t in names)


#: Side of the square the jigsaw task crops before cutting it into 3x3 tiles (official, for 256-px crops).
JIGSAW_SIZE = 222

# The 64 tile permutations of the official jigsaw task (``jigsaw_permutations`` in the official
# ``data/base_dataset.py``). Row k is the permutation of class k: output tile j (row-major, j = 3r + c) is
# input tile ``row[j]``. The class indices of the official jigsaw heads refer to these rows: never change them.
JIGSAW_PERMUTATIONS: np.ndarray = np.array(
    [
        [3, 1, 7, 6, 8, 0, 4, 2, 5],
        [5, 2, 3, 4, 1, 0, 8, 7, 6],
        [2, 6, 7, 5, 0, 3, 4, 1, 8],
        [5, 7, 4, 6, 1, 8, 3, 2, 0],
        [2, 8, 7, 4, 5, 1, 0, 6, 3],
        [1, 8, 0, 5, 2, 6, 3, 7, 4],
        [3, 2, 1, 6, 7, 5, 4, 8, 0],
        [8, 5, 3, 7, 0, 6, 2, 1, 4],
        [4, 1, 5, 0, 7, 2, 8, 6, 3],
        [6, 8, 0, 3, 7, 2, 1, 4, 5],
        [1, 2, 5, 0, 6, 3, 8, 7, 4],
        [8, 6, 7, 1, 0, 5, 2, 3, 4],
        [4, 8, 6, 2, 1, 7, 5, 0, 3],
        [4, 6, 8, 1, 7, 2, 3, 5, 0],
        [6, 7, 4, 3, 8, 2, 0, 1, 5],
        [0, 5, 8, 4, 6, 1, 2, 3, 7],
        [0, 5, 7, 1, 4, 8, 6, 2, 3],
        [7, 8, 6, 5, 0, 3, 2, 4, 1],
        [5, 1, 4, 2, 3, 7, 6, 8, 0],
        [7, 3, 2, 1, 6, 5, 0, 4, 8],
        [1, 8, 7, 4, 6, 0, 5, 3, 2],
        [5, 7, 8, 1, 6, 3, 4, 0, 2],
        [0, 6, 1, 2, 8, 7, 5, 3, 4],
        [2, 4, 3, 6, 1, 5, 7, 0, 8],
        [4, 2, 8, 0, 1, 3, 7, 5, 6],
        [2, 4, 1, 3, 8, 0, 7, 5, 6],
        [7, 0, 2, 4, 1, 5, 3, 6, 8],
        [1, 6, 4, 7, 2, 3, 0, 5, 8],
        [1, 2, 4, 0, 7, 5, 8, 3, 6],
        [1, 2, 0, 7, 4, 8, 5, 3, 6],
        [0, 2, 6, 7, 4, 8, 5, 1, 3],
        [4, 0, 2, 8, 5, 6, 1, 7, 3],
        [0, 7, 5, 6, 8, 1, 3, 4, 2],
        [6, 0, 3, 2, 4, 1, 8, 5, 7],
        [7, 8, 2, 3, 6, 4, 0, 5, 1],
        [2, 3, 8, 4, 1, 7, 0, 6, 5],
        [7, 2, 1, 6, 5, 4, 0, 3, 8],
        [0, 6, 5, 8, 1, 2, 3, 4, 7],
        [3, 6, 1, 0, 8, 7, 2, 5, 4],
        [0, 1, 4, 8, 6, 5, 3, 7, 2],
        [0, 8, 1, 5, 3, 4, 2, 7, 6],
        [8, 4, 6, 3, 0, 2, 7, 1, 5],
        [7, 3, 4, 6, 5, 0, 2, 8, 1],
        [5, 2, 1, 7, 0, 6, 3, 4, 8],
        [6, 4, 5, 1, 2, 8, 3, 0, 7],
        [6, 2, 8, 1, 5, 4, 3, 0, 7],
        [0, 1, 3, 5, 8, 2, 7, 4, 6],
        [3, 2, 1, 4, 8, 6, 5, 0, 7],
        [1, 3, 0, 6, 2, 5, 8, 7, 4],
        [5, 0, 4, 2, 8, 6, 7, 3, 1],
        [1, 7, 0, 4, 8, 2, 5, 6, 3],
        [6, 3, 4, 7, 0, 8, 1, 5, 2],
        [8, 5, 4, 0, 6, 7, 1, 2, 3],
        [1, 2, 4, 3, 7, 5, 0, 8, 6],
        [5, 4, 8, 2, 3, 7, 1, 0, 6],
        [3, 7, 6, 5, 0, 8, 2, 1, 4],
        [3, 8, 2, 1, 5, 6, 4, 0, 7],
        [0, 2, 8, 6, 3, 7, 5, 1, 4],
        [6, 0, 2, 4, 8, 1, 3, 7, 5],
        [2, 8, 7, 5, 6, 1, 4, 0, 3],
        [3, 8, 2, 5, 0, 6, 7, 4, 1],
        [5, 0, 1, 2, 4, 7, 3, 6, 8],
        [0, 6, 7, 5, 1, 2, 4, 8, 3],
        [5, 8, 0, 6, 1, 2, 7, 4, 3],
    ],
    dtype=np.int64,
)
JIGSAW_PERMUTATIONS.setflags(write=False)


def _half(n: int) -> int:
    return -(-n // 2)


def classifier_map_size(image_size: int) -> int:
    """Side of the map the rotation/jigsaw heads flatten, for a square input of ``image_size`` pixels.

    Encoder: two stride-2 3x3 convs (ceil halvings); head: two more, a 2x2 max-pool (floor), one more. The
    official ``Linear(128*4*4)`` therefore needs crops in [209, 272] (256 for rotation, 222 for jigsaw).
    """
    side = _half(_half(_half(_half(image_size))))
    return _half(side // 2)


def patch_map_size(image_size: int, n_layers: int = 3) -> int:
    """Side of a PatchGAN output map: ``n_layers`` 4x4 stride-2 convs, two 4x4 stride-1 ones (30 at 256 px)."""
    side = image_size
    for _ in range(n_layers):
        side //= 2
    return side - 2


def _split_resnet(
    out_ch: int, ngf: int, n_blocks: int, norm: str, use_dropout: bool, padding_type: str, in_ch: int = 3
) -> tuple[list[nn.Module], list[nn.Module]]:
    """The layers of a CycleGAN ResnetGenerator before and after the middle of its residual blocks.

    Reusing the CycleGAN generator keeps LiSS's encoder + decoder equal to ``resnet_<n_blocks>blocks``, layer by
    layer (the official split: 10 stem layers and n/2 blocks, then n/2 blocks and the upsampling tail).
    """
    net = ResnetGenerator(
        in_ch=in_ch,
        out_ch=out_ch,
        ngf=ngf,
        n_blocks=n_blocks,
        norm=norm,
        use_dropout=use_dropout,
        padding_type=padding_type,
    )
    layers = list(net.model)
    cut = 10 + n_blocks // 2
    return layers[:cut], layers[cut:]


class LiSSEncoder(nn.Module):
    """The shared encoder: stem, two downsamplings and ``n_blocks // 2`` ResnetBlocks (keys ``model.<i>``)."""

    def __init__(
        self,
        in_ch: int = 3,
        ngf: int = 64,
        n_blocks: int = 6,
        norm: str = "instance",
        use_dropout: bool = False,
        padding_type: str = "reflect",
    ) -> None:
        super().__init__()
        front, _ = _split_resnet(3, ngf, n_blocks, norm, use_dropout, padding_type, in_ch=in_ch)
        self.model = nn.Sequential(*front)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def encode_luma(self, luma: Tensor) -> Tensor:
        """``forward`` of ``luma`` (N, 1, H, W) repeated on every input channel, as gray-task images are.

        The first conv reads the single channel with its weights summed over the input channels: the same
        maths as convolving the repeated image, with a third of that conv's work (the LiSS gray task).
        """
        pad, conv = self.model[0], self.model[1]
        x = conv._conv_forward(pad(luma), conv.weight.sum(1, keepdim=True), conv.bias)
        return self.model[2:](x)


def _decoder(
    out_ch: int, ngf: int, n_blocks: int, norm: str, use_dropout: bool, padding_type: str, tanh: bool
) -> nn.Sequential:
    _, back = _split_resnet(out_ch, ngf, n_blocks, norm, use_dropout, padding_type)
    # The official depth head regresses unbounded log inverse depth: it has no final activation.
    return nn.Sequential(*(back if tanh else back[:-1]))


def _classifier(in_ch: int, n_classes: int, norm: str, map_size: int, fix_head_norm: bool) -> nn.Sequential:
    """The rotation/jigsaw head: three stride-2 convs (fixed widths 256, 256, 128), a max-pool, a Linear.

    The widths do not scale with ngf (official). The third norm is built for 256 channels although its conv
    outputs 128 (official): fatal for BatchNorm, and PyTorch warns at every call of an InstanceNorm. The
    affine-free InstanceNorm has no parameters or statistics, so building it for its real 128 channels
    computes the same and keeps the state_dict; it is always built so. ``fix_head_norm`` does the same
    for the other norms (BatchNorm's statistics then have 128 entries, unlike the official files).
    """
    norm_layer = get_norm_layer(norm)
    bias = norm_uses_bias(norm)
    return nn.Sequential(
        nn.Conv2d(in_ch, 256, 3, stride=2, padding=1),  # the official first conv always has a bias
        norm_layer(256),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(256, 256, 3, stride=2, padding=1, bias=bias),
        norm_layer(256),
        nn.LeakyReLU(0.2, True),
        nn.MaxPool2d(2),
        nn.Conv2d(256, 128, 3, stride=2, padding=1, bias=bias),
        norm_layer(128 if fix_head_norm or norm == "instance" else 256),
        nn.LeakyReLU(0.2, True),
        nn.Flatten(1),
        nn.Linear(128 * map_size * map_size, n_classes),
    )


class LiSSGenerator(nn.Module):
    """A LiSS generator: ``forward(x) = decoder(encoder(x))``; the task heads are called by the model.

    Args:
        in_ch: input image channels.
        out_ch: channels of the translation (and gray) output.
        ngf: width of the first conv; the trunk is that of CycleGAN's ResnetGenerator.
        n_blocks: residual blocks in encoder + decoder together (official: 6, split 3 + 3); must be even.
        norm: ``instance`` (official), ``batch`` (needs ``fix_head_norm``) or ``none``.
        use_dropout: Dropout(0.5) in the residual blocks (LiSS: off).
        padding_type: residual-block padding.
        head_map_size: side of the rotation/jigsaw heads' last map, :func:`classifier_map_size` of the crop
            they see (official: 4, i.e. 256-px rotation crops and 222-px jigsaw crops).
        fix_head_norm: build the heads' last norm for its real 128 channels (see ``_classifier``).

    Every head always exists, whatever tasks are trained, so checkpoints keep one layout (official).
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        ngf: int = 64,
        n_blocks: int = 6,
        norm: str = "instance",
        use_dropout: bool = False,
        padding_type: str = "reflect",
        head_map_size: int = 4,
        fix_head_norm: bool = False,
    ) -> None:
        super().__init__()
        if n_blocks < 0 or n_blocks % 2:
            raise ValueError(f"n_blocks must be even and >= 0 (half encoder, half decoder), got {n_blocks}")
        if norm == "batch" and not fix_head_norm:
            raise ValueError(
                "the official LiSS heads apply a 256-channel norm to 128 channels, which BatchNorm rejects: "
                "use norm 'instance' or fix_head_norm=True (--liss_fix_head_norm)"
            )
        trunk = dict(
            ngf=ngf, n_blocks=n_blocks, norm=norm, use_dropout=use_dropout, padding_type=padding_type
        )
        self.encoder = LiSSEncoder(in_ch=in_ch, **trunk)
        self.decoder = _decoder(out_ch, tanh=True, **trunk)
        self.depth = _decoder(1, tanh=False, **trunk)
        self._head_args = (4 * ngf, norm, fix_head_norm)
        self.head_map_size = 0
        self.set_head_map_size(head_map_size)
        self.gray = _decoder(3, tanh=True, **trunk)  # registered last, as in the official module order

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))

    def set_head_map_size(self, head_map_size: int) -> None:
        """(Re)build the rotation/jigsaw heads for another crop size (fresh weights; a no-op if unchanged).

        Inference only needs the translation decoder, but a checkpoint trained at another crop size must still
        load strictly: loaders call this with the size read from the file's ``rotation.11.weight``.
        """
        if head_map_size == self.head_map_size:
            return
        in_ch, norm, fix_head_norm = self._head_args
        device = self.encoder.model[1].weight.device
        self.rotation = _classifier(in_ch, 4, norm, head_map_size, fix_head_norm).to(device)
        self.jigsaw = _classifier(in_ch, len(JIGSAW_PERMUTATIONS), norm, head_map_size, fix_head_norm).to(
            device
        )
        self.head_map_size = head_map_size


class RotationalNLayerDiscriminator(nn.Module):
    """PatchGAN ``shared`` trunk with a ``gan`` patch head and a 5-way ``rotation`` head (SSGAN-style).

    ``forward(input=None, rotation=None)`` gives ``(gan(shared(input)), rotation(shared(rotation)))``, either
    None when its input is None. Rotation classes 0-3 are the quarter turns, 4 marks a generated image
    (``--D_rotation``). The rotation head exists even when unused, as in the official files.

    Args:
        in_ch, ndf, n_layers, norm: as the CycleGAN ``NLayerDiscriminator`` (``shared`` = its layers
            ``model.0``-``model.10``, ``gan`` = ``model.11``).
        rotation_map_size: side of the patch map the rotation head flattens, :func:`patch_map_size` of the
            crop (official ``Linear(30*30, 5)``: 256-px crops only).
    """

    def __init__(
        self,
        in_ch: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        rotation_map_size: int = 30,
    ) -> None:
        super().__init__()
        layers = list(NLayerDiscriminator(in_ch=in_ch, ndf=ndf, n_layers=n_layers, norm=norm).model)
        self.shared = nn.Sequential(*layers[:-1])
        self.gan = layers[-1]
        width = layers[-1].in_channels
        self.rotation = nn.Sequential(
            nn.Conv2d(width, 1, 4, stride=1, padding=1),
            get_norm_layer(norm)(1),
            nn.LeakyReLU(0.2, True),
            nn.Flatten(1),
            nn.Linear(rotation_map_size * rotation_map_size, 5),
        )

    def forward(
        self, input: Tensor | None = None, rotation: Tensor | None = None
    ) -> tuple[Tensor | None, ...]:
        if input is None and rotation is None:
            raise ValueError("RotationalNLayerDiscriminator needs `input`, `rotation` or both")
        gan = self.gan(self.shared(input)) if input is not None else None
        rot = self.rotation(self.shared(rotation)) if rotation is not None else None
        return gan, rot


def resnet_to_liss_keys(state_dict: dict[str, Tensor], n_blocks: int = 6) -> dict[str, Tensor]:
    """Rename a CycleGAN ``resnet_<n_blocks>blocks`` G state_dict to LiSS ``encoder.model.*``/``decoder.*`` keys.

    ``model.i`` with i < 10 + n_blocks/2 becomes ``encoder.model.i``, later layers ``decoder.<i - cut>``
    (``resnet_6blocks``: model.13-15 -> decoder.0-2, model.16 -> decoder.3, .19 -> .6, .23 -> .10). Task heads
    are not in such a file: load the result with ``strict=False`` and keep their own initialisation.
    """
    cut = 10 + n_blocks // 2
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        head, _, rest = key.partition(".")
        index, _, tail = rest.partition(".")
        if head != "model" or not index.isdigit():
            raise ValueError(f"not a CycleGAN ResnetGenerator key: {key!r}")
        i = int(index)
        out[f"encoder.model.{i}.{tail}" if i < cut else f"decoder.{i - cut}.{tail}"] = value
    return out


def depth_panel(depth: Tensor) -> Tensor:
    """Min-max normalise each depth map to [-1, 1], repeated on 3 channels, for display (official eval)."""
    flat = depth.flatten(1)
    lo, hi = flat.min(1).values.view(-1, 1, 1, 1), flat.max(1).values.view(-1, 1, 1, 1)
    return ((depth - lo) / (hi - lo).clamp_min(1e-12) * 2 - 1).repeat(1, 3, 1, 1)
