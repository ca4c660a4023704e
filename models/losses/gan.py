"""Adversarial objectives (lsgan, vanilla, wgangp, hinge, nonsaturating) and the WGAN-GP gradient penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GAN_MODES: tuple[str, ...] = ("lsgan", "vanilla", "wgangp", "hinge", "nonsaturating")


class GANLoss(nn.Module):
    """``loss(prediction, target_is_real, for_discriminator=True)`` for a discriminator's raw output.

    lsgan: MSE to the label (CycleGAN/CUT default); vanilla: BCE-with-logits to the label; wgangp: -mean for
    real, +mean for fake; nonsaturating: softplus(-x) for real, softplus(x) for fake; hinge: relu(1 - x) /
    relu(1 + x) for the discriminator and -mean(x) for the generator (``for_discriminator=False``). Only hinge
    depends on ``for_discriminator``; the others use the same formula for G (with ``target_is_real=True``).
    All return the mean over every element. (CUT's nonsaturating returns per-sample means that its model then
    averages; with equal-sized samples that is the same number.)
    """

    def __init__(self, gan_mode: str, target_real_label: float = 1.0, target_fake_label: float = 0.0) -> None:
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise ValueError(f"unknown gan_mode {gan_mode!r}; valid modes: {', '.join(GAN_MODES)}")
        self.gan_mode = gan_mode
        # Scalars expanded to the prediction's shape at each call (no per-call allocation of a full target).
        # Non-persistent: a criterion is never checkpointed, so it should add no state_dict keys.
        self.register_buffer("real_label", torch.tensor(target_real_label), persistent=False)
        self.register_buffer("fake_label", torch.tensor(target_fake_label), persistent=False)

    def get_target_tensor(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        label = self.real_label if target_is_real else self.fake_label
        # .to is a no-op once the criterion lives on the prediction's device and dtype.
        return label.to(device=prediction.device, dtype=prediction.dtype).expand_as(prediction)

    def forward(self, prediction: Tensor, target_is_real: bool, for_discriminator: bool = True) -> Tensor:
        mode = self.gan_mode
        if mode == "lsgan":
            return F.mse_loss(prediction, self.get_target_tensor(prediction, target_is_real))
        if mode == "vanilla":
            return F.binary_cross_entropy_with_logits(
                prediction, self.get_target_tensor(prediction, target_is_real)
            )
        if mode == "wgangp":
            return -prediction.mean() if target_is_real else prediction.mean()
        if mode == "nonsaturating":
            return F.softplus(-prediction if target_is_real else prediction).mean()
        if for_discriminator:
            return F.relu(1.0 - prediction).mean() if target_is_real else F.relu(1.0 + prediction).mean()
        if not target_is_real:
            raise ValueError("the hinge generator loss is only defined for target_is_real=True")
        return -prediction.mean()


def cal_gradient_penalty(
    netD: nn.Module,
    real: Tensor,
    fake: Tensor,
    type: str = "mixed",
    constant: float = 1.0,
    lambda_gp: float = 10.0,
) -> tuple[Tensor, Tensor | None]:
    """WGAN-GP penalty ``lambda_gp * mean((||grad D(x)||_2 - constant)^2)``; returns (penalty, flat gradients).

    ``x`` is ``real``, ``fake`` or (``mixed``) a per-sample random interpolation between them, drawn with
    ``torch.rand(B, 1)`` like the CycleGAN repo. Inputs are detached first: the penalty regularises D only, and
    the official code's ``requires_grad_`` on the caller's tensors is avoided. ``lambda_gp <= 0`` gives
    ``(0, None)``. The penalty keeps its graph (``create_graph``) so it can be backpropagated into D.
    """
    if lambda_gp <= 0.0:
        return real.new_zeros(()), None
    if type == "real":
        x = real.detach()
    elif type == "fake":
        x = fake.detach()
    elif type == "mixed":
        alpha = torch.rand(real.shape[0], 1, device=real.device).view(-1, *([1] * (real.dim() - 1)))
        x = alpha * real.detach() + (1 - alpha) * fake.detach()
    else:
        raise ValueError(f"unknown gradient penalty type {type!r}; valid types: real, fake, mixed")
    x.requires_grad_(True)
    out = netD(x)
    (grad,) = torch.autograd.grad(out, x, grad_outputs=torch.ones_like(out), create_graph=True)
    grad = grad.reshape(real.shape[0], -1)
    # The 1e-16 keeps the norm's gradient finite at a zero gradient (official constant).
    penalty = (((grad + 1e-16).norm(2, dim=1) - constant) ** 2).mean() * lambda_gp
    return penalty, grad
