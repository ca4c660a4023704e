"""PatchGAN and pixel discriminators with the official module indices, and their registry."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from .blocks import Downsample
from .init import init_weights
from .norms import get_norm_layer, norm_uses_bias


class NLayerDiscriminator(nn.Module):
    """PatchGAN: 4x4 convs, LeakyReLU(0.2), norm on all but the first and last conv (70x70 patches at 3 layers).

    ``antialias`` is CUT's layout: every stride-2 conv becomes a stride-1 conv, its activation (and norm), then
    ``Downsample``; keys ``model.0, .2.filt, .3, .6.filt, .7, .10.filt, .11, .14`` instead of CycleGAN's
    ``model.0, .2, .5, .8, .11``. Both give 30x30 maps at 256 px and 2x2 at 32 px.
    """

    def __init__(
        self,
        in_ch: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        antialias: bool = False,
    ) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)

        def down(c_in: int, c_out: int, normed: bool) -> list[nn.Module]:
            # The first conv has no norm and always a bias (official).
            conv = nn.Conv2d(c_in, c_out, 4, stride=1 if antialias else 2, padding=1, bias=bias or not normed)
            layers = [conv] + ([norm_layer(c_out)] if normed else []) + [nn.LeakyReLU(0.2, True)]
            return layers + ([Downsample(c_out)] if antialias else [])

        layers = down(in_ch, ndf, normed=False)
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += down(ndf * prev, ndf * mult, normed=True)
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias),
            norm_layer(ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PixelGAN: judges each pixel on its own (colour statistics only); keys ``net.<i>``."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, norm: str = "instance") -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, ndf, kernel_size=1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, kernel_size=1, bias=bias),
            norm_layer(2 * ndf),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 1, kernel_size=1, bias=bias),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


DiscriminatorBuilder = Callable[[int, int, int, str, bool], nn.Module]

# Builders take (in_ch, ndf, n_layers_D, norm, antialias); 'basic' is the 3-layer PatchGAN whatever n_layers_D says.
DISCRIMINATORS: dict[str, DiscriminatorBuilder] = {
    "basic": lambda in_ch, ndf, n_layers_D, norm, antialias: NLayerDiscriminator(
        in_ch, ndf, 3, norm, antialias
    ),
    "n_layers": lambda in_ch, ndf, n_layers_D, norm, antialias: NLayerDiscriminator(
        in_ch, ndf, n_layers_D, norm, antialias
    ),
    "pixel": lambda in_ch, ndf, n_layers_D, norm, antialias: PixelDiscriminator(in_ch, ndf, norm),
}


def build_discriminator(
    name: str,
    in_ch: int,
    ndf: int,
    n_layers_D: int,
    norm: str,
    init_type: str,
    init_gain: float,
    antialias: bool = False,
) -> nn.Module:
    """Build the registered discriminator ``name`` and initialise it (``init_weights``), like ``define_D``."""
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}; valid discriminators: {', '.join(DISCRIMINATORS)}")
    return init_weights(DISCRIMINATORS[name](in_ch, ndf, n_layers_D, norm, antialias), init_type, init_gain)


def min_size(name: str, n_layers_D: int = 3) -> int:
    """Smallest square input of discriminator ``name``, found by trying: a PatchGAN's ``n`` strided 4x4 convs
    and its two stride-1 ones leave ``side / 2**n - 2`` pixels, and the normalised one needs more than one, so
    ``3 * 2**n`` (24 for ``basic``); the 1x1 pixel D takes any size."""
    if name == "pixel":
        return 1
    return 3 * 2 ** (3 if name == "basic" else n_layers_D)
