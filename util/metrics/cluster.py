"""Clustering scores for TUNIT's guiding network: Hungarian-matched accuracy and NMI.

Cluster accuracy follows IIC / clovaai/tunit ``validation/eval_metrics.py``: count votes of every
(cluster, class) pair, find the one-to-one matching that maximises the matched votes with
``scipy.optimize.linear_sum_assignment`` on ``n - votes``, and report the fraction of samples whose cluster is
matched to their class. Upstream requires as many clusters as classes; here a rectangular matching is allowed
(samples of unmatched clusters or classes count as errors). NMI is the arithmetic-mean normalisation that
scikit-learn's ``normalized_mutual_info_score`` uses by default (upstream imports it but never calls it).
Everything runs on CPU with NumPy, whatever device the predictions come from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "confusion_counts",
    "hungarian_match",
    "cluster_accuracy",
    "normalized_mutual_info",
    "cluster_sizes",
    "evaluate_clustering",
]


def _as_labels(x: Any) -> np.ndarray:
    """1-D int64 array from a list, NumPy array or (any-device) torch tensor of non-negative labels."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("labels must be non-negative")
    return arr


def _pair(preds: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _as_labels(preds), _as_labels(targets)
    if p.shape != t.shape:
        raise ValueError(f"preds and targets differ in length: {p.shape[0]} vs {t.shape[0]}")
    return p, t


def confusion_counts(
    preds: Any, targets: Any, num_clusters: int | None = None, num_classes: int | None = None
) -> np.ndarray:
    """Votes matrix ``counts[c, y]`` = number of samples in cluster c with class y."""
    p, t = _pair(preds, targets)
    k = num_clusters if num_clusters is not None else int(p.max(initial=-1)) + 1
    m = num_classes if num_classes is not None else int(t.max(initial=-1)) + 1
    if p.size and (p.max() >= k or t.max() >= m):
        raise ValueError(f"labels out of range for a {k} x {m} confusion matrix")
    counts = np.zeros((k, m), dtype=np.int64)
    np.add.at(counts, (p, t), 1)
    return counts


def hungarian_match(
    preds: Any, targets: Any, num_clusters: int | None = None, num_classes: int | None = None
) -> dict[int, int]:
    """One-to-one cluster -> class mapping maximising the matched votes (IIC's ``_hungarian_match``)."""
    p, _ = _pair(preds, targets)
    counts = confusion_counts(preds, targets, num_clusters, num_classes)
    rows, cols = linear_sum_assignment(p.size - counts)
    return {int(r): int(c) for r, c in zip(rows, cols)}


def cluster_accuracy(
    preds: Any, targets: Any, num_clusters: int | None = None, num_classes: int | None = None
) -> float:
    """Fraction of samples whose cluster is Hungarian-matched to their class (0 for no samples)."""
    p, _ = _pair(preds, targets)
    if p.size == 0:
        return 0.0
    counts = confusion_counts(preds, targets, num_clusters, num_classes)
    rows, cols = linear_sum_assignment(p.size - counts)
    return float(counts[rows, cols].sum()) / p.size


def _entropy(sizes: np.ndarray) -> float:
    sizes = sizes[sizes > 0].astype(np.float64)
    prob = sizes / sizes.sum()
    return float(-(prob * np.log(prob)).sum())


def normalized_mutual_info(preds: Any, targets: Any) -> float:
    """``MI(targets, preds) / mean(H(targets), H(preds))`` in nats, scikit-learn's conventions.

    It is 1.0 when both labelings put everything in one group (or are empty) and 0.0 when the mutual
    information is zero; label values are irrelevant (any permutation scores the same).
    """
    p, t = _pair(preds, targets)
    _, p = np.unique(p, return_inverse=True)
    _, t = np.unique(t, return_inverse=True)
    n_p, n_t = (int(p.max()) + 1, int(t.max()) + 1) if p.size else (0, 0)
    if n_p == n_t and n_p in (0, 1):
        return 1.0
    counts = confusion_counts(p, t, n_p, n_t).astype(np.float64)
    n = counts.sum()
    row, col = counts.sum(axis=1), counts.sum(axis=0)
    nz = counts > 0
    joint = counts[nz] / n
    outer = np.outer(row, col)[nz] / (n * n)
    mi = float((joint * (np.log(joint) - np.log(outer))).sum())
    if mi <= 0.0:
        return 0.0
    norm = max((_entropy(row) + _entropy(col)) / 2.0, np.finfo(np.float64).eps)
    return min(mi / norm, 1.0)


def cluster_sizes(preds: Any, num_clusters: int) -> list[int]:
    """Number of samples per cluster (zeros included), to spot collapse (clovaai/tunit#24)."""
    p = _as_labels(preds)
    return np.bincount(p, minlength=num_clusters)[:num_clusters].tolist()


def evaluate_clustering(preds: Any, targets: Any, num_clusters: int, num_classes: int | None = None) -> dict:
    """All clustering scores at once: ``acc``, ``nmi``, ``mapping`` (cluster -> class) and ``sizes``."""
    return {
        "acc": cluster_accuracy(preds, targets, num_clusters, num_classes),
        "nmi": normalized_mutual_info(preds, targets),
        "mapping": hungarian_match(preds, targets, num_clusters, num_classes),
        "sizes": cluster_sizes(preds, num_clusters),
    }
