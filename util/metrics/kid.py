"""Kernel Inception Distance (Binkowski et al., "Demystifying MMD GANs", ICLR 2018).

KID is the squared maximum mean discrepancy between two sets of Inception features under the cubic
polynomial kernel k(x, y) = (x.y / d + 1)^3, estimated with the *unbiased* U-statistic (the kernel of a
sample with itself is left out), so its expectation is exactly zero when both sets come from the same
distribution. As in the paper's code and torch-fidelity, it is averaged over random subsets: 100 subsets of
1000 features by default, or of the smaller set's size when a set has fewer than 1000.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SUBSETS = 100
DEFAULT_SUBSET_SIZE = 1000


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """k(x, y) = (x.y / d + coef0) ** degree for all pairs of rows; d is the feature size."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between two equally sized samples (rows) under the cubic polynomial kernel."""
    m = x.shape[0]
    if m < 2 or y.shape[0] != m:
        raise ValueError(f"need two samples of the same size >= 2, got {x.shape[0]} and {y.shape[0]}")
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    # Off-diagonal means of K_xx and K_yy: k(x_i, x_i) would bias the estimate upwards.
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_inception_distance(
    feats_x: np.ndarray,
    feats_y: np.ndarray,
    num_subsets: int = DEFAULT_SUBSETS,
    subset_size: int = DEFAULT_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean and standard deviation of the unbiased MMD^2 over ``num_subsets`` random subsets.

    Each subset draws ``min(subset_size, len(x), len(y))`` rows from each set without replacement, with a
    generator seeded by ``seed`` so that scores are reproducible.
    """
    feats_x, feats_y = np.asarray(feats_x), np.asarray(feats_y)
    if feats_x.ndim != 2 or feats_y.ndim != 2 or feats_x.shape[1] != feats_y.shape[1]:
        raise ValueError(
            f"features must be (N, d) arrays of equal d, got {feats_x.shape} and {feats_y.shape}"
        )
    m = min(subset_size, feats_x.shape[0], feats_y.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 features in each set")
    rng = np.random.default_rng(seed)
    scores = np.empty(num_subsets)
    for i in range(num_subsets):
        x = feats_x[rng.choice(feats_x.shape[0], m, replace=False)]
        y = feats_y[rng.choice(feats_y.shape[0], m, replace=False)]
        scores[i] = mmd2_unbiased(x, y)
    return float(scores.mean()), float(scores.std())
