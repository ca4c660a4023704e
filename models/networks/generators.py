"""CycleGAN/CUT generators (ResNet and U-Net) with the official module indices, and their registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .blocks import Downsample, ResnetBlock, Upsample
from .init import init_weights
from .norms import get_norm_layer, norm_uses_bias


class ResnetGenerator(nn.Module):
    """Johnson-style ResNet generator: c7s1-ngf, two downsamplings, ``n_blocks`` ResnetBlocks, two upsamplings.

    ``antialias=False, antialias_up=False`` is the CycleGAN layout (28 modules for 9 blocks): stride-2 convs
    down, ConvTranspose up. CUT's default layout (32 modules) replaces each stride-2 conv by a stride-1 conv
    followed by ``Downsample`` (``antialias``) and each ConvTranspose by ``Upsample`` + 3x3 conv
    (``antialias_up``). Indices of ``self.model`` equal the official ones, so NCE layer ids and state_dict keys
    (``model.<i>...``) carry over.
    """

    #: what ``--compile`` compiles besides ``forward``: CUT's training step runs G through ``encode``
    compile_methods = ("encode",)

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        use_dropout: bool = False,
        padding_type: str = "reflect",
        antialias: bool = False,
        antialias_up: bool = False,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_ch, ngf, kernel_size=7, bias=bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        for c in (ngf, 2 * ngf):
            # CUT's antialiased layout convolves at full resolution and lets the blur do the striding.
            stride = 1 if antialias else 2
            layers += [
                nn.Conv2d(c, 2 * c, 3, stride=stride, padding=1, bias=bias),
                norm_layer(2 * c),
                nn.ReLU(True),
            ]
            if antialias:
                layers.append(Downsample(2 * c))
        layers += [ResnetBlock(4 * ngf, padding_type, norm, use_dropout, bias) for _ in range(n_blocks)]
        for c in (4 * ngf, 2 * ngf):
            if antialias_up:
                layers += [Upsample(c), nn.Conv2d(c, c // 2, 3, stride=1, padding=1, bias=bias)]
            else:
                layers.append(
                    nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)
                )
            layers += [norm_layer(c // 2), nn.ReLU(True)]
        # The last conv always has a bias, whatever the norm (official).
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, kernel_size=7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def encode(self, x: Tensor, layers: list[int], stop_early: bool = True) -> list[Tensor]:
        """Outputs of ``self.model[i]`` for each ``i`` in ``layers``, in the order given (CUT's NCE taps).

        With ``stop_early`` the pass stops after the highest tapped index (CUT's ``encode_only``); without it the
        whole net runs. Tapping ``len(self.model) - 1`` yields the image, so one pass can give both the
        translation and its features (SRUNIT). A tap followed by an in-place ReLU is cloned so the returned
        feature is the tapped module's output, not the activation's.
        """
        n = len(self.model)
        if not layers or any(not 0 <= i < n for i in layers):
            raise ValueError(f"layers must be non-empty indices in [0, {n}), got {layers}")
        last = max(layers) if stop_early else n - 1
        taps: dict[int, Tensor] = {}
        feat = x
        for i in range(last + 1):
            feat = self.model[i](feat)
            if i in layers:
                next_inplace = i < last and getattr(self.model[i + 1], "inplace", False)
                taps[i] = feat.clone() if next_inplace else feat
        return [taps[i] for i in layers]


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: ``x -> cat(x, up(sub(down(x))))`` (the outermost level returns ``up(...)`` alone).

    Nested blocks give the official keys ``model.model.1.model.3...``.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        if not innermost and submodule is None:
            raise ValueError("only the innermost U-Net block may have no submodule")
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        if outermost:
            up_conv = nn.ConvTranspose2d(2 * inner_nc, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [down_conv, submodule, nn.ReLU(True), up_conv, nn.Tanh()]
        elif innermost:
            up_conv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), up_conv, norm_layer(outer_nc)]
        else:
            up_conv = nn.ConvTranspose2d(
                2 * inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias
            )
            layers = [nn.LeakyReLU(0.2, True), down_conv, norm_layer(inner_nc), submodule]
            layers += [nn.ReLU(True), up_conv, norm_layer(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        # The inner block's first LeakyReLU is in-place, so the skip half carries LeakyReLU(x), as officially.
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net generator with ``num_downs`` halvings (unet_128: 7, unet_256: 8); H, W must be multiples of 2**num_downs."""

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        block = UnetSkipConnectionBlock(8 * ngf, 8 * ngf, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                8 * ngf, 8 * ngf, submodule=block, norm=norm, use_dropout=use_dropout
            )
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(mult * ngf, 2 * mult * ngf, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            out_ch, ngf, input_nc=in_ch, submodule=block, outermost=True, norm=norm
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class GeneratorEntry(NamedTuple):
    """A registered generator: ``build(in_ch, out_ch, ngf, norm, use_dropout, antialias, antialias_up)``."""

    build: Callable[[int, int, int, str, bool, bool, bool], nn.Module]
    size_multiple: int  # H and W must be multiples of this for the output to match the input size


def _resnet(n_blocks: int) -> GeneratorEntry:
    def build(in_ch, out_ch, ngf, norm, use_dropout, antialias, antialias_up):
        return ResnetGenerator(
            in_ch, out_ch, ngf, n_blocks, norm, use_dropout, antialias=antialias, antialias_up=antialias_up
        )

    return GeneratorEntry(build, 4)


def _unet(num_downs: int) -> GeneratorEntry:
    def build(in_ch, out_ch, ngf, norm, use_dropout, antialias, antialias_up):
        # The CUT repo ignores the antialias flags for U-Nets; so do we.
        return UnetGenerator(in_ch, out_ch, num_downs, ngf, norm, use_dropout)

    return GeneratorEntry(build, 2**num_downs)


GENERATORS: dict[str, GeneratorEntry] = {
    "resnet_9blocks": _resnet(9),
    "resnet_6blocks": _resnet(6),
    "unet_128": _unet(7),
    "unet_256": _unet(8),
}


def _entry(name: str) -> GeneratorEntry:
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; valid generators: {', '.join(GENERATORS)}")
    return GENERATORS[name]


def build_generator(
    name: str,
    in_ch: int,
    out_ch: int,
    ngf: int,
    norm: str,
    use_dropout: bool,
    init_type: str,
    init_gain: float,
    antialias: bool = False,
    antialias_up: bool = False,
) -> nn.Module:
    """Build the registered generator ``name`` and initialise it (``init_weights``), like ``define_G``."""
    net = _entry(name).build(in_ch, out_ch, ngf, norm, use_dropout, antialias, antialias_up)
    return init_weights(net, init_type, init_gain)


def size_multiple(name: str) -> int:
    """The factor H and W must be multiples of (4 for ResNets, 2**num_downs for U-Nets); test-time padding."""
    return _entry(name).size_multiple


def min_size(name: str) -> int:
    """Smallest square input of generator ``name``, found by trying: a U-Net needs one size multiple (its
    innermost map is 1 x 1), a ResNet two (its bottleneck InstanceNorm needs more than one pixel)."""
    multiple = size_multiple(name)
    return multiple if name.startswith("unet") else 2 * multiple
