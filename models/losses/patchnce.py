"""PatchNCE: the patch-wise InfoNCE loss of CUT (Park et al., ECCV 2020).

For query ``q_i`` (a patch of the output) the positive is the key ``k_i`` at the same position of the input
and the negatives are the keys at the other sampled positions of the same image. Matches the official
``PatchNCELoss`` value for value, with one fix: negatives are grouped by the batch size of the tensors
actually passed, not by ``opt.batch_size`` (known official bug 10: the official grouping mixes images, or fails, whenever
the features' batch differs from ``--batch_size``: per-process batches under data parallelism, the per-GPU
slice of the data-dependent init, a last smaller batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.networks.norms import at_least_fp32

__all__ = ["NEGATIVE_DIAGONAL", "PatchNCELoss", "patch_nce_loss"]

#: Logit written over each query's own key in the negative block (official ``masked_fill_(..., -10.0)``:
#: exp(-10) is negligible but the column is kept, so the logits have ``P + 1`` columns).
NEGATIVE_DIAGONAL = -10.0


def patch_nce_loss(
    feat_q: torch.Tensor,
    feat_k: torch.Tensor,
    batch_size: int,
    nce_T: float = 0.07,
    all_negatives_from_minibatch: bool = False,
) -> torch.Tensor:
    """Per-patch PatchNCE loss.

    Args:
        feat_q: ``(B * P) x D`` queries, batch-major (as returned by ``PatchSampleF``); gradients flow here.
        feat_k: ``(B * P) x D`` keys at the same positions; detached (the official loss trains the
            encoder and the F head through the queries only).
        batch_size: ``B``, the number of images the rows came from (the features' real batch size).
        nce_T: temperature (``--nce_T``).
        all_negatives_from_minibatch: use the patches of every image as negatives (SinCUT's
            ``--nce_includes_all_negatives_from_minibatch``) instead of only those of the same image.

    Returns:
        The cross-entropy with target 0 (the positive) for each of the ``B * P`` queries, shape ``(B * P,)``.
    """
    if feat_q.shape != feat_k.shape or feat_q.dim() != 2:
        raise ValueError(
            f"feat_q and feat_k must be equal (N x D) shapes, got {feat_q.shape}, {feat_k.shape}"
        )
    # Float32 outside autocast: a bf16 dot product of unit vectors keeps ~3 digits, and /T (x14) then
    # the softmax amplify that error.
    with torch.autocast(feat_q.device.type, enabled=False):
        return _patch_nce(at_least_fp32(feat_q), at_least_fp32(feat_k), batch_size, nce_T,
                          all_negatives_from_minibatch)  # fmt: skip


def _patch_nce(feat_q, feat_k, batch_size: int, nce_T: float, all_negatives_from_minibatch: bool):
    num_rows, dim = feat_q.shape
    feat_k = feat_k.detach()

    l_pos = (feat_q * feat_k).sum(dim=1, keepdim=True)  # (B*P) x 1

    groups = 1 if all_negatives_from_minibatch else batch_size
    if groups <= 0 or num_rows % groups != 0:
        raise ValueError(f"{num_rows} patch rows cannot be split into {groups} images")
    q = feat_q.view(groups, -1, dim)
    k = feat_k.view(groups, -1, dim)
    npatches = q.shape[1]
    l_neg = torch.bmm(q, k.transpose(1, 2))  # groups x P x P
    diagonal = torch.eye(npatches, device=feat_q.device, dtype=torch.bool)[None]
    l_neg = l_neg.masked_fill(diagonal, NEGATIVE_DIAGONAL).view(-1, npatches)

    logits = torch.cat((l_pos, l_neg), dim=1) / nce_T
    target = torch.zeros(num_rows, dtype=torch.long, device=feat_q.device)
    return F.cross_entropy(logits, target, reduction="none")


class PatchNCELoss(nn.Module):
    """Module form of :func:`patch_nce_loss` holding the temperature and the negatives policy.

    Args:
        nce_T: temperature (official default 0.07).
        all_negatives_from_minibatch: see :func:`patch_nce_loss` (official default False).
    """

    def __init__(self, nce_T: float = 0.07, all_negatives_from_minibatch: bool = False) -> None:
        super().__init__()
        self.nce_T = nce_T
        self.all_negatives_from_minibatch = all_negatives_from_minibatch

    def forward(self, feat_q: torch.Tensor, feat_k: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Per-patch losses, shape ``(B * P,)``; the caller takes the mean."""
        return patch_nce_loss(feat_q, feat_k, batch_size, self.nce_T, self.all_negatives_from_minibatch)

    def extra_repr(self) -> str:
        return f"nce_T={self.nce_T}, all_negatives_from_minibatch={self.all_negatives_from_minibatch}"
