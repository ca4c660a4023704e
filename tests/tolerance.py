"""Tolerances for comparisons with numbers recorded elsewhere (another CPU, the official code), measured.

Float32 results differ between CPUs (AVX2, AVX-512 and arm64 kernels sum in other orders) by amounts that
depend on how sensitive the computation is to rounding: ~1e-7 relative for a plain sum, much more after
cancelling sums, ReLU kinks or an InstanceNorm of a nearly flat map. Instead of a guessed constant, a test
measures that sensitivity where it runs: it repeats the computation with every input and weight moved by
one ulp (the size of one rounding), up and then down, and allows a multiple of the larger change this makes.
Other kernels round every intermediate result differently, not only the inputs: measured, TUNIT's G loss
moves between AVX-512 and PyTorch's default (scalar) kernels by 10x what one ulp of its inputs and weights
moves it, hence ``FACTOR``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: how many one-ulp perturbations' worth of drift another CPU's kernels are allowed (5x the measured 10x)
FACTOR = 50.0
#: the two perturbations a calibration runs: one ulp up, one ulp down
DIRECTIONS = (1, -1)


def one_ulp(x, direction: int = 1):
    """``x`` moved to the next representable value up (``direction`` 1) or down (-1); float tensors (also
    inside dicts) only, anything else unchanged."""
    if torch.is_tensor(x) and x.is_floating_point():
        return torch.nextafter(x, torch.full_like(x, math.inf * direction))
    if isinstance(x, dict):
        return {k: one_ulp(v, direction) for k, v in x.items()}
    return x


@torch.no_grad()
def nudge_(module: nn.Module, direction: int = 1) -> nn.Module:
    """Move every floating parameter and buffer of ``module`` by one ulp, in place."""
    for t in [*module.parameters(), *module.buffers()]:
        if t.is_floating_point():
            t.copy_(one_ulp(t, direction))
    return module


def calibrated_tolerance(expected: float, clean: float, nudged: list[float], rel: float = 1e-5) -> float:
    """The absolute tolerance for ``clean`` (computed here) against ``expected`` (recorded elsewhere):
    ``rel`` relative, or ``FACTOR`` times the largest change one ulp of perturbation made, if larger."""
    return max(rel * abs(expected), FACTOR * max(abs(n - clean) for n in nudged))


def assert_close_to_recorded(name: str, expected: float, clean: float, nudged: list[float], rel: float = 1e-5) -> None:
    tol = calibrated_tolerance(expected, clean, nudged, rel)
    moved = max(abs(n - clean) for n in nudged)
    assert abs(clean - expected) <= tol, (
        f"{name}: {clean!r} vs recorded {expected!r} (difference {abs(clean - expected):.3g} > tolerance "
        f"{tol:.3g}; one ulp of perturbation here moved it by up to {moved:.3g})"
    )
