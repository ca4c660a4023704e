"""UNIT networks (Liu, Breuel & Kautz, NIPS 2017), laid out as the official mingyuliutw/UNIT master code.

Module and parameter names follow the official ``networks.py`` so that ``gen_%08d.pt`` / ``dis_%08d.pt`` files
load with ``strict=True``: a generator is ``VAEGen`` with ``enc`` (``ContentEncoder``) and ``dec`` (``Decoder``), a
discriminator is ``MsImageDis`` with ``cnns.<scale>.<layer>``, every conv sits in a ``Conv2dBlock`` whose
submodules are registered in the official order ``pad``, ``norm``, ``activation``, ``conv`` (so that the norm's
``gamma``/``beta`` precede ``conv.weight``/``conv.bias`` in ``named_parameters()``, which the positional Adam state
of an official ``optimizer.pt`` relies on).

The paper's weight sharing (the NIPS'17 ``version_02`` code shares the last encoder block and the first decoder
block between the two domains; master shares nothing) is available through :func:`share_blocks`, which makes the
selected ResBlocks of ``gen_b`` the very same module objects as those of ``gen_a``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from .blocks import _pad_layer

PAD_TYPES = ("reflect", "replicate", "zero")
NORM_TYPES = ("none", "bn", "in", "ln")
ACTIVATIONS = ("relu", "lrelu", "prelu", "selu", "tanh", "none")
INIT_TYPES = ("gaussian", "kaiming", "xavier", "orthogonal", "default")


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"unsupported {what} {value!r}; valid choices: {', '.join(choices)}")
    return value


class LayerNorm(nn.Module):
    """The official UNIT/MUNIT layer norm (decoder upsampling blocks).

    Per sample, over all C*H*W elements: ``y = (x - mean) / (std + eps)`` with the **unbiased** (N-1) standard
    deviation and ``eps`` added to the std, outside the square root; then a per-channel affine ``gamma``, ``beta``.
    This differs numerically from ``nn.LayerNorm`` / ``nn.GroupNorm(1, C)`` (biased variance, eps inside the sqrt),
    so it is reproduced as is. ``gamma`` starts as U(0, 1) like the official ``Tensor(C).uniform_()``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.affine = affine
        if affine:
            self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
            self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [-1] + [1] * (x.dim() - 1)
        if x.size(0) == 1:  # reduced as the official code does, so that results match it bit for bit
            mean, std = x.reshape(-1).mean().view(*shape), x.reshape(-1).std().view(*shape)
        else:  # torch.std is unbiased (N - 1), as in the official code
            mean = x.reshape(x.size(0), -1).mean(1).view(*shape)
            std = x.reshape(x.size(0), -1).std(1).view(*shape)
        x = (x - mean) / (std + self.eps)
        if self.affine:
            affine_shape = [1, -1] + [1] * (x.dim() - 2)
            x = x * self.gamma.view(*affine_shape) + self.beta.view(*affine_shape)
        return x

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}"


def make_norm(norm: str, num_features: int) -> nn.Module | None:
    """Normalisation layer by official name: ``bn``, ``in`` (affine-free InstanceNorm2d), ``ln``, ``none``."""
    _choice(norm, NORM_TYPES, "normalization")
    if norm == "bn":
        return nn.BatchNorm2d(num_features)
    if norm == "in":
        return nn.InstanceNorm2d(num_features)
    if norm == "ln":
        return LayerNorm(num_features)
    return None


def make_activation(activation: str) -> nn.Module | None:
    """Activation by official name; ``lrelu`` has slope 0.2 (the official constant)."""
    _choice(activation, ACTIVATIONS, "activation")
    if activation == "relu":
        return nn.ReLU()
    if activation == "lrelu":
        return nn.LeakyReLU(0.2)
    if activation == "prelu":
        return nn.PReLU()
    if activation == "selu":
        return nn.SELU()
    if activation == "tanh":
        return nn.Tanh()
    return None


def make_padding(pad_type: str, padding: int) -> nn.Module:
    _choice(pad_type, PAD_TYPES, "padding type")
    return _pad_layer(pad_type)(padding)


class Conv2dBlock(nn.Module):
    """pad -> Conv2d (always with bias, as the official, even before InstanceNorm) -> norm -> activation."""

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        kernel_size: int,
        stride: int,
        padding: int = 0,
        norm: str = "none",
        activation: str = "relu",
        pad_type: str = "zero",
    ) -> None:
        super().__init__()
        # Registration order pad, norm, activation, conv is the official one; it fixes the parameter order.
        self.pad = make_padding(pad_type, padding)
        self.norm = make_norm(norm, output_dim)
        self.activation = make_activation(activation)
        self.conv = nn.Conv2d(input_dim, output_dim, kernel_size, stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class ResBlock(nn.Module):
    """x + [conv3x3 -> norm -> act -> conv3x3 -> norm](x); no activation after the sum (official)."""

    def __init__(self, dim: int, norm: str = "in", activation: str = "relu", pad_type: str = "zero") -> None:
        super().__init__()
        self.model = nn.Sequential(
            Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activation=activation, pad_type=pad_type),
            Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activation="none", pad_type=pad_type),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.model(x)


class ResBlocks(nn.Module):
    """``num_blocks`` ResBlocks under ``model.<i>`` (the official key layout)."""

    def __init__(
        self, num_blocks: int, dim: int, norm: str = "in", activation: str = "relu", pad_type: str = "zero"
    ) -> None:
        super().__init__()
        self.model = nn.Sequential(
            *[ResBlock(dim, norm=norm, activation=activation, pad_type=pad_type) for _ in range(num_blocks)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ContentEncoder(nn.Module):
    """7x7 conv, ``n_downsample`` 4x4 stride-2 convs (width doubles), then ``n_res`` ResBlocks.

    The output is the posterior mean h (no final norm or activation); ``output_dim = dim * 2**n_downsample``.
    """

    def __init__(
        self,
        n_downsample: int = 2,
        n_res: int = 4,
        input_dim: int = 3,
        dim: int = 64,
        norm: str = "in",
        activ: str = "relu",
        pad_type: str = "reflect",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            Conv2dBlock(input_dim, dim, 7, 1, 3, norm=norm, activation=activ, pad_type=pad_type)
        ]
        for _ in range(n_downsample):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, norm=norm, activation=activ, pad_type=pad_type))
            dim *= 2
        layers.append(ResBlocks(n_res, dim, norm=norm, activation=activ, pad_type=pad_type))
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    """``n_res`` ResBlocks, then ``n_upsample`` x [nearest x2, 5x5 conv halving the width, LayerNorm, act],
    then a 7x7 conv to ``output_dim`` with tanh (keys ``model.0`` ... ``model.<2*n_upsample+1>``)."""

    def __init__(
        self,
        n_upsample: int = 2,
        n_res: int = 4,
        dim: int = 256,
        output_dim: int = 3,
        res_norm: str = "in",
        activ: str = "relu",
        pad_type: str = "reflect",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(n_res, dim, norm=res_norm, activation=activ, pad_type=pad_type)]
        for _ in range(n_upsample):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            layers.append(Conv2dBlock(dim, dim // 2, 5, 1, 2, norm="ln", activation=activ, pad_type=pad_type))
            dim //= 2
        layers.append(
            Conv2dBlock(dim, output_dim, 7, 1, 3, norm="none", activation="tanh", pad_type=pad_type)
        )
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class VAEGen(nn.Module):
    """One domain's VAE: ``enc`` maps an image to the latent mean h, ``dec`` maps a latent back to an image.

    The official "reduced VAE" has a unit-variance Gaussian posterior N(h, I): no sigma head, the sample is
    ``h + n`` with ``n ~ N(0, I)``. Unlike the official ``encode``, which always draws (and usually discards) ``n``
    on the GPU, noise here is drawn only where it is used and with ``torch.randn_like`` (any device); callers that
    need the official draws pass ``noise`` explicitly.
    """

    def __init__(
        self,
        input_dim: int = 3,
        dim: int = 64,
        n_downsample: int = 2,
        n_res: int = 4,
        activ: str = "relu",
        pad_type: str = "reflect",
    ) -> None:
        super().__init__()
        self.enc = ContentEncoder(n_downsample, n_res, input_dim, dim, "in", activ, pad_type=pad_type)
        self.dec = Decoder(
            n_downsample, n_res, self.enc.output_dim, input_dim, res_norm="in", activ=activ, pad_type=pad_type
        )

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Posterior mean h of shape (B, dim * 2**n_downsample, H / 2**n_downsample, W / 2**n_downsample)."""
        return self.enc(images)

    def decode(self, hiddens: torch.Tensor) -> torch.Tensor:
        return self.dec(hiddens)

    def forward(
        self, images: torch.Tensor, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction and h; in training mode the decoder sees ``h + noise`` (drawn if not given), in eval h."""
        hiddens = self.encode(images)
        if self.training:
            hiddens_sample = hiddens + (torch.randn_like(hiddens) if noise is None else noise)
        else:
            hiddens_sample = hiddens
        return self.decode(hiddens_sample), hiddens


class MsImageDis(nn.Module):
    """Multi-scale PatchGAN: ``num_scales`` independent nets ``cnns.<s>``, scale s+1 sees the input average-pooled
    (3x3, stride 2, pad 1, padding excluded from the average). Each net: ``n_layer`` 4x4 stride-2 Conv2dBlocks
    (no norm on the first) doubling the width from ``dim``, then a bare 1x1 conv to one channel (key
    ``cnns.<s>.<n_layer>``). Returns the list of raw (no sigmoid) maps, finest first."""

    def __init__(
        self,
        input_dim: int = 3,
        dim: int = 64,
        n_layer: int = 4,
        num_scales: int = 3,
        norm: str = "none",
        activ: str = "lrelu",
        pad_type: str = "reflect",
    ) -> None:
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.cnns = nn.ModuleList(
            [self._make_net(input_dim, dim, n_layer, norm, activ, pad_type) for _ in range(num_scales)]
        )

    @staticmethod
    def _make_net(
        input_dim: int, dim: int, n_layer: int, norm: str, activ: str, pad_type: str
    ) -> nn.Sequential:
        layers: list[nn.Module] = [
            Conv2dBlock(input_dim, dim, 4, 2, 1, norm="none", activation=activ, pad_type=pad_type)
        ]
        for _ in range(n_layer - 1):
            layers.append(Conv2dBlock(dim, dim * 2, 4, 2, 1, norm=norm, activation=activ, pad_type=pad_type))
            dim *= 2
        layers.append(nn.Conv2d(dim, 1, 1, 1, 0))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for net in self.cnns:
            outputs.append(net(x))
            x = self.downsample(x)
        return outputs


def weights_init(init_type: str = "gaussian") -> Callable[[nn.Module], None]:
    """The official ``utils.weights_init``, for ``module.apply``: re-initialise conv / linear weights, zero biases.

    ``kaiming`` = kaiming_normal_(a=0, fan_in), i.e. N(0, 2 / fan_in); ``gaussian`` = N(0, 0.02); ``xavier`` and
    ``orthogonal`` use gain sqrt(2); ``default`` keeps PyTorch's init but still zeroes the biases. Norm layers
    (LayerNorm gamma ~ U(0, 1)) are untouched. The official trainer applies ``init`` to gen_a, gen_b, dis_a,
    dis_b (in that order) and then re-initialises both discriminators with ``gaussian``.
    """
    _choice(init_type, INIT_TYPES, "initialization")

    def init_fun(m: nn.Module) -> None:
        if not isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            return
        if init_type == "gaussian":
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif init_type == "xavier":
            nn.init.xavier_normal_(m.weight, gain=math.sqrt(2))
        elif init_type == "kaiming":
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
        elif init_type == "orthogonal":
            nn.init.orthogonal_(m.weight, gain=math.sqrt(2))
        if m.bias is not None:
            nn.init.constant_(m.bias, 0.0)

    return init_fun


def share_blocks(gen_a: VAEGen, gen_b: VAEGen, enc_blocks: int = 0, dec_blocks: int = 0) -> None:
    """Tie the last ``enc_blocks`` encoder ResBlocks and the first ``dec_blocks`` decoder ResBlocks.

    This is the shared high-level latent of the paper (version_02 ``enc_shared`` / ``dec_shared``, one ResBlock
    each): ``gen_b``'s blocks are replaced by ``gen_a``'s module objects, so both state_dicts keep the official
    key layout and hold the same tensors. Optimisers must then be built over unique parameters
    (:func:`unique_parameters`), else Adam would step the shared tensors twice per iteration.
    """
    enc_a, enc_b = gen_a.enc.model[-1].model, gen_b.enc.model[-1].model
    dec_a, dec_b = gen_a.dec.model[0].model, gen_b.dec.model[0].model
    if not 0 <= enc_blocks <= len(enc_a) or not 0 <= dec_blocks <= len(dec_a):
        raise ValueError(
            f"can share at most {len(enc_a)} encoder and {len(dec_a)} decoder ResBlocks, "
            f"got enc_blocks={enc_blocks}, dec_blocks={dec_blocks}"
        )
    for i in range(len(enc_a) - enc_blocks, len(enc_a)):
        enc_b[i] = enc_a[i]
    for i in range(dec_blocks):
        dec_b[i] = dec_a[i]


def unique_parameters(modules: Iterable[nn.Module]) -> list[nn.Parameter]:
    """Parameters of several modules in order (first occurrence wins), each tensor once."""
    seen: set[int] = set()
    params = []
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params


def latent_shape(h: int, w: int, dim: int = 64, n_downsample: int = 2) -> tuple[int, int, int]:
    """(C, H, W) of the latent for an H x W input; H and W must be divisible by 2**n_downsample, else the
    reconstruction would not match the input size (the official code fails later with a size mismatch)."""
    f = 2**n_downsample
    if h % f or w % f:
        raise ValueError(f"image size {h}x{w} must be divisible by 2**n_downsample = {f}")
    return dim * f, h // f, w // f


__all__ = [
    "LayerNorm",
    "Conv2dBlock",
    "ResBlock",
    "ResBlocks",
    "ContentEncoder",
    "Decoder",
    "VAEGen",
    "MsImageDis",
    "weights_init",
    "share_blocks",
    "unique_parameters",
    "latent_shape",
]
