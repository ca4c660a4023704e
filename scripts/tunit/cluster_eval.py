"""Cluster accuracy, NMI, cluster-average styles and per-class FID of a trained TUNIT model.

    python scripts/tunit/cluster_eval.py --name EXP --dataroot DATA --phase val --tunit_holdout 50 \
        --tunit_classes animal_faces10 --output_k 10 [--save_styles styles.pt] [--fid] [test.py options]

Loads the guiding networks like test.py (our checkpoint or an official ``model_N.ckpt`` run folder), assigns
every image of the class-folder split to ``argmax C.iic`` (``--tunit_cluster_net C_ema`` or ``C``; the official
accuracy uses C) with the validation transform, and prints one JSON line: Hungarian-matched accuracy (as the
official ``STATC/Acc``, meaningful when K equals the number of classes), NMI and the per-cluster sizes (an
empty cluster is the collapse users report, clovaai/tunit#24). ``--save_styles`` writes the mean C_ema style
of each non-empty cluster, which ``test.py --tunit_styles`` renders (the paper's figures, #13/#26).

``--fid`` adds the per-class FID and mFID of :mod:`util.metrics.tunit_fid` on the same split (other classes
translated into each class's style by reference images and/or the Hungarian-matched cluster's average style),
prints them and writes them to ``--fid_json`` (default ``<results_dir>/<name>/<phase>_<epoch>/tunit_fid.json``).
The FID options of test.py apply (``--fid_weights``, ``--fid_dims``, ``--fid_batch_size``, ``--fid_num_images``
translations per class, ``--seed`` for the reference order). Without Inception weights one line says so and
the clustering scores are still reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import models  # noqa: E402
from data.tunit_dataset import TunitDataset  # noqa: E402
from models.tunit_support import official_per_class_fid  # noqa: E402
from options import TestOptions  # noqa: E402
from util.distributed import DistInfo, select_device  # noqa: E402
from util.metrics.cluster import evaluate_clustering  # noqa: E402
from util.metrics.fid import FIDWeightsError, load_extractor  # noqa: E402
from util.metrics.tunit_fid import STYLE_MODES, encode_split, format_per_class_fid, per_class_fid  # noqa: E402
from util.test_loop import load_for_inference  # noqa: E402


def fid_modes(spec: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in spec.split(",") if m.strip())
    bad = [m for m in modes if m not in STYLE_MODES]
    if bad or not modes:
        raise argparse.ArgumentTypeError(
            f"--fid_modes: use a comma-separated subset of {', '.join(STYLE_MODES)}"
        )
    return modes


def main(argv: list[str] | None = None) -> int:
    # Exact flags only: an abbreviation meant for a test option must reach TestOptions, not match one here.
    own = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    own.add_argument("--save_styles", default="", help="write the cluster-average styles to this .pt file")
    own.add_argument("--fid", action="store_true", help="also score per-class FID and mFID")
    own.add_argument(
        "--fid_modes",
        type=fid_modes,
        default=STYLE_MODES,
        help="styles for --fid: reference (per-image styles of the class, official), cluster (matched "
        "cluster's average style), or both (default: reference,cluster)",
    )
    own.add_argument(
        "--fid_json", default="", help="where --fid writes its report (default: the results dir)"
    )
    args, rest = own.parse_known_args(argv)
    opt = TestOptions().parse(["--model", "tunit", "--dataset_mode", "tunit", *rest], save=False)
    model = models.create_model(opt)
    if opt.dry_run:
        model.print_networks()
        return 0
    device = select_device(opt.gpu_ids, DistInfo(), explicit=opt.was_given("gpu_ids"))
    load_for_inference(model, opt)
    model.to(device)
    dataset = TunitDataset(opt)
    # One pass of the guiding nets serves the clustering scores, the styles and (with --fid) the FID.
    split = encode_split(
        model, dataset, device, max(opt.batch_size, 50), keep_images=args.fid, num_workers=opt.num_threads
    )
    clusters, labels, codes = split.clusters, split.labels, split.codes
    k = opt.output_k
    report = evaluate_clustering(clusters, labels, num_clusters=k, num_classes=len(dataset.classes))
    report.update(images=len(dataset), classes=len(dataset.classes), output_k=k)
    print(json.dumps(report))
    if report["sizes"].count(0):
        print(f"warning: {report['sizes'].count(0)} of {k} clusters are empty", file=sys.stderr)
    if args.save_styles:
        sums = torch.zeros(k, codes.size(1)).index_add_(0, clusters, codes)
        keep = [c for c, n in enumerate(report["sizes"]) if n > 0]
        styles = sums[keep] / torch.tensor([report["sizes"][c] for c in keep], dtype=torch.float32).unsqueeze(
            1
        )
        torch.save({"styles": styles, "clusters": keep, "counts": report["sizes"]}, args.save_styles)
        print(f"wrote the styles of clusters {keep} to {args.save_styles}")
    if args.fid:
        return run_fid(model, dataset, split, opt, args, device)
    return 0


def official_fid(model, dataset, split, opt, device) -> dict | None:
    """``--tunit_fid_official``: upstream's protocol (docs/tunit.md), reals from the training split."""
    extractor = load_extractor(opt.fid_weights, dims=opt.fid_dims, device=device, batch_size=opt.fid_batch_size)
    if extractor is None:
        return None
    reals = encode_split(model, TunitDataset(opt.replace(phase="train")), device, 50, keep_images=True)
    held_out = os.path.normpath(dataset.dir) == os.path.normpath(opt.dataroot)
    return official_per_class_fid(model, split, reals, extractor, class_names=list(dataset.classes),
                                  cap_reals=not held_out, flip_references=held_out, seed=opt.seed,
                                  device=device)  # fmt: skip


def run_fid(model, dataset, split, opt, args, device) -> int:
    """Per-class FID and mFID: printed, and written as JSON; 0 also when there are no Inception weights."""
    try:
        fid = official_fid(model, dataset, split, opt, device) if opt.tunit_fid_official else per_class_fid(
            model,
            dataset,
            split=split,
            weights=opt.fid_weights,
            dims=opt.fid_dims,
            device=device,
            batch_size=max(opt.batch_size, 50),
            fid_batch_size=opt.fid_batch_size,
            modes=args.fid_modes,
            max_images=opt.fid_num_images,
            seed=opt.seed,
            progress=not opt.no_progress,
        )
    except FIDWeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if fid is None:  # no weights: load_extractor has printed the one line saying so
        return 0
    fid.update(name=opt.name, epoch=opt.epoch, phase=opt.phase, tunit_cluster_net=opt.tunit_cluster_net)
    print("\n".join(format_per_class_fid(fid)))
    path = args.fid_json or os.path.join(
        opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}", "tunit_fid.json"
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fid, f, indent=2)
    print(f"wrote the per-class FID to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
