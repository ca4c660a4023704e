"""Per-class FID and mean FID (mFID) of a TUNIT model on a class-folder split.

TUNIT's paper scores AnimalFaces/AFHQ by mFID: for every ground-truth class i, images of the *other* classes are
translated into class i's style and compared with real images of class i; mFID is the mean over the classes.
The official code does this only during training (``validation/validation.py``) with non-standard Inception
preprocessing (known official quirk F1: ImageNet-normalised, nearest-resized inputs that the network then rescales again)
and a few samples per class (F2). Here the protocol runs on a trained model's held-out split with the
framework's pytorch-fid pipeline (:mod:`util.metrics.fid`), so scores are standard FIDs.

Protocol, for each class i of the split (``scripts/tunit/cluster_eval.py --fid``):

- **content**: every image of the other classes, class after class in the split's order; with ``max_images``
  the first ``ceil(max_images / (n_classes - 1))`` of each other class, cut to ``max_images``
  (the official draw likewise takes the first images of every other class);
- **styles**, two modes:
  ``reference`` (the official protocol): per-image style codes ``C_ema.moco(x_ref)`` of class-i images, one
  per content image; the class-i images are cycled in a seeded random order (fresh permutation each round),
  so each serves as a reference equally often (to within one);
  ``cluster``: the average ``C_ema`` style of the cluster that the Hungarian assignment (the one behind the
  cluster accuracy, :func:`util.metrics.cluster.hungarian_match`) matches to class i; the average is over all
  images of the split in that cluster (validation.py's AVG grids). A class without a matched non-empty
  cluster gets no score;
- **fakes**: ``G_ema.decode(G_ema.cnt_encoder(content), style)``, quantised to 8 bits as saved PNGs;
- **reals**: the class-i images of the same split as the model sees them (S x S, bilinear, no flip), 8 bits;
- FID(fakes, reals) with pool3 features (``dims``) and the pytorch-fid Fréchet distance; mFID = mean over the
  classes that got a score (a class needs at least two reals and two fakes).

Cluster assignment uses ``C`` or ``C_ema`` (``--tunit_cluster_net``), styles always ``C_ema``; every network
runs in eval mode. FID grows as sets shrink: compare mFIDs only on the same split and ``max_images``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from models.tunit_support import eval_mode
from util.metrics.cluster import hungarian_match
from util.metrics.fid import FeatureExtractor, fid_from_features, load_extractor, prepare_images

__all__ = [
    "STYLE_MODES",
    "EncodedSplit",
    "encode_split",
    "content_indices",
    "reference_pairs",
    "class_to_cluster",
    "per_class_fid",
    "format_per_class_fid",
]

#: ``reference``: per-image styles of the target class (official); ``cluster``: the matched cluster's mean
STYLE_MODES = ("reference", "cluster")
PROTOCOL = "tunit-per-class-fid/1"


@dataclass
class EncodedSplit:
    """What the guiding networks say about every image of a split, plus the images (8-bit) for translation."""

    labels: torch.Tensor  # (N,) ground-truth classes
    clusters: torch.Tensor  # (N,) argmax of the assigning net's IIC head
    codes: torch.Tensor  # (N, sty_dim) C_ema style codes, on CPU
    num_clusters: int
    images: torch.Tensor | None = None  # (N, C, S, S) uint8, as the dataset delivered them

    def image_batch(self, index: torch.Tensor, device: torch.device | str) -> torch.Tensor:
        """Images ``index`` in [-1, 1], computed as ``data.transforms.to_tensor`` does (bit-identical)."""
        if self.images is None:
            raise ValueError("the split was encoded without images (keep_images=False)")
        return self.images[index].to(device).float().div_(255.0).mul_(2.0).sub_(1.0)


@torch.no_grad()
def encode_split(
    model,
    dataset,
    device: torch.device | str,
    batch_size: int = 50,
    cluster_net: str | None = None,
    keep_images: bool = True,
    num_workers: int = 0,
) -> EncodedSplit:
    """Clusters, labels and style codes of every image of ``dataset`` (its ``A`` view), in one pass.

    ``cluster_net`` ``"C"`` or ``"C_ema"`` picks the assigning network (default: the model's
    ``--tunit_cluster_net``). With ``keep_images`` the images are kept as uint8 (4x smaller than floats; the
    [-1, 1] tensors of :func:`data.transforms.to_tensor` convert back exactly).
    """
    cluster_net = cluster_net or getattr(model.opt, "tunit_cluster_net", "C_ema")
    assign = model.netC if cluster_net == "C" else model.netC_ema
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    clusters, labels, codes, images = [], [], [], []
    num_clusters = 0
    with eval_mode(model.netC_ema, getattr(model, "netC", None)):
        for batch in loader:
            x = batch["A"].to(device)
            logits = assign.iic(x)
            num_clusters = logits.size(1)
            clusters.append(torch.argmax(logits, 1).cpu())
            codes.append(model.netC_ema.moco(x).cpu())
            labels.append(torch.as_tensor(batch["label"]))
            if keep_images:
                images.append(((batch["A"].float() + 1.0) / 2.0 * 255.0).round().to(torch.uint8))
    return EncodedSplit(
        labels=torch.cat(labels).long(),
        clusters=torch.cat(clusters).long(),
        codes=torch.cat(codes),
        num_clusters=num_clusters,
        images=torch.cat(images) if keep_images else None,
    )


def content_indices(labels: torch.Tensor, target: int, max_images: int = 0) -> torch.Tensor:
    """Indices of the images translated into class ``target``: every other class's, class by class.

    With ``max_images > 0`` each other class gives its first ``ceil(max_images / n_other)`` images and the
    list is cut to ``max_images``, so every source class is represented.
    """
    others = [int(c) for c in torch.unique(labels) if int(c) != target]
    per_class = [torch.nonzero(labels == c).flatten() for c in others]
    if max_images > 0 and others:
        share = math.ceil(max_images / len(others))
        per_class = [idx[:share] for idx in per_class]
    index = torch.cat(per_class) if per_class else torch.zeros(0, dtype=torch.long)
    return index[:max_images] if max_images > 0 else index


def reference_pairs(
    labels: torch.Tensor, target: int, max_images: int = 0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(content indices, reference indices) for class ``target``: one class-``target`` reference per content
    image, cycling through the class's images in fresh random orders (each used equally often, to within one)."""
    content = content_indices(labels, target, max_images)
    own = torch.nonzero(labels == target).flatten()
    if own.numel() == 0 or content.numel() == 0:
        return content, torch.zeros(0, dtype=torch.long)
    rounds = math.ceil(content.numel() / own.numel())
    order = torch.cat([own[torch.randperm(own.numel(), generator=generator)] for _ in range(rounds)])
    return content, order[: content.numel()]


def class_to_cluster(split: EncodedSplit, num_classes: int) -> dict[int, int | None]:
    """Class -> Hungarian-matched cluster (None when the class is unmatched or its cluster is empty)."""
    mapping = hungarian_match(split.clusters, split.labels, split.num_clusters, num_classes)
    sizes = torch.bincount(split.clusters, minlength=split.num_clusters)
    inverse: dict[int, int | None] = {c: None for c in range(num_classes)}
    for cluster, cls in mapping.items():
        if sizes[cluster] > 0:
            inverse[cls] = cluster
    return inverse


@torch.no_grad()
def _translated_features(
    model,
    split: EncodedSplit,
    content: torch.Tensor,
    styles: torch.Tensor,
    extractor: FeatureExtractor,
    device: torch.device | str,
    batch_size: int,
) -> np.ndarray:
    """Features of G_ema(content[j], styles[j]) for every j (``styles`` is (len(content), sty_dim))."""
    g = model.netG_ema
    feats = []
    for start in range(0, content.numel(), batch_size):
        x = split.image_batch(content[start : start + batch_size], device)
        s = styles[start : start + batch_size].to(device)
        feats.append(extractor.features_of_tensors(g.decode(g.cnt_encoder(x), s)))
    return np.concatenate(feats) if feats else np.zeros((0, extractor.dims), dtype=np.float32)


@torch.no_grad()
def _real_features(
    split: EncodedSplit, index: torch.Tensor, extractor: FeatureExtractor, batch_size: int
) -> np.ndarray:
    """Features of the split's images ``index`` (8-bit, ``uint8 / 255`` as pytorch-fid), resized in chunks
    so that a large class never holds all its 299x299 copies at once."""
    feats = [
        extractor.features(prepare_images(split.images[index[i : i + batch_size]].float() / 255.0))
        for i in range(0, index.numel(), batch_size)
    ]
    return np.concatenate(feats) if feats else np.zeros((0, extractor.dims), dtype=np.float32)


def _fid_or_none(fake: np.ndarray, real: np.ndarray) -> float | None:
    # np.cov of one sample is NaN: a class needs two images on each side.
    return fid_from_features(fake, real) if len(fake) >= 2 and len(real) >= 2 else None


def _mean(values) -> float | None:
    scored = [v for v in values if v is not None]
    return float(np.mean(scored)) if scored else None


def per_class_fid(
    model,
    dataset=None,
    *,
    split: EncodedSplit | None = None,
    class_names: list[str] | None = None,
    extractor: FeatureExtractor | None = None,
    weights: str | None = None,
    dims: int = 2048,
    device: torch.device | str | None = None,
    batch_size: int = 50,
    fid_batch_size: int = 50,
    modes: tuple[str, ...] = STYLE_MODES,
    max_images: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> dict | None:
    """Per-class FID and mFID of a TUNIT model (``netG_ema``, ``netC_ema``, ``netC``) by the module's protocol.

    Args:
        model: the TUNIT model (test or train instance); its networks must already be on ``device``.
        dataset: the class-folder split (``TunitDataset`` outside training: no flips); not needed with ``split``.
        split: a precomputed :func:`encode_split` with images (e.g. to change the cluster assignment).
        class_names: names for the report (default: ``dataset.classes`` or the label numbers).
        extractor: the Inception feature extractor; default :func:`load_extractor` (``weights``, ``dims``).
        modes: any of :data:`STYLE_MODES`.
        max_images: translations per class (0: all images of the other classes).
        seed: the reference order of ``reference`` mode.

    Returns ``{'protocol', 'dims', 'seed', 'images', 'classes', 'n_real', <mode>: {'fid': {class: FID or None},
    'mfid', 'scored', 'n_fake', ('cluster': {class: cluster or None})}}``, or None (after one log line) when
    there are no Inception weights.
    """
    unknown = [m for m in modes if m not in STYLE_MODES]
    if unknown:
        raise ValueError(f"unknown FID style mode(s) {unknown}; valid: {', '.join(STYLE_MODES)}")
    if device is None:
        device = next(model.netG_ema.parameters()).device
    if extractor is None:
        extractor = load_extractor(weights, dims=dims, device=device, batch_size=fid_batch_size)
        if extractor is None:
            return None
    if split is None:
        if dataset is None:
            raise ValueError("per_class_fid needs a dataset or an encoded split")
        split = encode_split(model, dataset, device, batch_size, keep_images=True)
    if class_names is None:
        class_names = list(getattr(dataset, "classes", [])) or [
            str(c) for c in range(int(split.labels.max()) + 1)
        ]
    num_classes = len(class_names)
    generator = torch.Generator().manual_seed(seed)
    matched = class_to_cluster(split, num_classes) if "cluster" in modes else {}
    counts = torch.bincount(split.clusters, minlength=split.num_clusters).clamp(min=1)
    cluster_means = (
        torch.zeros(split.num_clusters, split.codes.size(1)).index_add_(
            0, split.clusters, split.codes.float()
        )
        / counts.unsqueeze(1).float()
    )

    report: dict = {
        "protocol": PROTOCOL,
        "dims": extractor.dims,
        "seed": seed,
        "max_images": max_images,
        "images": int(split.labels.numel()),
        "classes": class_names,
        "n_real": {},
    }
    results = {m: {"fid": {}, "n_fake": {}} for m in modes}
    with eval_mode(model.netG_ema):
        for cls in tqdm(range(num_classes), desc="per-class FID", disable=not progress, leave=False):
            name = class_names[cls]
            own = torch.nonzero(split.labels == cls).flatten()
            real = _real_features(split, own, extractor, batch_size)
            report["n_real"][name] = int(own.numel())
            for mode in modes:
                if mode == "reference":
                    content, refs = reference_pairs(split.labels, cls, max_images, generator)
                    styles = split.codes[refs]
                else:
                    content = content_indices(split.labels, cls, max_images)
                    cluster = matched.get(cls)
                    if cluster is None:
                        content = content[:0]
                    styles = cluster_means[cluster if cluster is not None else 0].expand(content.numel(), -1)
                fake = _translated_features(model, split, content, styles, extractor, device, batch_size)
                results[mode]["fid"][name] = _fid_or_none(fake, real)
                results[mode]["n_fake"][name] = int(len(fake))
    for mode, result in results.items():
        fids = list(result["fid"].values())
        result["mfid"] = _mean(fids)
        result["scored"] = sum(v is not None for v in fids)
        if mode == "cluster":
            result["cluster"] = {class_names[c]: matched[c] for c in range(num_classes)}
        report[mode] = result
    return report


def format_per_class_fid(report: dict) -> list[str]:
    """Human-readable lines: one per class and mode, then the mFIDs."""
    modes = [m for m in STYLE_MODES if m in report]
    lines = [f"{'class':<24}" + "".join(f"{'FID ' + m:>16}" for m in modes)]
    for name in report["classes"]:
        cells = []
        for m in modes:
            value = report[m]["fid"][name]
            cells.append(f"{value:>16.4f}" if value is not None else f"{'-':>16}")
        lines.append(f"{name:<24}" + "".join(cells))
    for m in modes:
        r = report[m]
        mfid = f"{r['mfid']:.4f}" if r["mfid"] is not None else "none"
        lines.append(f"mFID {m}: {mfid} ({r['scored']} of {len(report['classes'])} classes)")
    return lines
