"""Fréchet Inception Distance exactly as pytorch-fid computes it, plus KID from the same features.

The pipeline, step for step as pytorch-fid (which is what the papers report):

1. decode each image to 8-bit RGB and scale to [0, 1] (``uint8 / 255`` in float32);
2. resize to 299x299, bilinear, ``align_corners=False``, no antialiasing;
3. scale to [-1, 1] and take the 2048-d pool3 features of the FID Inception (:mod:`util.metrics.inception`);
4. mean and covariance (``np.cov``, float64) of each set; the Fréchet distance
   ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))`` with ``scipy.linalg.sqrtm``: when the product is singular
   (fewer images than dimensions) eps*I is added to both covariances, and a negligible imaginary part
   of the square root (numerical noise) is dropped.

Translated images held in memory are first quantised to 8 bits exactly as ``test.py`` writes them
(``util.image_utils.tensor2im``), so an in-memory score equals the score of the saved PNG files.

Weights: :mod:`util.metrics.fid_weights` finds them and refuses, in one line (:class:`FIDWeightsError`), any
file that is not the FID Inception; without weights the metric logs one line and returns None, and the CLI
below, asked for nothing but a score, exits with status 2.

CLI: ``python -m util.metrics.fid DIR_A DIR_B [--fid_weights P] [--batch_size 50] [--device cpu] [--kid]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import warnings

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from data.image_io import list_images, load_image
from util.metrics.fid_weights import (  # noqa: F401 (the weights API is also reached through this module)
    EXPECTED_WEIGHTS,
    FID_CACHE_ENV,
    FID_WEIGHTS_ENV,
    FID_WEIGHTS_FILE,
    FID_WEIGHTS_URL,
    NO_WEIGHTS_REASON,
    PIPELINE_VERSION,
    FIDWeightsError,
    find_fid_weights,
    load_fid_inception,
    missing_weights_reason,
    read_state_dict,
    weights_id,
)
from util.metrics.inception import INPUT_SIZE, FIDInceptionV3
from util.metrics.kid import DEFAULT_SUBSET_SIZE, DEFAULT_SUBSETS, kernel_inception_distance

_logged: set[str] = set()


def log_once(message: str) -> None:
    """Print ``message`` the first time only: a skipped metric is reported once, not at every evaluation."""
    if message not in _logged:
        _logged.add(message)
        print(message, flush=True)


# ---------------------------------------------------------------------------- features
def prepare_images(images01: torch.Tensor) -> torch.Tensor:
    """[0, 1] images of any size -> 299x299 in [-1, 1]: bilinear, no antialias, as pytorch-fid."""
    if images01.shape[1] == 1:
        images01 = images01.expand(-1, 3, -1, -1)  # grayscale is read as RGB by pytorch-fid too
    if tuple(images01.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        images01 = F.interpolate(
            images01, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
        )
    return 2 * images01 - 1


def quantize(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] network outputs -> [0, 1] floats through 8 bits, with ``tensor2im``'s truncation."""
    u8 = ((images.detach().float().clamp(-1, 1) + 1) / 2 * 255).to(torch.uint8)
    return u8.float() / 255


class _ImageFiles(Dataset):
    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        arr = np.asarray(load_image(self.paths[i], 3))
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255
        # Resized per image so folders of mixed sizes batch together; identical to resizing the batch.
        return prepare_images(x[None])[0]


class FeatureExtractor:
    """Inception pool3 features of tensors or folders, in batches, on one device."""

    def __init__(
        self, net: FIDInceptionV3, weights: str, device: str | torch.device = "cpu", batch_size: int = 50
    ) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device)
        self.weights = weights
        self.weights_id = weights_id(weights) if os.path.isfile(weights) else weights
        self.batch_size = batch_size

    @property
    def dims(self) -> int:
        return self.net.dims

    @torch.no_grad()
    def features(self, prepared: torch.Tensor) -> np.ndarray:
        """Features of images already 299x299 in [-1, 1]."""
        out = [
            self.net(prepared[i : i + self.batch_size].to(self.device)).cpu()
            for i in range(0, prepared.shape[0], self.batch_size)
        ]
        return torch.cat(out).numpy().astype(np.float32)

    def features_of_tensors(self, images: torch.Tensor, quantized: bool = True) -> np.ndarray:
        """Features of network outputs in [-1, 1]; ``quantized`` scores them as the saved 8-bit files."""
        x01 = quantize(images) if quantized else (images.detach().float().clamp(-1, 1) + 1) / 2
        return self.features(prepare_images(x01))

    def features_of_folder(
        self, folder: str, cache_dir: str | None = None, progress: bool = False, num_workers: int = 0
    ) -> np.ndarray:
        """Features of every image file in ``folder`` (not recursive), cached in ``cache_dir`` if given."""
        paths = list_images(folder, what="images to score")
        cache = self._cache_file(folder, paths, cache_dir) if cache_dir else None
        if cache is not None and os.path.isfile(cache):
            with np.load(cache) as data:
                return data["features"]
        loader = DataLoader(_ImageFiles(paths), batch_size=self.batch_size, num_workers=num_workers)
        feats = np.concatenate(
            [
                self.features(b)
                for b in tqdm(loader, desc=f"FID features {folder}", disable=not progress, leave=False)
            ]
        )
        if cache is not None:
            os.makedirs(cache_dir, exist_ok=True)
            tmp = f"{cache}.tmp{os.getpid()}.npz"
            np.savez(tmp, features=feats, folder=os.path.abspath(folder), weights=self.weights_id)
            os.replace(tmp, cache)
        return feats

    def _cache_file(self, folder: str, paths: list[str], cache_dir: str) -> str:
        """Key: folder path, names/sizes/mtimes of its files, weights hash, feature size and pipeline."""
        h = hashlib.sha256()
        h.update(json.dumps([os.path.abspath(folder), self.weights_id, self.dims, PIPELINE_VERSION]).encode())
        for p in sorted(paths):
            st = os.stat(p)
            h.update(f"{os.path.basename(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return os.path.join(
            cache_dir, f"{os.path.basename(os.path.normpath(folder))}-{h.hexdigest()[:20]}.npz"
        )


_extractors: dict[tuple, FeatureExtractor] = {}


def load_extractor(
    weights: str | None = None, dims: int = 2048, device: str | torch.device = "cpu", batch_size: int = 50
) -> FeatureExtractor | None:
    """The feature extractor (built once per process), or None after one log line when there are no weights."""
    path = find_fid_weights(weights)
    if path is None:
        log_once(f"FID/KID skipped: {missing_weights_reason(weights)}")
        return None
    key = (os.path.abspath(path), dims, str(torch.device(device)))
    if key not in _extractors:
        _extractors[key] = FeatureExtractor(load_fid_inception(path, dims), path, device, batch_size)
    extractor = _extractors[key]
    extractor.batch_size = batch_size
    return extractor


def default_cache_dir() -> str:
    return os.environ.get(FID_CACHE_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "unpaired_i2i", "fid"
    )


# ---------------------------------------------------------------------------- distances
def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows are samples) in float64, as pytorch-fid."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # A singular product is expected with few samples; it is detected below, not by this warning.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # Singular product (fewer samples than dimensions): regularise both covariances, as pytorch-fid.
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > 1e-3:
            raise ValueError(f"sqrtm(sigma1 @ sigma2) has an imaginary component of {imag:.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    return frechet_distance(*feature_statistics(feats_a), *feature_statistics(feats_b))


def score_features(
    feats_a: np.ndarray,
    feats_b: np.ndarray,
    kid: bool = True,
    kid_subsets: int = DEFAULT_SUBSETS,
    kid_subset_size: int = DEFAULT_SUBSET_SIZE,
) -> dict:
    """{'fid'} and, with ``kid``, {'kid', 'kid_std'} of two feature sets."""
    result = {"fid": fid_from_features(feats_a, feats_b)}
    if kid:
        result["kid"], result["kid_std"] = kernel_inception_distance(
            feats_a, feats_b, kid_subsets, kid_subset_size
        )
    return result


def compute_folder_metrics(
    dir_a: str,
    dir_b: str,
    weights: str | None = None,
    batch_size: int = 50,
    device: str = "cpu",
    dims: int = 2048,
    cache_dir: str | None = None,
    kid: bool = True,
    progress: bool = False,
    num_workers: int = 0,
) -> dict | None:
    """FID (and KID) between the images of two folders; None when no weights are available."""
    extractor = load_extractor(weights, dims=dims, device=device, batch_size=batch_size)
    if extractor is None:
        return None
    feats = [extractor.features_of_folder(d, cache_dir, progress, num_workers) for d in (dir_a, dir_b)]
    return {**score_features(*feats, kid=kid), "n_a": len(feats[0]), "n_b": len(feats[1])}


# ---------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m util.metrics.fid", description=__doc__.split("\n")[0])
    parser.add_argument("dir_a")
    parser.add_argument("dir_b")
    parser.add_argument(
        "--fid_weights", default=None, help=f"weights file (default: ${FID_WEIGHTS_ENV}, caches)"
    )
    parser.add_argument("--batch_size", type=int, default=50)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dims", type=int, default=2048, choices=[64, 192, 768, 2048])
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--kid", action=argparse.BooleanOptionalAction, default=True, help="also compute KID")
    parser.add_argument(
        "--cache_dir",
        default=None,
        help=f"feature cache (default: ${FID_CACHE_ENV} or ~/.cache/unpaired_i2i/fid; 'none': off)",
    )
    args = parser.parse_args(argv)
    if find_fid_weights(args.fid_weights) is None:
        # Asked for a score explicitly, so no weights is a failure (status 2); inside training or test.py
        # the same situation only skips the metric.
        print(f"error: {missing_weights_reason(args.fid_weights)}", file=sys.stderr)
        return 2
    cache = None if (args.cache_dir or "").lower() == "none" else (args.cache_dir or default_cache_dir())
    try:
        result = compute_folder_metrics(
            args.dir_a,
            args.dir_b,
            args.fid_weights,
            args.batch_size,
            args.device,
            args.dims,
            cache,
            args.kid,
            progress=sys.stderr.isatty(),
            num_workers=args.num_workers,
        )
    except FIDWeightsError as exc:  # a usage error like missing weights: the same status
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"FID: {result['fid']:.6f}")
    if args.kid:
        print(f"KID: {result['kid']:.6f} ± {result['kid_std']:.6f}")
    print(f"images: {result['n_a']} / {result['n_b']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
