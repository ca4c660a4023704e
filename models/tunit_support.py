"""TUNIT machinery outside the training maths: the official phase schedule, EMA helpers, the importer of
official ``model_N.ckpt`` files and the cluster-average styles used at inference."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from data.image_io import list_images, load_image
from data.transforms import to_tensor
from models.networks.tunit import VGG11_WIDTHS
from util.checkpoint import CheckpointError, load_file

#: (labelled-only epochs, GAN start, EMA start) in official epochs, main.py:117-141.
OFFICIAL_EPOCHS = {"unsup": (0, 65, 66), "semi": (20, 35, 36), "sup": (0, 0, 1)}
#: our network attributes -> keys of the official checkpoint dict (``<key>_state_dict``).
OFFICIAL_NAMES = {"netC": "C", "netC_ema": "C_EMA", "netD": "D", "netG": "G", "netG_ema": "G_EMA"}


class TunitSchedule:
    """Official phases of ``main.py`` as iteration numbers (no ``iters // 1000`` division: quirk S1).

    An official epoch is ``epoch_iters`` iterations, except the semi-supervised warm-up epochs, which run only
    ``max(int(epoch_iters * p), 100)`` labelled iterations each (capped at ``epoch_iters`` here so that tiny
    test epochs work). With the defaults: unsupervised GAN from 65k, G_ema from 66k, 200k in all.
    """

    def __init__(
        self,
        mode: str,
        epoch_iters: int = 1000,
        epochs: int = 200,
        p_semi: float = 0.0,
        gan_start: int = -1,
        ema_start: int = -1,
        semi_warm_epochs: int = 20,
    ) -> None:
        if mode not in OFFICIAL_EPOCHS:
            raise ValueError(f"unknown TUNIT mode {mode!r}; choose from {sorted(OFFICIAL_EPOCHS)}")
        if epoch_iters < 1:
            raise ValueError("--tunit_epoch_iters must be >= 1")
        warm, gan_epoch, ema_epoch = OFFICIAL_EPOCHS[mode]
        self.mode = mode
        self.epoch_iters = epoch_iters
        self.warm = semi_warm_epochs if mode == "semi" else warm
        self.n_sup = {"unsup": 0, "sup": epoch_iters, "semi": int(epoch_iters * p_semi)}[mode]
        self.warm_len = min(max(self.n_sup, 100), epoch_iters)
        self.total_steps = self.epoch_start(epochs)
        self.gan_start = gan_start if gan_start >= 0 else self.epoch_start(gan_epoch)
        self.ema_start = ema_start if ema_start >= 0 else self.epoch_start(ema_epoch)

    def epoch_start(self, epoch: int) -> int:
        """First iteration of official epoch ``epoch`` (0-based)."""
        return min(epoch, self.warm) * self.warm_len + max(epoch - self.warm, 0) * self.epoch_iters

    def locate(self, t: int) -> tuple[int, int, int]:
        """(epoch, position in it, its length) of iteration ``t``."""
        warm_total = self.warm * self.warm_len
        if t < warm_total:
            return t // self.warm_len, t % self.warm_len, self.warm_len
        rest = t - warm_total
        return self.warm + rest // self.epoch_iters, rest % self.epoch_iters, self.epoch_iters

    def labelled(self, t: int) -> bool:
        """Whether iteration ``t`` is a labelled one (semi: the first ``n_sup`` of each epoch)."""
        if self.mode != "semi":
            return self.mode == "sup"
        epoch, pos, _ = self.locate(t)
        return epoch < self.warm or pos < self.n_sup

    def epoch_end(self, t: int) -> bool:
        _, pos, length = self.locate(t)
        return pos == length - 1


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, beta: float) -> None:
    """``target <- beta * target + (1 - beta) * source`` on parameters only (official ``update_average``)."""
    src = dict(source.named_parameters())
    for name, p in target.named_parameters():
        p.copy_(beta * p + (1.0 - beta) * src[name])


@torch.no_grad()
def copy_buffers(target: nn.Module, source: nn.Module) -> None:
    """Copy every buffer (BN statistics, counters, AdaIN buffers): official ``copy_norm_params``."""
    src = dict(source.named_buffers())
    for name, b in target.named_buffers():
        b.copy_(src[name])


@contextlib.contextmanager
def repeated_bn_updates(net: nn.Module, times: int):
    """Inside, one train-mode forward of ``net`` moves its BatchNorm running statistics as ``times`` forwards
    of the same batch would (the fast TUNIT step runs a trunk once where the official step runs it on the
    same batch ``times`` times with unchanged weights).

    An update with momentum m maps a running statistic r to (1 - m) r + m s; ``times`` updates with the same
    batch statistic s give (1 - m)^times r + (1 - (1 - m)^times) s, i.e. one update with momentum
    1 - (1 - m)^times (equal up to float rounding); ``num_batches_tracked`` gains ``times``.
    """
    bns = [
        m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if times == 1 or not net.training or not bns:
        yield
        return
    if any(m.momentum is None for m in bns):
        raise ValueError(
            "repeated_bn_updates needs BatchNorm layers with a momentum (not a cumulative average)"
        )
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 1.0 - (1.0 - m.momentum) ** times
    try:
        yield
    finally:
        for m, momentum in zip(bns, saved):
            m.momentum = momentum
            m.num_batches_tracked.add_(times - 1)


def _find_malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; absent on macOS, Windows and musl
    except (AttributeError, OSError, TypeError):
        return None


_MALLOC_TRIM = _find_malloc_trim()


def release_free_heap() -> bool:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim(0)``); False where there is none.

    PyTorch's CPU tensors come from malloc, and glibc serves blocks under its adaptive mmap threshold (up to
    32 MB: most activations of a TUNIT step) from the heap, whose freed holes it keeps resident. The fast
    step calls this right before the D step (R1's double backward: the iteration's peak), so the resident
    set there is the live tensors plus what the D step itself fragments, not the holes the previous
    G step left behind. The numbers do not change; the cost is re-faulting the returned pages (docs/tunit.md).
    """
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


def official_checkpoint_path(run_dir: str, epoch: str | int) -> str | None:
    """``model_<epoch>.ckpt`` in an official run folder; for ``latest`` the last line of checkpoint.txt (or
    the highest N). None when the folder holds no official checkpoint."""
    if str(epoch) != "latest":
        path = os.path.join(run_dir, f"model_{epoch}.ckpt")
        return path if os.path.isfile(path) else None
    listing = os.path.join(run_dir, "checkpoint.txt")
    if os.path.isfile(listing):
        with open(listing) as f:
            names = [line.strip() for line in f if line.strip()]
        if names and os.path.isfile(os.path.join(run_dir, names[-1])):
            return os.path.join(run_dir, names[-1])
    if not os.path.isdir(run_dir):
        return None
    found = [
        (int(m.group(1)), n) for n in os.listdir(run_dir) if (m := re.fullmatch(r"model_(\d+)\.ckpt", n))
    ]
    return os.path.join(run_dir, max(found)[1]) if found else None


def official_state_dict(state: dict) -> dict:
    """Strip ``module.`` (DataParallel/DDP saves) and rename the pre-2020-06-17 ``blocks``/``block`` modules."""
    cleaned = {}
    for key, value in state.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        cleaned[key.replace(".blocks.", ".model.").replace(".block.", ".model.")] = value
    return cleaned


def load_official_checkpoint(model: nn.Module, path: str, names: list[str]) -> dict:
    """Load networks ``names`` of ``model`` strictly from an official ``model_N.ckpt``; returns the file's dict.

    ``inceptionNet_state_dict`` (K1) and ``epoch`` (K2: 4568 for the best-FID file) are ignored.
    """
    ckpt = load_file(path)
    for name in names:
        key = f"{OFFICIAL_NAMES[name]}_state_dict"
        if key not in ckpt:
            raise CheckpointError(f"{path} has no {key} (keys: {', '.join(sorted(ckpt))})")
        try:
            getattr(model, name).load_state_dict(official_state_dict(ckpt[key]), strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{path}: {key} does not fit {name} (check --crop_size, --output_k, --sty_dim): "
                f"{str(exc).splitlines()[0]}"
            ) from exc
    return ckpt


def style_images(root: str, size: int, channels: int, limit: int) -> torch.Tensor:
    """Up to ``limit`` images found recursively under ``root``, evenly spaced in sorted order (so every class
    folder contributes), resized bilinearly to ``size`` x ``size`` in [-1, 1]."""
    paths = list_images(root, recursive=True, what="style images")
    if limit > 0 and len(paths) > limit:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]
    resize = InterpolationMode.BILINEAR
    return torch.stack([to_tensor(TF.resize(load_image(p, channels), [size, size], resize)) for p in paths])


@torch.no_grad()
def cluster_styles(
    assign_net: nn.Module, style_net: nn.Module, images: torch.Tensor, k: int, device, batch_size: int = 50
) -> tuple[torch.Tensor, list[int]]:
    """Mean style code of each cluster (validation.py's AVG grids): cluster = argmax ``assign_net.iic``,
    style = ``style_net.moco``. Returns (K, sty_dim) means (zeros for empty clusters) and the counts."""
    sums, counts = None, torch.zeros(k, dtype=torch.long)
    for start in range(0, images.size(0), batch_size):
        x = images[start : start + batch_size].to(device)
        cluster = torch.argmax(assign_net.iic(x), 1)
        codes = style_net.moco(x)
        if sums is None:
            sums = codes.new_zeros(k, codes.size(1))
        sums.index_add_(0, cluster, codes)
        counts += torch.bincount(cluster.cpu(), minlength=k)
    styles = sums / counts.clamp(min=1).to(sums).unsqueeze(1)
    return styles, counts.tolist()


@contextlib.contextmanager
def eval_mode(*nets: nn.Module | None):
    """Run with ``nets`` in eval mode, then restore each one's mode."""
    nets = tuple(n for n in nets if n is not None)
    modes = [n.training for n in nets]
    for n in nets:
        n.eval()
    try:
        yield
    finally:
        for n, mode in zip(nets, modes):
            n.train(mode)


def parse_widths(spec: str) -> tuple[int | str, ...]:
    """``"64,M,128,M"`` -> (64, "M", 128, "M"); empty -> VGG11."""
    if not spec:
        return VGG11_WIDTHS
    return tuple("M" if v.strip().upper() == "M" else int(v) for v in spec.split(","))


# ---------------------------------------------------------------------------- official FID protocol (F1/F2)
#: torchvision's ImageNet statistics, which validation.py applies before pytorch-fid's own 2x - 1 (quirk F1).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
OFFICIAL_FID_PROTOCOL = "tunit-official-fid/1"


def official_fid_input(images: torch.Tensor, size: int = 299) -> torch.Tensor:
    """[-1, 1] images -> the tensor that reaches the Inception convolutions in ``calcFIDBatch`` (quirk F1).

    validation.py maps to [0, 1], normalises with the ImageNet mean/std and resizes to 299 by *nearest*
    interpolation; pytorch-fid's wrapper then resizes bilinearly to 299 (a no-op at that size) and applies its
    own ``2x - 1``. So the network sees ``2 ((x + 1) / 2 - mean) / std - 1`` (about [-5.3, 4.3] instead of
    [-1, 1]), nearest-resized, from unquantised floats. The standard pipeline
    (:func:`util.metrics.fid.prepare_images`) feeds ``2 q - 1`` of the 8-bit image q, resized bilinearly.
    """
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = ((images + 1.0) / 2.0 - mean) / std
    x = F.interpolate(x, size=[size, size])  # mode "nearest", as upstream
    return 2 * x - 1


def official_fid_budget(n_t: int, num_classes: int) -> tuple[int, int]:
    """(m, e) of ``calcFIDBatch`` for a fake budget ``n_t`` per class (upstream: ``(min + max) // 2`` of the
    per-class training-set sizes, which are also the reals per class of the two-domain sets).

    ``m = max(50 // classes, 1)`` reference draws; ``e = (n_t // m) // (classes - 1)`` references per draw
    and content images per other class (``n_t // m`` with one class). Each class gets ``(classes - 1) m e``
    fakes (``m e`` with one class), never more than n_t, so upstream's cut to n_t removes nothing.
    """
    m = max(50 // num_classes, 1)
    return m, (n_t // m) // max(num_classes - 1, 1)


def official_fid_pairs(
    labels: torch.Tensor, target: int, num_classes: int, m: int, e: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(content, reference) indices into ``labels`` of the fakes of class ``target``, in upstream's order.

    ``m`` draws of ``e`` distinct class-``target`` references (``randperm(n_target)[:e]``, drawn first); then
    for each other class ``(target + j + 1) % classes``, j = 0, 1, ... (with one class: the class itself),
    its first ``e`` images are translated with each draw in turn.
    """
    own = torch.nonzero(labels == target).flatten()
    draws = [own[torch.randperm(own.numel(), generator=generator)[:e]] for _ in range(m)]
    others = [(target + j + 1) % num_classes for j in range(max(num_classes - 1, 1))]
    content, refs = [], []
    for cls in others:
        first = torch.nonzero(labels == cls).flatten()[:e]
        if first.numel() != e or any(d.numel() != e for d in draws):
            # Upstream pairs batches of different sizes here (an error, or uninitialised feature rows).
            raise ValueError(
                f"official FID protocol: e = {e} references and content images per class, but class "
                f"{target} has {own.numel()} and class {cls} {torch.sum(labels == cls).item()} images"
            )
        for d in draws:
            content.append(first)
            refs.append(d)
    empty = torch.zeros(0, dtype=torch.long)
    return (torch.cat(content), torch.cat(refs)) if content else (empty, empty)


def _maybe_flip(images: torch.Tensor, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """RandomHorizontalFlip(0.5) of upstream's training transform, one draw per image from ``generator``."""
    if not flip or images.size(0) == 0:
        return images
    mask = torch.rand(images.size(0), generator=generator) < 0.5
    return torch.where(mask.view(-1, 1, 1, 1).to(images.device), images.flip(-1), images)


@torch.no_grad()
def official_per_class_fid(
    model,
    references,
    reals,
    extractor,
    *,
    class_names: list[str] | None = None,
    n_target: int = 0,
    cap_reals: bool = False,
    flip_references: bool = False,
    flip_reals: bool = True,
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int = 50,
) -> dict:
    """Per-class FID and mFID by clovaai/tunit's training-time protocol (``calcFIDBatch``, quirks F1/F2).

    Args:
        model: a TUNIT model; ``netG_ema`` and ``netC_ema`` run in eval mode.
        references: an encoded split with images (``util.metrics.tunit_fid.encode_split``): upstream's "val"
            images, the source of content and reference images (AnimalFaces: the last 50 of each class).
        reals: an encoded split with images: the training images, the reals of each class.
        class_names: the classes, in label order (default: the label numbers).
        n_target: n_t; 0: ``(min + max) // 2`` of the per-class counts of ``reals`` (upstream).
        cap_reals: only the first n_t reals of each class (upstream for all sets but AnimalFaces).
        flip_references / flip_reals: upstream's training transform flips (p 0.5) the reals and, for
            AnimalFaces, the "val" images too (one draw per image and evaluation).
        seed: the generator of the flips (references first, then per class: reals, then the m draws).

    Fakes are ``G_ema(content, C_ema.moco(reference))`` fed unquantised; every image goes through
    :func:`official_fid_input` and ``extractor.features``. Returns the report of
    ``util.metrics.tunit_fid.per_class_fid`` with one mode, ``reference``, plus ``n_target``, ``draws`` (m)
    and ``per_draw`` (e).
    """
    device = device if device is not None else next(model.netG_ema.parameters()).device
    if class_names is None:
        class_names = [str(c) for c in range(int(max(references.labels.max(), reals.labels.max())) + 1)]
    num_classes = len(class_names)
    counts = torch.bincount(reals.labels, minlength=num_classes).tolist()
    n_t = n_target or (min(counts) + max(counts)) // 2
    m, e = official_fid_budget(n_t, num_classes)
    generator = torch.Generator().manual_seed(seed)
    g, c = model.netG_ema, model.netC_ema
    everything = torch.arange(references.labels.numel())
    val = _maybe_flip(references.image_batch(everything, "cpu"), flip_references, generator)

    def features(chunks) -> np.ndarray:
        feats = [extractor.features(official_fid_input(x)) for x in chunks]
        return np.concatenate(feats) if feats else np.zeros((0, extractor.dims), dtype=np.float32)

    from util.metrics.fid import fid_from_features  # evaluation only: keeps scipy out of model imports

    result: dict = {"fid": {}, "n_fake": {}}
    n_real = {}
    with eval_mode(g, c):
        codes = torch.cat([c.moco(x.to(device)) for x in val.split(batch_size)])
        for cls, name in enumerate(class_names):
            own = torch.nonzero(reals.labels == cls).flatten()
            own = own[:n_t] if cap_reals else own
            real_images = _maybe_flip(reals.image_batch(own, "cpu"), flip_reals, generator)
            real = features(x.to(device) for x in real_images.split(batch_size) if x.numel())
            content, refs = official_fid_pairs(references.labels, cls, num_classes, m, e, generator)
            fake = features(
                g.decode(g.cnt_encoder(val[i].to(device)), codes[j])
                for i, j in zip(content.split(batch_size), refs.split(batch_size))
                if i.numel()
            )
            n_real[name] = int(own.numel())
            result["n_fake"][name] = int(len(fake))
            ok = len(fake) >= 2 and len(real) >= 2
            result["fid"][name] = fid_from_features(fake, real) if ok else None
    scored = [v for v in result["fid"].values() if v is not None]
    result.update(mfid=float(np.mean(scored)) if scored else None, scored=len(scored))
    return {
        "protocol": OFFICIAL_FID_PROTOCOL,
        "dims": extractor.dims,
        "seed": seed,
        "n_target": n_t,
        "draws": m,
        "per_draw": e,
        "images": int(references.labels.numel()),
        "classes": class_names,
        "n_real": n_real,
        "reference": result,
    }
