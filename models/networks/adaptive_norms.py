"""Instance-Layer normalisation of U-GAT-IT: ``AdaILN`` (conditioned on γ, β) and ``ILN`` (own γ, β).

Both mix instance-norm and layer-norm statistics with a learned per-channel ratio ρ:

    out = (ρ·(x − μ_HW)/√(σ²_HW + ε) + (1 − ρ)·(x − μ_CHW)/√(σ²_CHW + ε))·γ + β

The official PyTorch code (znxlwm/UGATIT-pytorch ``networks.py``) uses ``torch.var``'s default, the
**unbiased** variance (divisor n − 1), while TensorFlow and the paper use the biased one. ``unbiased_var=True``
keeps the official numbers bit for bit (same reductions in the same order); ``False`` gives the TF/paper
statistics. Parameter names (``rho``, ``gamma``, ``beta``, shape (1, C, 1, 1)) are the official state_dict keys.
The enhanced-U-GAT-IT fork calls the same layers ``AdaLIN``/``LIN`` and clips their ρ differently, which
``RhoClipper`` covers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.networks.norms import at_least_fp32

__all__ = ["AdaILN", "ILN", "RhoClipper", "fused_instance_layer_norm", "instance_layer_normalize"]


def instance_layer_normalize(x: Tensor, eps: float, unbiased_var: bool = True) -> tuple[Tensor, Tensor]:
    """Return ``(x̂_IN, x̂_LN)`` of a (B, C, H, W) tensor: normalised over (H, W) and over (C, H, W).

    The reductions are written exactly as in the official code (``torch.mean``/``torch.var`` over the dims as
    one call each) so that float32 results are identical to it, not only close.
    """
    correction = 1 if unbiased_var else 0
    in_mean = torch.mean(x, dim=[2, 3], keepdim=True)
    in_var = torch.var(x, dim=[2, 3], keepdim=True, correction=correction)
    out_in = (x - in_mean) / torch.sqrt(in_var + eps)
    ln_mean = torch.mean(x, dim=[1, 2, 3], keepdim=True)
    ln_var = torch.var(x, dim=[1, 2, 3], keepdim=True, correction=correction)
    out_ln = (x - ln_mean) / torch.sqrt(ln_var + eps)
    return out_in, out_ln


def fused_instance_layer_norm(
    x: Tensor, rho: Tensor, gamma: Tensor, beta: Tensor, eps: float, unbiased_var: bool = True
) -> Tensor:
    """``(ρ·x̂_IN + (1 − ρ)·x̂_LN)·γ + β`` as ``x·K + M`` with per-(sample, channel) K and M.

    Both normalisations are affine in x per channel, so the whole layer is one scale and shift whose
    coefficients come from one ``var_mean`` pass over (H, W). The layer statistics follow from the channel
    ones without another pass (law of total variance: the biased C·H·W variance is the mean of the biased
    per-channel variances plus the biased variance of the channel means). Same maths as
    ``instance_layer_normalize``, float rounding differs (~1e-7 relative); autograd keeps only x and K
    alive for backward instead of the ~10 full-size intermediates of the official op sequence.

    ``x`` (B, C, H, W); ``rho`` (1, C, 1, 1); ``gamma``, ``beta`` broadcastable to (B, C, 1, 1).
    """
    correction = 1 if unbiased_var else 0
    m, n = x.shape[2] * x.shape[3], x.shape[1] * x.shape[2] * x.shape[3]
    in_var, in_mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=correction)
    ln_mean = in_mean.mean(1, keepdim=True)
    biased = (in_var * ((m - correction) / m)).mean(1, keepdim=True)
    ln_var = (biased + (in_mean - ln_mean).square().mean(1, keepdim=True)) * (n / (n - correction))
    w_in = rho * torch.rsqrt(in_var + eps)
    w_ln = (1 - rho) * torch.rsqrt(ln_var + eps)
    scale = (w_in + w_ln) * gamma
    shift = beta - (w_in * in_mean + w_ln * ln_mean) * gamma
    return torch.addcmul(shift, x, scale)


class AdaILN(nn.Module):
    """Adaptive Layer-Instance Normalisation: γ and β come from the generator's MLP, per sample.

    Args:
        num_features: channels C.
        eps: added to both variances (official 1e-5).
        rho_init: initial ρ; 0.9 in the official PyTorch code (the TF code starts at 1.0 and subtracts 0.1).
        unbiased_var: official PyTorch statistics (True) or the TF/paper biased variance (False).
        fused: compute with ``fused_instance_layer_norm`` (faster, lighter; not bit-identical to the official).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        rho_init: float = 0.9,
        unbiased_var: bool = True,
        fused: bool = False,
    ) -> None:
        super().__init__()
        self.eps = eps
        self.unbiased_var = unbiased_var
        self.fused = fused
        self.rho = nn.Parameter(torch.full((1, num_features, 1, 1), rho_init))

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        """``x`` (B, C, H, W); ``gamma``, ``beta`` (B, C). Statistics in float32, output in ``x``'s dtype."""
        x32, g, b = at_least_fp32(x), gamma[:, :, None, None], beta[:, :, None, None]
        if self.fused:
            return fused_instance_layer_norm(x32, self.rho, g, b, self.eps, self.unbiased_var).to(x.dtype)
        out_in, out_ln = instance_layer_normalize(x32, self.eps, self.unbiased_var)
        out = self.rho * out_in + (1 - self.rho) * out_ln
        return (out * g + b).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.rho.shape[1]}, eps={self.eps}, unbiased_var={self.unbiased_var}, fused={self.fused}"


class ILN(nn.Module):
    """Layer-Instance Normalisation with learned per-channel γ (init 1), β (init 0); ρ starts at 0 (pure LN).

    Used in the generator's up-sampling path, where no style code is available.
    """

    def __init__(
        self, num_features: int, eps: float = 1e-5, unbiased_var: bool = True, fused: bool = False
    ) -> None:
        super().__init__()
        self.eps = eps
        self.unbiased_var = unbiased_var
        self.fused = fused
        self.rho = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Statistics in float32 (half-precision variances lose most digits), output in ``x``'s dtype."""
        x32 = at_least_fp32(x)
        if self.fused:
            out = fused_instance_layer_norm(x32, self.rho, self.gamma, self.beta, self.eps, self.unbiased_var)
            return out.to(x.dtype)
        out_in, out_ln = instance_layer_normalize(x32, self.eps, self.unbiased_var)
        out = self.rho * out_in + (1 - self.rho) * out_ln
        return (out * self.gamma + self.beta).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.rho.shape[1]}, eps={self.eps}, unbiased_var={self.unbiased_var}, fused={self.fused}"


class RhoClipper:
    """Clamp ρ in place after each optimiser step; use as ``generator.apply(clipper)``.

    The official code clamps every ρ to [0, 1] (``RhoClipper(0, 1)``); the enhanced fork clamps ``AdaLIN`` ρ to
    [0, 0.9] and ``LIN`` ρ to [0, 1] (``adaptive_max=0.9``). ρ leaves that range only through the optimiser step,
    so clipping right after it keeps the mix a convex combination of IN and LN.
    """

    def __init__(self, minimum: float = 0.0, maximum: float = 1.0, adaptive_max: float | None = None) -> None:
        if adaptive_max is None:
            adaptive_max = maximum
        if not (minimum < maximum and minimum < adaptive_max):
            raise ValueError(f"empty ρ range: min {minimum}, max {maximum}, adaptive max {adaptive_max}")
        self.minimum = minimum
        self.maximum = maximum
        self.adaptive_max = adaptive_max

    @torch.no_grad()
    def __call__(self, module: nn.Module) -> None:
        if isinstance(module, AdaILN):
            module.rho.clamp_(self.minimum, self.adaptive_max)
        elif isinstance(module, ILN):
            module.rho.clamp_(self.minimum, self.maximum)
