"""Re-score every saved checkpoint of an experiment with FID/KID and print a table.

``python -m util.metrics.rescore --name EXP [--checkpoints_dir ./checkpoints] [--dataroot DATA] [--phase test]``

Each ``<label>.pth`` of ``checkpoints_dir/EXP`` (``latest``, ``best``, epoch numbers, ``iter_N``) is loaded
with the options it was trained with (architecture, sizes, model flags) and its translations of
``<phase>A``/``<phase>B`` are scored as ``test.py --compute_fid`` would. The real-image features are
computed once and cached. The table is also written as CSV, so the epoch to report is chosen from numbers,
not guessed.
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import sys

import models
from data.image_io import DataError
from options import TestOptions
from options.checkpoint_options import training_dataroot
from util import checkpoint as ckpt_io
from util.distributed import DistInfo, select_device
from util.metrics.evaluate import evaluate_translation
from util.metrics.fid import FIDWeightsError, load_extractor

#: options that describe this scoring run, not the trained model: never copied from the checkpoint
RUN_OPTIONS = {
    "isTrain",
    "name",
    "checkpoints_dir",
    "dataroot",
    "phase",
    "epoch",
    "gpu_ids",
    "batch_size",
    "num_threads",
    "torch_threads",
    "serial_batches",
    "no_flip",
    "load_size",
    "dry_run",
    "verbose",
    "suffix",
    "no_progress",
    "results_dir",
    "num_test",
    "max_dataset_size",
    "synthetic_data",
    "display_winsize",
    "aspect_ratio",
    "eval",
    "output_path",
    "input_dir",
    "test_direction",
    "compute_fid",
    "fid_weights",
    "fid_batch_size",
    "fid_cache_dir",
    "fid_num_images",
    "fid_dims",
}


def list_checkpoints(expr_dir: str) -> list[str]:
    """Our checkpoint files in ``expr_dir`` (official ``<epoch>_net_X.pth`` files are per-network, skipped)."""
    paths = [p for p in glob.glob(os.path.join(expr_dir, "*.pth")) if "_net_" not in os.path.basename(p)]
    return sorted(paths)


def options_for(ckpt: dict, args: argparse.Namespace):
    """Test options for scoring ``ckpt``: its training options, with this run's folders, device and flags."""
    saved = ckpt["options"]
    trained_on = training_dataroot(saved)
    if not args.dataroot and trained_on and not os.path.isdir(trained_on):  # else: "no scores", exit status 0
        raise ValueError(f"--dataroot {trained_on} (the training data of {args.name}) no longer exists: "
                         "pass --dataroot DATA")  # fmt: skip
    argv = [
        "--model",
        ckpt["model"],
        "--name",
        args.name,
        "--checkpoints_dir",
        args.checkpoints_dir,
        "--dataroot",
        args.dataroot or saved["dataroot"],
        "--phase",
        args.phase,
        "--gpu_ids",
        args.gpu_ids or "0",
        "--num_threads",
        "0",
    ]
    base = TestOptions().parse(argv, save=False)
    known = base.to_dict()
    trained = {k: v for k, v in saved.items() if k in known and k not in RUN_OPTIONS}
    return base.replace(
        **trained,
        load_size=saved.get("crop_size", base.crop_size),
        fid_weights=args.fid_weights,
        fid_batch_size=args.fid_batch_size,
        fid_cache_dir=args.fid_cache_dir,
        fid_num_images=args.num_images,
        fid_dims=args.dims,
        num_test=0,
        no_progress=True,
    )


def saved_epoch(progress: dict) -> int | str:
    """The epoch a checkpoint holds: the trainer stores where to resume, which after a finished epoch is
    the next one (``1.pth`` resumes at epoch 2 with no iteration done), so that case counts one back."""
    if "epoch" not in progress:
        return "-"
    return progress["epoch"] - 1 if progress.get("epoch_iter", 0) == 0 else progress["epoch"]


def sort_key(row: dict) -> tuple:
    return (row["step"], row["checkpoint"])


def format_table(rows: list[dict]) -> str:
    if not rows:
        return "(no scores)"
    metrics = [
        k for k in rows[0] if k not in ("checkpoint", "epoch", "step") and not k.startswith("kid_std_")
    ]
    best = min(rows, key=lambda r: r.get("fid", float("inf")))
    header = ["checkpoint", "epoch", "step", *metrics]
    lines = [header]
    for r in rows:
        mark = " *" if r is best else ""
        lines.append(
            [
                r["checkpoint"] + mark,
                str(r["epoch"]),
                str(r["step"]),
                *(f"{r[m]:.4f}" if m in r else "-" for m in metrics),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n(* lowest mean FID)"


def rescore(args: argparse.Namespace) -> list[dict]:
    expr_dir = os.path.join(args.checkpoints_dir, args.name)
    paths = list_checkpoints(expr_dir)
    if not paths:
        raise ckpt_io.CheckpointError(f"no checkpoints (*.pth) in {expr_dir}")
    rows, model, device = [], None, None
    for path in paths:
        ckpt = ckpt_io.load_checkpoint(path)
        if model is None:
            opt = options_for(ckpt, args)
            device = select_device(opt.gpu_ids, DistInfo(), explicit=args.gpu_ids is not None)
            if load_extractor(opt.fid_weights, opt.fid_dims, device, opt.fid_batch_size) is None:
                return []
            model = models.create_model(opt)
        model.load_inference_state(ckpt, source=path)
        model.to(device)
        if args.eval:
            model.eval()
        metrics = evaluate_translation(model, opt, device=device, progress=sys.stderr.isatty())
        progress = ckpt.get("progress", {})
        label = os.path.splitext(os.path.basename(path))[0]
        row = {
            "checkpoint": label,
            "epoch": saved_epoch(progress),
            "step": progress.get("global_step", 0),
        }
        rows.append({**row, **(metrics or {})})
        print(
            f"{label}: " + (", ".join(f"{k} {v:.4f}" for k, v in (metrics or {}).items()) or "no scores"),
            flush=True,
        )
    return sorted(rows, key=sort_key)


def write_csv(rows: list[dict], path: str) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m util.metrics.rescore", description=__doc__.split("\n")[0])
    p.add_argument("--name", required=True, help="experiment name (a folder of --checkpoints_dir)")
    p.add_argument("--checkpoints_dir", default="./checkpoints")
    p.add_argument(
        "--dataroot", default=None, help="dataset folder (default: the one the run was trained on)"
    )
    p.add_argument("--phase", default="test", help="score <phase>A / <phase>B")
    p.add_argument("--gpu_ids", default=None, help="default 0 (the CPU when there is no GPU); -1 for CPU")
    p.add_argument(
        "--fid_weights", default=None, help="Inception weights file (default: $FID_WEIGHTS, caches)"
    )
    p.add_argument("--fid_batch_size", type=int, default=50)
    p.add_argument(
        "--dims", type=int, default=2048, choices=[64, 192, 768, 2048], help="Inception feature size"
    )
    p.add_argument("--fid_cache_dir", default="", help="real-image feature cache ('none': off)")
    p.add_argument("--eval", action="store_true", help="networks in eval mode (as test.py --eval)")
    p.add_argument("--num_images", type=int, default=0, help="images per direction (0: all)")
    p.add_argument(
        "--csv", default=None, help="where to write the table (default: checkpoints_dir/name/rescore.csv)"
    )
    args = p.parse_args(argv)
    try:
        rows = rescore(args)
    except FIDWeightsError as exc:  # a weights file that cannot score: a usage error, as missing weights
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ckpt_io.CheckpointError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not rows:
        return 2
    print(format_table(rows))
    csv_path = args.csv or os.path.join(args.checkpoints_dir, args.name, "rescore.csv")
    write_csv(rows, csv_path)
    print(f"wrote {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
