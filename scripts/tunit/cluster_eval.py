"""Cluster accuracy, NMI and cluster-average styles of a trained TUNIT model.

    python scripts/tunit/cluster_eval.py --name EXP --dataroot DATA --phase val --tunit_holdout 50 \
        --tunit_classes animal_faces10 --output_k 10 [--save_styles styles.pt] [test.py options]

Loads the guiding networks like test.py (our checkpoint or an official ``model_N.ckpt`` run folder), assigns
every image of the class-folder split to ``argmax C.iic`` (``--tunit_cluster_net C_ema`` or ``C``; the official
accuracy uses C) with the validation transform, and prints one JSON line: Hungarian-matched accuracy (as the
official ``STATC/Acc``, meaningful when K equals the number of classes), NMI and the per-cluster sizes (an
empty cluster is the collapse users report, clovaai/tunit#24). ``--save_styles`` writes the mean C_ema style
of each non-empty cluster, which ``test.py --tunit_styles`` renders (the paper's figures, #13/#26).
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
from models.tunit_support import eval_mode  # noqa: E402
from options import TestOptions  # noqa: E402
from util.distributed import DistInfo, select_device  # noqa: E402
from util.metrics.cluster import evaluate_clustering  # noqa: E402
from util.test_loop import load_for_inference  # noqa: E402


@torch.no_grad()
def predict(model, dataset: TunitDataset, device: torch.device, batch_size: int):
    """(clusters, labels, style codes) of every image of ``dataset`` (x_org view, no flip)."""
    assign = model.netC if model.opt.tunit_cluster_net == "C" else model.netC_ema
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=model.opt.num_threads)
    clusters, labels, codes = [], [], []
    with eval_mode(model.netC_ema, model.netC):
        for batch in loader:
            x = batch["A"].to(device)
            clusters.append(torch.argmax(assign.iic(x), 1).cpu())
            codes.append(model.netC_ema.moco(x).cpu())
            labels.append(batch["label"])
    return torch.cat(clusters), torch.cat(labels), torch.cat(codes)


def main(argv: list[str] | None = None) -> int:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--save_styles", default="", help="write the cluster-average styles to this .pt file")
    args, rest = own.parse_known_args(argv)
    opt = TestOptions().parse(["--model", "tunit", "--dataset_mode", "tunit", *rest], save=False)
    model = models.create_model(opt)
    if opt.dry_run:
        model.print_networks()
        return 0
    device = select_device(opt.gpu_ids, DistInfo())
    load_for_inference(model, opt)
    model.to(device)
    dataset = TunitDataset(opt)
    clusters, labels, codes = predict(model, dataset, device, max(opt.batch_size, 50))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
