"""U-GAT-IT generator and discriminator (Kim et al., ICLR 2020), official PyTorch layout plus the fork options.

``arch="official"`` reproduces znxlwm/UGATIT-pytorch ``networks.py`` (same module names, ``nn.Sequential``
positions and construction order, so official state_dicts load with ``strict=True`` and a seeded PyTorch-default
initialisation draws the same numbers). ``arch="enhanced"`` is the layer layout of zheng-yuwei/enhanced-UGATIT:
affine instance norms, biases on the CAM classifiers (feature weight = weight + bias, TF-like), the γ/β MLP and
every decoder conv; its options (``light`` pool size, ``use_se``, ``attention_gan``, ``attention_input``,
``use_deconv``; D ``sn``, ``cam_attention``, depth < 5) are constructor flags. Options that only change training
(``has_blur``, histogram matching, segmentation losses) live in the model, not here.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.spectral_norm import SpectralNorm

from .ugatit_blocks import ResnetAdaILNBlock, ResnetBlock, class_activation, upsampling_layers

__all__ = ["Discriminator", "ResnetGenerator", "UGATIT_ARCHS"]

UGATIT_ARCHS: tuple[str, ...] = ("official", "enhanced")
_N_DOWNSAMPLING = 2  # hard-coded in both codebases: the bottleneck is at 1/4 resolution with 4·ngf channels


def _check_arch(arch: str) -> None:
    if arch not in UGATIT_ARCHS:
        raise ValueError(f"unknown U-GAT-IT arch {arch!r}; valid: {', '.join(UGATIT_ARCHS)}")


class ResnetGenerator(nn.Module):
    """CAM-attention encoder/decoder with an AdaILN residual decoder; returns (image, cam_logit, heatmap).

    Args:
        input_nc, output_nc: image channels (3 in all published runs).
        ngf: base width (``--ch``); the bottleneck has C = 4·ngf channels.
        n_blocks: residual blocks in the encoder and again in the decoder (``--n_res``, official 4).
        img_size: training size S; only the full variant (``light=0``) depends on it, through the first γ/β
            Linear of (S/4)²·C inputs (96 % of the parameters at 256 px) that ties the network to S×S inputs.
        light: 0 = full (flatten the whole C×S/4×S/4 map, C-H-W order); k > 0 = adaptive-average-pool to k×k
            first, Linear(k²·C → C). ``light=1`` (or ``True``) is the official light model; the fork's README
            uses 32.
        arch: ``"official"`` or ``"enhanced"`` (fork layer layout: affine IN, biases, CAM weight + bias).
        use_se: scSE at the end of every residual branch (fork ``--use_se``).
        attention_gan: k > 0: AttentionGAN branch from the CAM features predicting k softmax masks that blend k
            candidate images (fork ``--attention_gan``); the final conv then outputs k·output_nc channels.
        attention_input: the input image is one of the k candidates and the final conv outputs only k − 1.
        attention_input_legacy: reproduce the fork's channel mixing, which concatenates the input *before*
            viewing (B, 3, k, H, W) so the input's R, G and B all land in the red group; the default puts the
            input as candidate 0 of each colour channel. Same parameters either way.
        use_deconv: up-sample with ``ConvTranspose2d`` (the fork's removed ``--use_deconv``) instead of
            nearest + conv; this changes the ``UpBlock2`` indices.
        unbiased_var: ILN/AdaILN statistics (official True; False = TF/paper biased variance).
        fused_norm: ILN/AdaILN as one var_mean pass and one scale-shift (``fused_instance_layer_norm``): same
            maths, float rounding differs; False keeps the official op sequence (bit-identical).
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        n_blocks: int = 4,
        img_size: int = 256,
        light: int = 0,
        arch: Literal["official", "enhanced"] = "official",
        use_se: bool = False,
        attention_gan: int = 0,
        attention_input: bool = False,
        attention_input_legacy: bool = False,
        use_deconv: bool = False,
        unbiased_var: bool = True,
        fused_norm: bool = False,
    ) -> None:
        super().__init__()
        _check_arch(arch)
        light = int(light)
        if n_blocks < 0 or light < 0 or attention_gan < 0:
            raise ValueError("n_blocks, light and attention_gan must be >= 0")
        if attention_input and attention_gan < 2:
            raise ValueError(
                "attention_input needs attention_gan >= 2 (the input plus >= 1 generated candidate)"
            )
        if attention_input and input_nc != output_nc:
            raise ValueError("attention_input blends the input image, so input_nc must equal output_nc")
        if light == 0 and img_size % 4:
            raise ValueError(f"the full generator (light=0) needs img_size divisible by 4, got {img_size}")
        self.input_nc, self.output_nc, self.ngf, self.n_blocks = input_nc, output_nc, ngf, n_blocks
        self.img_size, self.light, self.arch = img_size, light, arch
        self.attention_gan, self.attention_input = attention_gan, attention_input
        self.attention_input_legacy = attention_input_legacy
        enhanced = arch == "enhanced"
        dim = ngf * 2**_N_DOWNSAMPLING

        down: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, stride=1, padding=0, bias=False),
            nn.InstanceNorm2d(ngf, affine=enhanced),
            nn.ReLU(True),
        ]
        for i in range(_N_DOWNSAMPLING):
            ch = ngf * 2**i
            down += [
                nn.ReflectionPad2d(1),
                nn.Conv2d(ch, ch * 2, kernel_size=3, stride=2, padding=0, bias=False),
                nn.InstanceNorm2d(ch * 2, affine=enhanced),
                nn.ReLU(True),
            ]
        down += [ResnetBlock(dim, use_bias=False, affine=enhanced, use_se=use_se) for _ in range(n_blocks)]

        # CAM: auxiliary domain classifiers on pooled features; their weights re-weight the channels.
        self.gap_fc = nn.Linear(dim, 1, bias=enhanced)
        self.gmp_fc = nn.Linear(dim, 1, bias=enhanced)
        self.conv1x1 = nn.Conv2d(dim * 2, dim, kernel_size=1, stride=1, bias=True)
        self.relu = nn.ReLU(True)

        fc_in = light * light * dim if light else (img_size // 4) ** 2 * dim
        fc = [
            nn.Linear(fc_in, dim, bias=enhanced),
            nn.ReLU(True),
            nn.Linear(dim, dim, bias=enhanced),
            nn.ReLU(True),
        ]
        self.gamma = nn.Linear(dim, dim, bias=enhanced)
        self.beta = nn.Linear(dim, dim, bias=enhanced)

        for i in range(n_blocks):
            block = ResnetAdaILNBlock(
                dim, use_bias=enhanced, use_se=use_se, unbiased_var=unbiased_var, fused_norm=fused_norm
            )
            setattr(self, f"UpBlock1_{i + 1}", block)

        up = upsampling_layers(ngf, _N_DOWNSAMPLING, enhanced, use_deconv, unbiased_var, fused_norm)
        final_nc = output_nc
        if attention_gan:
            branch: list[nn.Module] = [
                ResnetBlock(dim, use_bias=False, affine=enhanced, use_se=use_se) for _ in range(n_blocks)
            ]
            branch += upsampling_layers(ngf, _N_DOWNSAMPLING, enhanced, use_deconv, unbiased_var, fused_norm)
            branch += [
                nn.Conv2d(ngf, attention_gan, kernel_size=1, stride=1, padding=0, bias=True),
                nn.Softmax(1),
            ]
            self.UpBlock_attention = nn.Sequential(*branch)
            final_nc = output_nc * (attention_gan - 1 if attention_input else attention_gan)
        up += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, final_nc, kernel_size=7, stride=1, padding=0, bias=enhanced),
            nn.Tanh(),
        ]

        self.DownBlock = nn.Sequential(*down)
        self.FC = nn.Sequential(*fc)
        self.UpBlock2 = nn.Sequential(*up)

    def _cam_weight(self, fc: nn.Module) -> Tensor:
        # Official: the classifier weight; fork: weight + bias broadcast (its ``sum(fc.parameters())``).
        return fc.weight if fc.bias is None else fc.weight + fc.bias

    def _check_size(self, x: Tensor) -> None:
        h, w = x.shape[-2:]
        if self.light == 0 and (h, w) != (self.img_size, self.img_size):
            raise ValueError(
                f"the full U-GAT-IT generator (light=0) was built for {self.img_size}x{self.img_size} inputs "
                f"(its first gamma/beta Linear flattens the whole feature map) but got {h}x{w}; "
                "resize to img_size or use a light generator"
            )
        if h % 4 or w % 4:
            raise ValueError(f"U-GAT-IT generator inputs need height and width divisible by 4, got {h}x{w}")

    def forward(self, input: Tensor, return_attention: bool = False) -> tuple[Tensor, ...]:
        """Returns ``(image, cam_logit (B, 2), heatmap (B, 1, H/4, W/4))``; with ``return_attention`` also the
        (B, k, H, W) attention masks (None without ``attention_gan``)."""
        self._check_size(input)
        x = self.DownBlock(input)
        x, cam_logit = class_activation(x, self.gap_fc, self.gmp_fc, self._cam_weight)
        x = self.relu(self.conv1x1(x))
        heatmap = torch.sum(x, dim=1, keepdim=True)

        x_ = F.adaptive_avg_pool2d(x, self.light) if self.light else x
        x_ = self.FC(x_.flatten(1))
        gamma, beta = self.gamma(x_), self.beta(x_)

        out = x
        for i in range(self.n_blocks):
            out = getattr(self, f"UpBlock1_{i + 1}")(out, gamma, beta)
        out = self.UpBlock2(out)

        attention = None
        if self.attention_gan:
            attention = self.UpBlock_attention(x)
            out = self._blend(input, out, attention)
        if return_attention:
            return out, cam_logit, heatmap, attention
        return out, cam_logit, heatmap

    def _blend(self, input: Tensor, out: Tensor, attention: Tensor) -> Tensor:
        """Mask-weighted sum of the k candidates of each colour channel (masks sum to 1 over k)."""
        b, k, h, w = attention.shape
        c = self.output_nc
        if self.attention_input and self.attention_input_legacy:
            candidates = torch.cat([input, out], dim=1).view(b, c, k, h, w)
        elif self.attention_input:
            candidates = torch.cat([input.unsqueeze(2), out.view(b, c, k - 1, h, w)], dim=2)
        else:
            candidates = out.view(b, c, k, h, w)
        return (candidates * attention.view(b, 1, k, h, w)).sum(dim=2)


def _sn(module: nn.Module, enabled: bool) -> nn.Module:
    # Legacy hook-based spectral norm on purpose: its keys (weight_orig/_u/_v) are the official ones, and its
    # order of power iteration (v then u, one per training-mode forward) is the official one.
    return nn.utils.spectral_norm(module) if enabled else module


def _sn_hook(module: nn.Module) -> SpectralNorm | None:
    return next((h for h in module._forward_pre_hooks.values() if isinstance(h, SpectralNorm)), None)


def _sn_sigmas(module: nn.Module, hook: SpectralNorm, calls: int) -> list[Tensor]:
    """σ of ``calls`` consecutive forwards of a legacy spectral-norm module, updating u and v as they would.

    The same operations as ``SpectralNorm.compute_weight``: in training mode each call first runs the power
    iteration in place on the ``weight_u``/``weight_v`` buffers, then σ = uᵀ·W·v with clones of them (so the
    buffers end exactly as after ``calls`` separate calls); in eval mode σ comes from the stored vectors.
    """
    weight = getattr(module, hook.name + "_orig")
    with torch.autocast(weight.device.type, enabled=False):  # power iteration and σ in float32 under AMP
        return _sigmas_fp32(module, hook, hook.reshape_weight_to_matrix(weight), calls)


def _sigmas_fp32(module: nn.Module, hook: SpectralNorm, mat: Tensor, calls: int) -> list[Tensor]:
    sigmas = []
    for _ in range(calls):
        u, v = getattr(module, hook.name + "_u"), getattr(module, hook.name + "_v")
        if module.training:
            with torch.no_grad():
                for _ in range(hook.n_power_iterations):
                    v = F.normalize(torch.mv(mat.t(), u), dim=0, eps=hook.eps, out=v)
                    u = F.normalize(torch.mv(mat, v), dim=0, eps=hook.eps, out=u)
                if hook.n_power_iterations > 0:
                    u = u.clone(memory_format=torch.contiguous_format)
                    v = v.clone(memory_format=torch.contiguous_format)
        sigmas.append(torch.dot(u, torch.mv(mat, v)))
    return sigmas


class _OutputScaledSN:
    """A legacy spectral-norm layer applied as ``layer(x; W)/σ + b`` instead of ``layer(x; W/σ) + b``.

    Same maths, but no weight-sized W/σ is materialised, kept for backward and differentiated per call (at
    128 px that division and its backward were most of the discriminators' time and memory: the global D
    has 53 M weights). ``groups`` > 1 stands for that many consecutive calls on equal chunks of the batch:
    chunk i is scaled by the σ after i + 1 power iterations, as if each chunk had been its own call. The
    object mimics the SN module's ``weight`` (per sample, (B, out)), ``weight_orig`` and ``bias``.
    """

    def __init__(self, layer: nn.Module, hook: SpectralNorm, groups: int, batch: int) -> None:
        self.layer, self.bias, self.weight_orig = layer, layer.bias, getattr(layer, hook.name + "_orig")
        sigma = torch.stack(_sn_sigmas(layer, hook, groups))
        self.sigma = sigma.repeat_interleave(batch // groups) if groups > 1 else sigma
        self.sigma = self.sigma.view(-1, 1)  # (B or 1, 1)

    @property
    def weight(self) -> Tensor:
        """The normalised weight of a Linear (the CAM classifiers' ``fc.weight``), one row per sample."""
        return self.weight_orig / self.sigma

    def __call__(self, x: Tensor) -> Tensor:
        """In the conv's output dtype: under AMP, σ and the bias are cast down as autocast casts a conv's bias."""
        layer = self.layer
        if isinstance(layer, nn.Conv2d):
            y = F.conv2d(x, self.weight_orig, None, layer.stride, layer.padding, layer.dilation, layer.groups)
            y = y / self.sigma.to(y.dtype).view(-1, 1, 1, 1)
            return y if self.bias is None else y + self.bias.to(y.dtype).view(1, -1, 1, 1)
        y = F.linear(x, self.weight_orig)
        y = y / self.sigma.to(y.dtype)
        return y if self.bias is None else y + self.bias.to(y.dtype)


class Discriminator(nn.Module):
    """PatchGAN-like critic with a CAM module; returns (logit map, cam_logit (B, 2), heatmap).

    ``n_layers`` = 7 is the official global D (5 stride-2 convs, 70×70-ish patches become a 6×6 map at 256 px),
    5 the local D. Widths double from ``ndf`` up to ``ndf·2^(n_layers−2)`` (the CAM width C_D).

    Args:
        input_nc: image channels.
        ndf: base width (``--ch``).
        n_layers: depth; the fork allows 3 and 4, which add 5 − n_layers 3×3 stride-1 convs.
        arch: ``"enhanced"`` adds biases to the CAM classifiers and the final conv (fork).
        sn: spectral norm on all convs and CAM classifiers except ``conv1x1`` (official True; fork ``--sn``).
        cam_attention: scale the features by the CAM classifier weights (fork ``--cam_D_attention`` off: no).
        cam_weight: ``"raw"`` (official): the scaling uses the un-normalised ``weight_orig`` while the logit
            uses the spectral-normalised weight; ``"sn"``: the normalised weight, as the TF code does.
        fused_sn: apply spectral norm to each layer's output (``conv(x, W)/σ + b``) rather than to its weight
            (``conv(x, W/σ) + b``, the official hook): same maths and the same u, v updates, float rounding
            differs; much faster and lighter for the wide layers, and it allows ``sn_groups`` in ``forward``.
    """

    def __init__(
        self,
        input_nc: int = 3,
        ndf: int = 64,
        n_layers: int = 5,
        arch: Literal["official", "enhanced"] = "official",
        sn: bool = True,
        cam_attention: bool = True,
        cam_weight: Literal["raw", "sn"] = "raw",
        fused_sn: bool = False,
    ) -> None:
        super().__init__()
        _check_arch(arch)
        if n_layers < 3:
            raise ValueError(f"Discriminator needs n_layers >= 3, got {n_layers}")
        if cam_weight not in ("raw", "sn"):
            raise ValueError(f"unknown cam_weight {cam_weight!r}; valid: raw, sn")
        enhanced = arch == "enhanced"
        self.n_layers, self.arch, self.sn = n_layers, arch, sn
        self.cam_attention, self.cam_weight, self.fused_sn = cam_attention, cam_weight, fused_sn and sn

        def conv(cin: int, cout: int, k: int, s: int) -> list[nn.Module]:
            layer = nn.Conv2d(cin, cout, kernel_size=k, stride=s, padding=0, bias=True)
            return [nn.ReflectionPad2d(1), _sn(layer, sn), nn.LeakyReLU(0.2, True)]

        model = conv(input_nc, ndf, 4, 2)
        for i in range(1, n_layers - 2):
            ch = ndf * 2 ** (i - 1)
            model += conv(ch, ch * 2, 4, 2)
        ch = ndf * 2 ** (n_layers - 3)
        for _ in range(5 - n_layers):  # fork: keep the receptive field of shallow Ds with 3×3 stride-1 convs
            model += conv(ch, ch, 3, 1)
        model += conv(ch, ch * 2, 4, 1)
        dim = ch * 2

        # The fork builds gmp_fc first; keeping each construction order reproduces each codebase's seeded init.
        names = ("gmp_fc", "gap_fc") if enhanced else ("gap_fc", "gmp_fc")
        for name in names:
            setattr(self, name, _sn(nn.Linear(dim, 1, bias=enhanced), sn))
        self.conv1x1 = nn.Conv2d(dim * 2, dim, kernel_size=1, stride=1, bias=True)
        self.leaky_relu = nn.LeakyReLU(0.2, True)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = _sn(nn.Conv2d(dim, 1, kernel_size=4, stride=1, padding=0, bias=enhanced), sn)
        self.model = nn.Sequential(*model)
        self.min_input_size = self._min_input_size()

    def _feature_size(self, n: int) -> int:
        """Spatial size of the logit map for an n-pixel side; 0 when a reflection pad would fail (needs >= 2)."""
        for layer in [*self.model, self.pad, self.conv]:
            if isinstance(layer, nn.ReflectionPad2d):
                if n < 2:
                    return 0
                n += 2
            elif isinstance(layer, nn.Conv2d):
                n = (n - layer.kernel_size[0]) // layer.stride[0] + 1
        return n

    def _min_input_size(self) -> int:
        n = 2
        while self._feature_size(n) < 1:
            n += 1
        return n

    def _cam_weight_of(self, fc: nn.Module) -> Tensor:
        if self.sn and self.cam_weight == "raw":
            weight = fc.weight_orig  # official quirk: the raw parameter, not the normalised weight
        else:
            weight = fc.weight  # set by the spectral-norm pre-hook during the classifier call
        return weight if fc.bias is None else weight + fc.bias

    def _layer(self, layer: nn.Module, groups: int, batch: int):
        """``layer`` itself, or with ``fused_sn`` its output-scaled stand-in (power iterations happen here)."""
        hook = _sn_hook(layer) if self.fused_sn else None
        return layer if hook is None else _OutputScaledSN(layer, hook, groups, batch)

    def _trunk(self, x: Tensor, groups: int) -> Tensor:
        if not self.fused_sn:
            return self.model(x)
        for layer in self.model:
            x = self._layer(layer, groups, x.shape[0])(x)
        return x

    def forward(
        self,
        input: Tensor,
        cam_input: Tensor | None = None,
        mask: Tensor | None = None,
        sn_groups: int = 1,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Args:
        input: images (B, C, H, W), H and W >= ``min_input_size`` (96 for the global D).
        cam_input: fork ``--seg_D_cam_inp_mask``: a second trunk pass on this (masked) image feeds the CAM
            logits; the attention scaling still applies to the features of ``input``.
        mask: fork ``--seg_D_cam_fea_mask``: (B, 1, H, W) mask, area-resized, multiplies the CAM-logit features.
        sn_groups: with ``fused_sn``, the batch is this many equal chunks that each count as one call (one
            power iteration each, in order): ``D(cat([real, fake]), sn_groups=2)`` gives the numbers of
            ``D(real)`` followed by ``D(fake)``, in one batched pass.
        """
        h, w = input.shape[-2:]
        if min(h, w) < self.min_input_size:
            raise ValueError(
                f"U-GAT-IT discriminator with n_layers={self.n_layers} needs inputs of at least "
                f"{self.min_input_size}x{self.min_input_size} px, got {h}x{w}"
            )
        if sn_groups != 1 and ((self.sn and not self.fused_sn) or input.shape[0] % sn_groups):
            raise ValueError(
                f"sn_groups={sn_groups} needs fused_sn=True and a batch divisible by it (batch {input.shape[0]})"
            )
        b = input.shape[0]
        x = self._trunk(input, sn_groups)
        cam_x = self._trunk(cam_input, sn_groups) if cam_input is not None else x
        if mask is not None:
            cam_x = F.interpolate(mask, size=cam_x.shape[2:], mode="area") * cam_x
        weight_fn = self._cam_weight_of if self.cam_attention else None
        gap_fc, gmp_fc = self._layer(self.gap_fc, sn_groups, b), self._layer(self.gmp_fc, sn_groups, b)
        x, cam_logit = class_activation(x, gap_fc, gmp_fc, weight_fn, cam_x=cam_x)
        x = self.leaky_relu(self.conv1x1(x))
        heatmap = torch.sum(x, dim=1, keepdim=True)
        out = self._layer(self.conv, sn_groups, b)(self.pad(x))
        return out, cam_logit, heatmap
