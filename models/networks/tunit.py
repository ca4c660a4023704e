"""TUNIT networks (Baek et al., ICCV 2021): FUNIT-style generator, StarGAN-v2-style discriminator, guiding net.

Module and parameter names follow clovaai/tunit so that its released ``model_*.ckpt`` files load with
``strict=True`` (see ``docs/tunit.md``). Every width the official code hard-codes (generator ``nf`` and
``nf_mlp``, discriminator ``dim_in`` and ``max_conv_dim``, the VGG widths of the guiding network) is a
constructor argument so that tests can build tiny copies; the defaults reproduce the official networks.

Parameter counts with the defaults (``sty_dim=128``, K = ``num_domains`` = ``output_k``):

=========  ===========  ===========  =========
S, K       Generator    Discrim.     GuidingNet
=========  ===========  ===========  =========
128, 10    27,333,763   70,935,242   9,296,778
256, 10    27,424,835   70,983,018   9,296,778
=========  ===========  ===========  =========
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "VGG11_WIDTHS",
    "AdaIN2d",
    "FRN",
    "Conv2dBlock",
    "LinearBlock",
    "ResBlock",
    "ResBlocks",
    "ActFirstResBlk",
    "ContentEncoder",
    "Decoder",
    "MLP",
    "Generator",
    "Discriminator",
    "GuidingNet",
    "num_adain_params",
    "assign_adain_params",
]

# VGG11 configuration of the guiding network: a number is Conv3x3 -> BatchNorm -> ReLU, "M" a 2x2 max-pool.
VGG11_WIDTHS: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")

# 1/sqrt(2) rounded to float32 exactly as the official ``torch.rsqrt(torch.tensor(2.0))`` is, so that the
# discriminator's residual merge is bit-identical to clovaai/tunit.
_INV_SQRT2 = float(torch.rsqrt(torch.tensor(2.0)))


def _kaiming_init(module: nn.Module) -> None:
    """FUNIT's ``weights_init('kaiming')``: He-normal (fan_in, a=0) on Conv2d/Linear weights, zero biases."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------------------------------------
# Normalisation layers
# ----------------------------------------------------------------------------------------------------------
class AdaIN2d(nn.Module):
    """Adaptive instance normalisation whose affine terms come from the generator's MLP.

    ``weight`` and ``bias`` are plain tensors of shape ``(N*C,)`` assigned by :func:`assign_adain_params`
    before each decode (they are not parameters). The statistics are per sample and per channel in both
    train and eval mode: the official layer runs ``batch_norm`` in training mode on a ``(1, N*C, H*W)`` view,
    i.e. biased variance and ``eps=1e-5``. ``running_mean``/``running_var`` are kept only because they are
    in the official state_dicts; they never change.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight: Tensor | None = None
        self.bias: Tensor | None = None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: Tensor) -> Tensor:
        if self.weight is None or self.bias is None:
            raise RuntimeError("AdaIN2d needs style parameters: call Generator.decode, not the decoder alone")
        n, c, h, w = x.shape
        # running stats are None so the buffers stay untouched (the official code passes throw-away copies).
        normed = F.batch_norm(
            x.contiguous().view(1, n * c, h * w), None, None, self.weight, self.bias, True, 0.0, self.eps
        )
        return normed.view(n, c, h, w)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class FRN(nn.Module):
    """Filter response normalisation with a thresholded linear unit (Singh & Krishnan, 2020).

    ``y = max(gamma * x / sqrt(mean_HW(x^2) + eps) + beta, tau)``; the TLU is the only non-linearity
    inside the discriminator's residual blocks. ``eps=1e-6`` as in clovaai/tunit.
    """

    def __init__(self, num_features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.tau = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x = x * torch.rsqrt(torch.mean(x**2, dim=[2, 3], keepdim=True) + self.eps)
        return torch.max(self.gamma * x + self.beta, self.tau)


# ----------------------------------------------------------------------------------------------------------
# Generator blocks (FUNIT naming: ``pad``/``conv``/``norm``/``activation`` and ``fc``)
# ----------------------------------------------------------------------------------------------------------
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "none": None}


def _activation(act: str) -> nn.Module | None:
    if act not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; choose from {sorted(_ACTIVATIONS)}")
    cls = _ACTIVATIONS[act]
    return cls() if cls is not None else None


class Conv2dBlock(nn.Module):
    """Reflection pad -> Conv2d (bias) -> optional norm ("in", "adain", "none") -> optional activation.

    The generator pads by reflection everywhere (FUNIT's ``pad_type='reflect'``). ``"in"`` is
    ``InstanceNorm2d`` without affine terms or running statistics, so it adds no state_dict entries.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        kernel_size: int,
        stride: int,
        padding: int = 0,
        norm: str = "none",
        act: str = "relu",
    ) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(padding)
        # norm is registered before conv, as upstream, so state_dict keys come in the official order.
        if norm == "in":
            self.norm: nn.Module | None = nn.InstanceNorm2d(out_dim)
        elif norm == "adain":
            self.norm = AdaIN2d(out_dim)
        elif norm == "none":
            self.norm = None
        else:
            raise ValueError(f"unknown norm {norm!r}; choose from ['adain', 'in', 'none']")
        self.activation = _activation(act)
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size, stride, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class LinearBlock(nn.Module):
    """Linear (bias) -> optional activation; the MLP's layers (``fc`` is the official attribute name)."""

    def __init__(self, in_dim: int, out_dim: int, act: str = "relu") -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim, bias=True)
        self.activation = _activation(act)

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc(x)
        return self.activation(x) if self.activation is not None else x


class ResBlock(nn.Module):
    """Two 3x3 Conv2dBlocks; ``out = x + 0.1 * residual``.

    The 0.1 residual scale is TUNIT's (FUNIT's ResBlock has none); it is a constant of the official code.
    """

    residual_scale = 0.1

    def __init__(self, dim: int, norm: str = "in") -> None:
        super().__init__()
        self.model = nn.Sequential(
            Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, act="relu"),
            Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, act="none"),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.residual_scale * self.model(x)


class ResBlocks(nn.Module):
    """``num_blocks`` ResBlocks in ``self.model`` (renamed from ``blocks`` upstream on 2020-06-17)."""

    def __init__(self, num_blocks: int, dim: int, norm: str = "in") -> None:
        super().__init__()
        self.model = nn.Sequential(*[ResBlock(dim, norm=norm) for _ in range(num_blocks)])

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ContentEncoder(nn.Module):
    """7x7 stem, ``n_downs`` stride-2 4x4 convs doubling the width, then ``n_res`` IN ResBlocks."""

    def __init__(self, nf: int, n_downs: int, n_res: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [Conv2dBlock(3, nf, 7, 1, 3, norm="in", act="relu")]
        for _ in range(n_downs):
            layers.append(Conv2dBlock(nf, 2 * nf, 4, 2, 1, norm="in", act="relu"))
            nf *= 2
        layers.append(ResBlocks(n_res, nf, norm="in"))
        self.model = nn.Sequential(*layers)
        self.out_dim = nf

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class Decoder(nn.Module):
    """AdaIN ResBlocks, then per level nearest x2 upsampling and a 5x5 AdaIN conv halving the width, then a
    7x7 conv to RGB with tanh. The Upsample modules take Sequential slots (odd indices), as upstream."""

    def __init__(self, nf_dec: int, n_downs: int, n_res: int) -> None:
        super().__init__()
        nf = nf_dec
        layers: list[nn.Module] = [ResBlocks(n_res, nf, norm="adain")]
        for _ in range(n_downs):
            layers.append(nn.Upsample(scale_factor=2))
            layers.append(Conv2dBlock(nf, nf // 2, 5, 1, 2, norm="adain", act="relu"))
            nf //= 2
        layers.append(Conv2dBlock(nf, 3, 7, 1, 3, norm="none", act="tanh"))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class MLP(nn.Module):
    """Style code -> AdaIN parameters: ``n_blocks`` Linear layers, ReLU between them, none at the end."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, n_blocks: int = 3) -> None:
        super().__init__()
        if n_blocks < 2:
            raise ValueError("the style MLP needs at least 2 layers")
        layers = [LinearBlock(in_dim, hidden_dim, act="relu")]
        layers += [LinearBlock(hidden_dim, hidden_dim, act="relu") for _ in range(n_blocks - 2)]
        layers.append(LinearBlock(hidden_dim, out_dim, act="none"))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.view(x.size(0), -1))


def num_adain_params(module: nn.Module) -> int:
    """Number of MLP outputs the AdaIN layers of ``module`` consume (2 * channels each)."""
    return sum(2 * m.num_features for m in module.modules() if isinstance(m, AdaIN2d))


def assign_adain_params(adain_params: Tensor, module: nn.Module) -> None:
    """Hand consecutive slices of ``adain_params`` (B, n) to the AdaIN layers of ``module`` in module order.

    For a layer with C channels the first C values are its bias ("mean") and the next C its weight
    ("std"), used as is, without the +1 some AdaIN variants add (official layout).
    """
    offset = 0
    for m in module.modules():
        if isinstance(m, AdaIN2d):
            c = m.num_features
            m.bias = adain_params[:, offset : offset + c].contiguous().view(-1)
            m.weight = adain_params[:, offset + c : offset + 2 * c].contiguous().view(-1)
            offset += 2 * c


def _clear_adain_params(module: nn.Module) -> None:
    # Dropping the per-batch tensors after a decode frees their graph and keeps the module deep-copyable
    # (copy.deepcopy refuses non-leaf tensors), which the EMA copies rely on.
    for m in module.modules():
        if isinstance(m, AdaIN2d):
            m.weight = None
            m.bias = None


# ----------------------------------------------------------------------------------------------------------
# Generator
# ----------------------------------------------------------------------------------------------------------
class Generator(nn.Module):
    """FUNIT-style generator: content encoder to a 16x16 code, AdaIN decoder driven by a style code.

    Args:
        img_size: square image size S (>= 32); the number of downsamplings is ``log2(S // 16)``.
        sty_dim: style-code size (the guiding network's ``cont`` output).
        nf: stem width; ``None`` picks the official 64 for S < 256 and 32 otherwise.
        nf_mlp: hidden width of the style MLP (official 256).
        n_res: ResBlocks in the encoder and in the decoder (official 2).
        n_mlp_blocks: Linear layers of the style MLP (official 3).
    """

    #: what ``--compile`` compiles besides ``forward``: the model calls these directly
    compile_methods = ("cnt_encoder", "decode")

    def __init__(
        self,
        img_size: int = 128,
        sty_dim: int = 128,
        nf: int | None = None,
        nf_mlp: int = 256,
        n_res: int = 2,
        n_mlp_blocks: int = 3,
    ) -> None:
        super().__init__()
        if img_size < 32:
            raise ValueError(f"TUNIT's generator needs img_size >= 32, got {img_size}")
        self.nf = nf if nf is not None else (64 if img_size < 256 else 32)
        self.nf_mlp = nf_mlp
        self.n_downs = int(math.log2(img_size // 16))
        if img_size % (2**self.n_downs):
            raise ValueError(f"img_size {img_size} is not divisible by 2**{self.n_downs}")
        nf_dec = self.nf * 2**self.n_downs
        self.cnt_encoder = ContentEncoder(self.nf, self.n_downs, n_res)
        self.decoder = Decoder(nf_dec, self.n_downs, n_res)
        self.mlp = MLP(sty_dim, num_adain_params(self.decoder), nf_mlp, n_mlp_blocks)
        self.apply(_kaiming_init)

    def decode(self, cnt: Tensor, sty: Tensor) -> Tensor:
        """Render content code ``cnt`` (B, C, h, w) with style code ``sty`` (B, sty_dim)."""
        assign_adain_params(self.mlp(sty), self.decoder)
        try:
            return self.decoder(cnt)
        finally:
            _clear_adain_params(self.decoder)

    def forward(self, x_src: Tensor, s_ref: Tensor) -> Tensor:
        return self.decode(self.cnt_encoder(x_src), s_ref)


# ----------------------------------------------------------------------------------------------------------
# Discriminator
# ----------------------------------------------------------------------------------------------------------
class ActFirstResBlk(nn.Module):
    """Pre-activation residual block with FRN: ``(shortcut + residual) / sqrt(2)`` (StarGAN v2 layout).

    residual = FRN -> conv3x3(din->din) -> [avgpool2] -> FRN -> conv3x3(din->dout);
    shortcut = [conv1x1(din->dout, no bias) when the width changes] -> [avgpool2].
    """

    def __init__(self, dim_in: int, dim_out: int, downsample: bool = True) -> None:
        super().__init__()
        self.norm1 = FRN(dim_in)
        self.norm2 = FRN(dim_in)
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.downsample = downsample
        self.learned_sc = dim_in != dim_out
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x: Tensor) -> Tensor:
        if self.learned_sc:
            x = self.conv1x1(x)
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        return x

    def _residual(self, x: Tensor) -> Tensor:
        x = self.conv1(self.norm1(x))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        return self.conv2(self.norm2(x))

    def forward(self, x: Tensor) -> Tensor:
        # Two products rather than one division: the official rounding order.
        return _INV_SQRT2 * self._shortcut(x) + _INV_SQRT2 * self._residual(x)


class Discriminator(nn.Module):
    """Multi-head projection-free discriminator: one real/fake logit per (pseudo) domain.

    ``main``: conv3x3 stem, then ``log2(S) - 2`` stages of [ActFirstResBlk(d, d), ActFirstResBlk(d, 2d,
    downsample)] (width capped at ``max_conv_dim``), LeakyReLU(0.2), conv4x4 (4x4 -> 1x1), LeakyReLU(0.2),
    conv1x1 to ``num_domains``. TUNIT uses two blocks per resolution where StarGAN v2 uses one.

    Args:
        img_size: square image size S, a power of two >= 8.
        num_domains: number of heads K (``output_k``).
        max_conv_dim: width cap (official 1024).
        dim_in: stem width; ``None`` picks the official 64 for S < 256 and 32 otherwise.
    """

    def __init__(
        self, img_size: int = 128, num_domains: int = 10, max_conv_dim: int = 1024, dim_in: int | None = None
    ) -> None:
        super().__init__()
        if img_size < 8 or img_size & (img_size - 1):
            raise ValueError(f"the discriminator needs a power-of-two img_size >= 8, got {img_size}")
        d = dim_in if dim_in is not None else (64 if img_size < 256 else 32)
        blocks: list[nn.Module] = [nn.Conv2d(3, d, 3, 1, 1)]
        d_out = d
        for _ in range(int(math.log2(img_size)) - 2):
            d_out = min(d * 2, max_conv_dim)
            blocks += [ActFirstResBlk(d, d, downsample=False), ActFirstResBlk(d, d_out, downsample=True)]
            d = d_out
        blocks += [
            nn.LeakyReLU(0.2),
            nn.Conv2d(d_out, d_out, 4, 1, 0),
            nn.LeakyReLU(0.2),
            nn.Conv2d(d_out, num_domains, 1, 1, 0),
        ]
        self.main = nn.Sequential(*blocks)
        self.apply(_kaiming_init)

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Return the logits of the heads selected by ``y`` (B,) and the full head map (B, K, 1, 1)."""
        feat = self.main(x)
        out = feat.view(feat.size(0), -1)
        return out[torch.arange(y.size(0), device=y.device), y], feat


# ----------------------------------------------------------------------------------------------------------
# Guiding network
# ----------------------------------------------------------------------------------------------------------
class GuidingNet(nn.Module):
    """VGG11-BN trunk (trained from scratch) with a clustering head and a style head.

    ``disc`` gives K cluster logits (IIC; softmax is applied by the loss), ``cont`` the style code (MoCo;
    never L2-normalised, as upstream). ``moco`` and ``iic`` each run the trunk, so each call uses its own
    batch statistics and updates the BatchNorm running statistics, exactly like the official training.

    Args:
        sty_dim: size of the style code (``cont`` head).
        output_k: number of clusters K (``disc`` head).
        widths: trunk configuration (numbers = conv widths, "M" = max-pool); default VGG11.
    """

    #: what ``--compile`` compiles besides ``forward``: ``moco`` and ``iic`` run the trunk, then one Linear
    compile_methods = ("trunk",)

    def __init__(
        self, sty_dim: int = 128, output_k: int = 10, widths: Sequence[int | str] = VGG11_WIDTHS
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in widths:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_ch, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU()]
                in_ch = int(v)
        self.features = nn.Sequential(*layers)
        self.disc = nn.Linear(in_ch, output_k)
        self.cont = nn.Linear(in_ch, sty_dim)
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        # torchvision's VGG init, as upstream: He (fan_out) convs, unit BN, N(0, 0.01) linear heads.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def trunk(self, x: Tensor) -> Tensor:
        """Pooled trunk features (B, C) that both heads read; lets a caller run the trunk once for both."""
        return F.adaptive_avg_pool2d(self.features(x), (1, 1)).flatten(1)

    def moco(self, x: Tensor) -> Tensor:
        """Style code (B, sty_dim)."""
        return self.cont(self.trunk(x))

    def iic(self, x: Tensor) -> Tensor:
        """Cluster logits (B, K)."""
        return self.disc(self.trunk(x))

    def forward(self, x: Tensor, sty: bool = False) -> Tensor | dict[str, Tensor]:
        """``{'cont', 'disc'}`` from one trunk pass, or only the style code when ``sty`` is true."""
        flat = self.trunk(x)
        if sty:
            return self.cont(flat)
        return {"cont": self.cont(flat), "disc": self.disc(flat)}
