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
import torch.nn.functional as F
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
        # True: normalise with _LayerNormFunction, which keeps one tensor for the backward pass instead of three
        # (same maths, other float rounding); False: the official op sequence, bit for bit.
        self.fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [-1] + [1] * (x.dim() - 1)
        if self.fused:
            x = _LayerNormFunction.apply(x, self.eps)
        else:
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


class _LayerNormFunction(torch.autograd.Function):
    """y = (x - mean) / (std + eps) per sample (unbiased std), storing only y, std and std + eps.

    Autograd through the official op sequence stores x (for std), x - mean and y. With d = std + eps and N
    elements per sample, dL/dx = (g - mean(g)) / d - y * sum(g * y) / ((N - 1) * std).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float) -> torch.Tensor:
        flat = x.reshape(x.size(0), -1)
        std, mean = torch.std_mean(flat, dim=1, keepdim=True)  # unbiased, as the official torch.std
        denom = std + eps
        y = ((flat - mean) / denom).view_as(x)
        ctx.save_for_backward(y, std, denom)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        y, std, denom = ctx.saved_tensors
        g, yf = grad.reshape(grad.size(0), -1), y.reshape(y.size(0), -1)
        n = yf.size(1)
        dx = (g - g.mean(1, keepdim=True)) / denom - yf * ((g * yf).sum(1, keepdim=True) / ((n - 1) * std))
        return dx.view_as(grad), None


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
        self.pad_type = pad_type
        # Registration order pad, norm, activation, conv is the official one; it fixes the parameter order.
        self.pad = make_padding(pad_type, padding)
        self.norm = make_norm(norm, output_dim)
        self.activation = make_activation(activation)
        self.conv = nn.Conv2d(input_dim, output_dim, kernel_size, stride, bias=True)

    def forward(self, x: torch.Tensor, upsampled: bool = False) -> torch.Tensor:
        """``upsampled=True``: the block applied to ``x`` after a nearest x2 upsampling, computed by
        :func:`upsample_conv5x5` where it applies (same maths in fewer operations)."""
        conv = self.conv
        if not upsampled:
            x = conv(self.pad(x))
        elif conv.kernel_size == (5, 5) and conv.stride == (1, 1) and self.pad.padding == (2, 2, 2, 2):
            x = upsample_conv5x5(x, conv.weight, conv.bias, self.pad_type)
        else:
            x = conv(self.pad(F.interpolate(x, scale_factor=2, mode="nearest")))
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


def _fold_taps(w: torch.Tensor, dim: int) -> torch.Tensor:
    """Fold the 5 taps of ``w`` along ``dim`` into (2 output phases, 3 low-resolution taps) at ``dim, dim + 1``.

    Tap o (offset o - 2) of a 5-tap kernel on a nearest x2 upsampled map reads source pixel
    floor((2i + p + o - 2) / 2): phase 0 reads taps (0, 1), (2, 3), (4) at offsets -1, 0, +1, phase 1 reads
    (0), (1, 2), (3, 4). Slices and sums of the weight itself: no constant to copy to the device every call.
    """
    t = w.unbind(dim)
    phase0 = torch.stack([t[0] + t[1], t[2] + t[3], t[4]], dim)
    phase1 = torch.stack([t[0], t[1] + t[2], t[3] + t[4]], dim)
    return torch.stack([phase0, phase1], dim)


def upsample_conv5x5(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, pad_type: str):
    """``conv5x5(pad2(upsample_nearest_x2(x)))`` computed as a sub-pixel conv at the input resolution.

    Each output phase (py, px) of the upsampled map sees only 3x3 distinct input pixels, so the 5x5 kernel folds
    into four 3x3 kernels (taps reading the same pixel summed) applied to ``x`` and interleaved by
    ``pixel_shuffle``: 36 instead of 100 multiply-adds per output and input channel, and nothing at the
    upsampled resolution is stored for the backward pass. Zero / replicate padding of the upsampled map equal
    the same padding of ``x`` by one. Reflect padding of the upsampled map reads x[1] (x[-2]) where replicate
    padding reads x[0] (x[-1]), and only through the outermost kernel row / column at the first and last output
    row / column; those terms are added as thin corrections. Equal to the direct form up to float rounding.
    """
    c_out, c_in = weight.shape[:2]
    h, w = x.shape[-2:]
    if pad_type == "reflect" and min(h, w) < 2:  # reflect pad 2 of a 2-pixel map fails, as the direct form
        return F.conv2d(
            F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (2, 2, 2, 2), "reflect"), weight, bias
        )
    folded = _fold_taps(_fold_taps(weight, 2), 4)  # (o, i, py, a, px, b)
    kernel = folded.permute(0, 2, 4, 1, 3, 5).reshape(c_out * 4, c_in, 3, 3)
    low_pad = "constant" if pad_type == "zero" else "replicate"
    out = F.conv2d(
        F.pad(x, (1, 1, 1, 1), mode=low_pad), kernel, None if bias is None else bias.repeat_interleave(4)
    )
    out = F.pixel_shuffle(out, 2)
    if pad_type != "reflect":
        return out
    # First / last output row: kernel row 0 / 4 reads the row x[1] / x[-2] where replicate read x[0] / x[-1]
    # (columns as in the true reflect padding). First / last column: the same along columns, rows as replicate.
    rows = torch.cat([x[:, :, 1:2] - x[:, :, :1], x[:, :, -2:-1] - x[:, :, -1:]], 2)
    rows = F.pad(F.interpolate(rows, scale_factor=(1, 2), mode="nearest"), (2, 2, 0, 0), mode="reflect")
    cols = torch.cat([x[..., 1:2] - x[..., :1], x[..., -2:-1] - x[..., -1:]], 3)
    cols = F.pad(F.interpolate(cols, scale_factor=(2, 1), mode="nearest"), (0, 0, 2, 2), mode="replicate")
    left, right = F.conv2d(cols[..., :1], weight[..., :1]), F.conv2d(cols[..., 1:], weight[..., 4:])
    out = torch.cat([out[..., :1] + left, out[..., 1:-1], out[..., -1:] + right], 3)
    top, bottom = F.conv2d(rows[:, :, :1], weight[:, :, :1]), F.conv2d(rows[:, :, 1:], weight[:, :, 4:])
    return torch.cat([out[:, :, :1] + top, out[:, :, 1:-1], out[:, :, -1:] + bottom], 2)


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
        self.fast = False

    def use_fast_ops(self, enabled: bool = True) -> None:
        """Sub-pixel upsampling convs (:func:`upsample_conv5x5`) and the low-memory LayerNorm backward: the
        same maths in fewer operations and less stored memory, with other float rounding. Off: the official
        op sequence, bit for bit."""
        self.fast = enabled
        for module in self.modules():
            if isinstance(module, LayerNorm):
                module.fused = enabled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fast:
            return self.model(x)
        layers = iter(self.model)
        for layer in layers:
            x = next(layers)(x, upsampled=True) if isinstance(layer, nn.Upsample) else layer(x)
        return x


class VAEGen(nn.Module):
    """One domain's VAE: ``enc`` maps an image to the latent mean h, ``dec`` maps a latent back to an image.

    The official "reduced VAE" has a unit-variance Gaussian posterior N(h, I): no sigma head, the sample is
    ``h + n`` with ``n ~ N(0, I)``. Unlike the official ``encode``, which always draws (and usually discards) ``n``
    on the GPU, noise here is drawn only where it is used and with ``torch.randn_like`` (any device); callers that
    need the official draws pass ``noise`` explicitly.
    """

    #: what ``--compile`` compiles besides ``forward``: the model calls these directly
    compile_methods = ("encode", "decode")

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
    "upsample_conv5x5",
    "weights_init",
    "share_blocks",
    "unique_parameters",
    "latent_shape",
]
