"""Projection heads on top of generator features.

``PatchSampleF`` is CUT's ``netF`` (``--netF mlp_sample`` / ``sample``): it picks the same random spatial
positions in several feature maps, embeds each picked feature vector with a per-layer two-layer MLP and
L2-normalises it. PatchNCE (``models/losses/patchnce.py``) and SRUNIT's semantic-robustness loss consume its
output.

Deliberate deviations from the official ``PatchSampleF`` (same state_dict keys, same values):

* The MLPs are built in ``__init__`` from given channel counts instead of lazily at the first call, so an
  optimizer and a resumed checkpoint can see them before any forward pass (known official bug 17).
* Positions are gathered as ``feat.flatten(2)[:, :, ids]`` instead of ``feat.permute(0, 2, 3, 1)[...]``. The
  official layout sends channels-last gradients back into the generator, and PyTorch's CPU InstanceNorm2d
  backward is wrong at batch 1 for such strides (known official bug 16); this layout keeps the gradient contiguous.
* Patch ids come from a ``torch.Generator`` passed by the caller (or are injected), not NumPy's global RNG
  (known official bug 11); as in the official code one id set is shared by every image of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.networks.norms import at_least_fp32

__all__ = ["L2_NORM_MODES", "PatchSampleF", "l2_normalize", "sample_patch_ids"]

#: Names accepted by ``l2_normalize`` / ``PatchSampleF(l2_norm=...)``.
L2_NORM_MODES = ("cut", "srunit")


def l2_normalize(x: torch.Tensor, mode: str = "cut") -> torch.Tensor:
    """Normalise the rows of ``x`` (dim 1) to unit L2 norm, with the epsilon convention of one official repo.

    ``"cut"``: ``x / (||x|| + 1e-7)`` (CUT ``Normalize``). ``"srunit"``: ``(x + 1e-12) / ||x + 1e-12||``
    (SRUNIT's edited ``Normalize``; the shift keeps the norm's gradient finite at ``x = 0``). The two differ
    by ~1e-7 relative on ordinary features; the option exists so losses match each repo to float precision.
    Half-precision rows are normalised in float32 (and returned so): fp16 squares of small features underflow
    to a zero norm and the division gives inf.
    """
    x = at_least_fp32(x)
    if mode == "cut":
        return x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-7)
    if mode == "srunit":
        shifted = x + 1e-12
        return shifted / shifted.pow(2).sum(1, keepdim=True).sqrt()
    raise ValueError(f"unknown l2_norm mode {mode!r}; valid: {', '.join(L2_NORM_MODES)}")


def sample_patch_ids(
    num_positions: int,
    num_patches: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``min(num_patches, num_positions)`` distinct flat positions in random order.

    Without ``generator`` the permutation is drawn on ``device`` from its global RNG (seeded by the trainer):
    a GPU step then draws on the GPU instead of copying CPU ids over and waiting for the copy, and a CPU run
    draws exactly what it always did. A given ``generator`` is drawn on its own device (a seeded CPU generator
    gives the same ids whatever device the features live on). ``num_patches <= 0`` means every position, in
    order (the official ``num_patches=0`` mode keeps the full map).
    """
    if num_patches <= 0:
        return torch.arange(num_positions, device=device)
    draw_on = generator.device if generator is not None else device
    perm = torch.randperm(num_positions, generator=generator, device=draw_on)
    return perm[: min(num_patches, num_positions)].to(device)


class PatchSampleF(nn.Module):
    """CUT's patch sampler with optional per-layer MLP heads (``netF``).

    Args:
        in_channels: channel count of each tapped feature map, in the order the features are passed
            (for CUT's default ``--nce_layers 0,4,8,12,16``: ``input_nc, 2*ngf, 4*ngf, 4*ngf, 4*ngf``).
            Ignored when ``use_mlp`` is False.
        nc: MLP width and output dimension (``--netF_nc``, official default 256).
        use_mlp: True for ``--netF mlp_sample`` (keys ``mlp_<i>.0`` and ``mlp_<i>.2``: Linear, ReLU, Linear),
            False for ``--netF sample`` (no parameters; features are only gathered and normalised).
        l2_norm: ``"cut"`` or ``"srunit"``, see :func:`l2_normalize`.

    Weights keep PyTorch's default initialisation; the model applies its ``--init_type`` / ``--init_gain``
    (CUT: xavier, 0.02) like for every other network.
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (),
        nc: int = 256,
        use_mlp: bool = True,
        l2_norm: str = "cut",
    ) -> None:
        super().__init__()
        if l2_norm not in L2_NORM_MODES:
            raise ValueError(f"unknown l2_norm mode {l2_norm!r}; valid: {', '.join(L2_NORM_MODES)}")
        if use_mlp and len(in_channels) == 0:
            raise ValueError("use_mlp=True needs the channel count of every tapped layer (in_channels)")
        self.use_mlp = use_mlp
        self.nc = nc
        self.l2_norm = l2_norm
        self.num_mlps = len(in_channels) if use_mlp else 0
        for i, channels in enumerate(in_channels if use_mlp else ()):
            # Attribute names give the official state_dict keys ``mlp_<i>.0`` and ``mlp_<i>.2``.
            setattr(self, f"mlp_{i}", nn.Sequential(nn.Linear(channels, nc), nn.ReLU(), nn.Linear(nc, nc)))

    def mlp(self, index: int) -> nn.Module:
        """The MLP head of tapped layer ``index`` (``mlp_<index>``)."""
        if not 0 <= index < self.num_mlps:
            raise IndexError(f"PatchSampleF has {self.num_mlps} MLP heads; asked for mlp_{index}")
        return getattr(self, f"mlp_{index}")

    def forward(
        self,
        feats: Sequence[torch.Tensor],
        num_patches: int = 256,
        patch_ids: Sequence[torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        mlp_indices: Sequence[int] | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Sample, embed and normalise patches of each feature map.

        Args:
            feats: feature maps ``B x C_l x H_l x W_l``.
            num_patches: positions per map (capped at ``H_l * W_l``; ``<= 0``: all positions).
            patch_ids: one 1-D index tensor per map into the flattened ``H_l * W_l`` grid, e.g. the ids
                returned by an earlier call, so queries and keys use the same positions; ``None`` draws them.
            generator: source of the drawn ids (``None``: the global RNG of the features' device).
            mlp_indices: which MLP head embeds each map (default ``0, 1, ...``). SRUNIT passes ``[choice]``
                to embed one layer's features with that layer's head.

        Returns:
            ``(samples, ids)``: per map a ``(B * P) x D`` tensor of unit-norm rows, batch-major (rows
            ``b * P ... b * P + P - 1`` belong to image ``b``; ``D = nc`` with MLPs, else ``C_l``), and the
            ids used.
        """
        if patch_ids is not None and len(patch_ids) != len(feats):
            raise ValueError(f"got {len(patch_ids)} patch id tensors for {len(feats)} feature maps")
        if mlp_indices is None:
            mlp_indices = range(len(feats))
        elif len(mlp_indices) != len(feats):
            raise ValueError(f"got {len(mlp_indices)} MLP indices for {len(feats)} feature maps")

        samples: list[torch.Tensor] = []
        used_ids: list[torch.Tensor] = []
        for i, (feat, mlp_index) in enumerate(zip(feats, mlp_indices)):
            flat = feat.flatten(2)  # B x C x HW, a view of a contiguous map
            if patch_ids is None:
                ids = sample_patch_ids(flat.shape[2], num_patches, generator, feat.device)
            else:
                ids = torch.as_tensor(patch_ids[i], dtype=torch.long, device=feat.device)
            # Index the spatial axis of the B x C x HW view: the backward scatters into a fresh contiguous
            # tensor, so the gradient reaching the generator is NCHW-contiguous (known official bug 16).
            x = flat[:, :, ids].transpose(1, 2).flatten(0, 1)  # (B * P) x C, batch-major
            if self.use_mlp:
                x = self.mlp(mlp_index)(x)
            samples.append(l2_normalize(x, self.l2_norm))
            used_ids.append(ids)
        return samples, used_ids
