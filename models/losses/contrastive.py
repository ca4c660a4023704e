"""Losses of TUNIT's guiding network and GAN: IIC mutual information, MoCo contrastive loss with a key queue,
hinge adversarial loss and the R1 gradient penalty.

The forms follow clovaai/tunit ``tools/ops.py`` operation by operation (``bmm``/``mm`` logits, masked clamping,
``sum / B`` for R1) so that float32 results match the official code bit for bit; the one deliberate change is
that IIC clamps out of place (upstream writes into ``expand()``-ed views, which autograd rejects since torch
1.5, clovaai/tunit#3). Values and gradients are the same.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, autograd

from .gan import GANLoss

__all__ = [
    "joint_distribution",
    "iic_loss",
    "moco_loss",
    "MoCoQueue",
    "hinge_adv_loss",
    "r1_penalty",
]


def joint_distribution(p: Tensor, p_tf: Tensor) -> Tensor:
    """Symmetrised, normalised joint ``P`` (K, K) of two batches of cluster probabilities (B, K)."""
    if p.shape != p_tf.shape or p.dim() != 2:
        raise ValueError(
            f"expected two (B, K) tensors of equal shape, got {tuple(p.shape)}, {tuple(p_tf.shape)}"
        )
    joint = (p.unsqueeze(2) * p_tf.unsqueeze(1)).sum(dim=0)
    joint = (joint + joint.t()) / 2.0
    return joint / joint.sum()


def iic_loss(p: Tensor, p_tf: Tensor, lamb: float = 1.0, eps: float = 1e-10) -> Tensor:
    """Negative mutual information between the cluster assignments of two views (Ji et al., IIC).

    ``p`` and ``p_tf`` are softmax probabilities (B, K). With ``P`` from :func:`joint_distribution` and its
    marginals ``P_i``, ``P_j`` (taken before clamping), ``P``, ``P_i`` and ``P_j`` are clamped below at
    ``eps``; clamped entries get no gradient, as with upstream's masked assignment. Returns
    ``-sum_ij P_ij (log P_ij - lamb log P_j - lamb log P_i)``: ``<= 0`` for ``lamb = 1``, ``-log K`` for
    confident, balanced, view-consistent assignments, 0 for uniform ones.
    """
    joint = joint_distribution(p, p_tf)
    k = joint.size(0)
    p_i = joint.sum(dim=1).view(k, 1).expand(k, k)
    p_j = joint.sum(dim=0).view(1, k).expand(k, k)
    # torch.where instead of upstream's in-place masked write on the expanded views (clovaai/tunit#3).
    joint = torch.where(joint < eps, torch.full_like(joint, eps), joint)
    p_i = torch.where(p_i < eps, torch.full_like(p_i, eps), p_i)
    p_j = torch.where(p_j < eps, torch.full_like(p_j, eps), p_j)
    loss = -joint * (torch.log(joint) - lamb * torch.log(p_j) - lamb * torch.log(p_i))
    return loss.sum()


def moco_loss(query: Tensor, key: Tensor, queue: Tensor, temperature: float = 0.07) -> Tensor:
    """InfoNCE with one positive key per query and the queue rows as negatives (MoCo, He et al.).

    ``logits = [q_b . k_b, q_b . Q_1, ..., q_b . Q_n] / T``, cross-entropy towards index 0, batch mean.
    TUNIT uses plain dot products: neither the queries, the keys nor the queue are L2-normalised. ``key`` is
    detached (it comes from the momentum encoder). With ``query = 0`` the loss is ``log(1 + n)``.
    """
    n, k = query.shape[0], queue.shape[0]
    key = key.detach()
    logit_pos = torch.bmm(query.view(n, 1, -1), key.view(n, -1, 1))
    logit_neg = torch.mm(query.view(n, -1), queue.t().view(-1, k))
    logits = torch.cat([logit_pos.view(n, 1), logit_neg], dim=1)
    target = torch.zeros(n, dtype=torch.long, device=query.device)
    return F.cross_entropy(logits / temperature, target)


class MoCoQueue:
    """FIFO of momentum-encoder keys used as MoCo negatives; keeps the newest ``max_size`` rows.

    TUNIT starts it from one batch of keys (``reset``) and appends each iteration's keys after the losses
    are computed (``push``). The queue holds detached tensors on the device of the keys; ``state_dict`` /
    ``load_state_dict`` let a model save it in its checkpoint (upstream rebuilds it from one batch).
    """

    def __init__(self, max_size: int = 1024) -> None:
        if max_size < 1:
            raise ValueError("the MoCo queue needs max_size >= 1")
        self.max_size = max_size
        self.keys: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.size(0)

    def reset(self, keys: Tensor) -> None:
        """Replace the content by ``keys`` (the newest ``max_size`` of them)."""
        self.keys = None
        self.push(keys)

    def push(self, keys: Tensor) -> None:
        """Append ``keys`` (B, dim) and drop the oldest rows beyond ``max_size``."""
        keys = keys.detach()
        merged = keys if self.keys is None else torch.cat([self.keys, keys], dim=0)
        self.keys = merged[-self.max_size :] if merged.size(0) > self.max_size else merged

    @property
    def tensor(self) -> Tensor:
        """The queue as an (n, dim) tensor; fails before the first ``reset``/``push``."""
        if self.keys is None:
            raise RuntimeError("the MoCo queue is empty: call reset() with a batch of keys first")
        return self.keys

    def state_dict(self) -> dict[str, object]:
        return {"max_size": self.max_size, "keys": None if self.keys is None else self.keys.detach().cpu()}

    def load_state_dict(self, state: Mapping[str, object], device: torch.device | str | None = None) -> None:
        self.max_size = int(state["max_size"])  # type: ignore[arg-type]
        keys = state["keys"]
        self.keys = None if keys is None else torch.as_tensor(keys).to(device)


_HINGE = GANLoss("hinge")


def hinge_adv_loss(logit: Tensor, mode: str) -> Tensor:
    """TUNIT's ``calc_adv_loss`` naming of the shared hinge loss: ``d_real`` = mean relu(1 - l),
    ``d_fake`` = mean relu(1 + l), ``g`` = -mean l."""
    if mode not in ("d_real", "d_fake", "g"):
        raise ValueError(f"unknown hinge mode {mode!r}; choose from ['d_fake', 'd_real', 'g']")
    return _HINGE(logit, target_is_real=mode != "d_fake", for_discriminator=mode != "g")


def r1_penalty(d_out: Tensor, x_in: Tensor) -> Tensor:
    """R1 penalty ``||d(sum_b D(x_b)) / dx||^2 / B`` on real inputs (Mescheder et al., 2018).

    ``x_in`` must require grad before the discriminator runs. The graph is kept (``create_graph``) so the
    penalty can be back-propagated into D; TUNIT weights it by ``w_gp = 10``.
    """
    (grad,) = autograd.grad(outputs=d_out.sum(), inputs=x_in, create_graph=True, retain_graph=True)
    return grad.pow(2).sum() / x_in.size(0)
