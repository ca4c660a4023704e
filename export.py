"""Export the generators of a trained experiment as TorchScript and ONNX, and check them against PyTorch.

``python export.py --name EXP --model cycle_gan [--format onnx|torchscript|both] [--epoch latest]``

Every option of ``test.py`` applies (``--netG``, ``--ngf``, ``--crop_size``, model flags...), since the
networks must be built as they were trained. Each test-time network (``netG_A``, ``netG_B``, ``genA2B``...) is
exported on its own when it maps one image tensor to a tensor (or a tuple of tensors); models whose
generator needs more inputs (a style code, a reference image) are exported as their whole translation,
``translate_<direction>``, image in and translated image out. Files go to
``checkpoints_dir/name/export/<label>_<epoch>.{pt,onnx}``.

``--format official`` writes the checkpoint back in the official code base's layout instead
(``latest_net_G_A.pth``..., U-GAT-IT's ``<dataset>_params_<step>.pt``, UNIT's ``gen_/dis_<step>.pt``, TUNIT's
``model_<N>.ckpt``; see ``util.official_export``) to ``--out DIR`` (default ``checkpoints_dir/name/official``).

Exports are made on the CPU with the networks in eval mode and checked on two random inputs (batch 2 at
``crop_size``, and batch 1 at a larger height to check the dynamic batch/height/width axes); the maximum
absolute difference to PyTorch is printed, and the exit status is 1 when it exceeds ``--atol``. ONNX export
needs the ``onnx`` package and its check ``onnxruntime``; without them that step is skipped with a message.
TUNIT has no ONNX export (``ONNX_UNSUPPORTED``): ``--format both`` writes its TorchScript with a note, and
``--format onnx`` is refused. Bad options (an ``--opset`` the exporter lacks, an output folder that is a file)
stop with one line and exit status 2 before anything is built or written.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import warnings

import torch
from torch import nn

import models
from data.image_io import DataError
from models.networks.fast_conv import use_fast_cpu_convs
from options import TestOptions
from options.base_options import OneLineErrorParser
from util import checkpoint as ckpt_io
from util.checkpoint import CheckpointError
from util.official_export import export_official
from util.output_dirs import new_dirs, output_dir_error, remove_empty
from util.test_loop import load_for_inference

FORMATS = {"onnx": ("onnx",), "torchscript": ("torchscript",), "both": ("torchscript", "onnx"), "official": ()}
#: models PyTorch's ONNX exporter cannot convert, and why (checked on every registered model, docs/evaluation.md)
ONNX_UNSUPPORTED = {
    "tunit": "its AdaIN normalises a 1 x N*C x H*W view with batch statistics, which the TorchScript-based ONNX "
    "exporter cannot convert",
}
try:  # the opsets this PyTorch's exporter writes (a private table; the fallback is torch 2.x's)
    from torch.onnx._constants import ONNX_MAX_OPSET, ONNX_MIN_OPSET
except ImportError:  # pragma: no cover
    ONNX_MIN_OPSET, ONNX_MAX_OPSET = 7, 20


class Translation(nn.Module):
    """A model's whole translation for one direction, as a module: image in, translated image out."""

    def __init__(self, model, direction: str) -> None:
        super().__init__()
        self.model, self.direction = model, direction

    def forward(self, real: torch.Tensor) -> torch.Tensor:
        visuals = self.model.translate(real, self.direction)
        return visuals[self.model.output_visual(self.direction, visuals)]


def as_tuple(out) -> tuple[torch.Tensor, ...] | None:
    """Outputs as a tuple of tensors, or None when they are not tensors (a dict, None...)."""
    if torch.is_tensor(out):
        return (out,)
    if isinstance(out, (tuple, list)) and out and all(torch.is_tensor(o) for o in out):
        return tuple(out)
    return None


def input_channels(net: nn.Module, default: int) -> int:
    first = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    return first.in_channels if first is not None else default


def exportable_modules(model, opt) -> list[tuple[str, nn.Module, int]]:
    """(label, module, input channels) to export: each standalone generator, else each direction."""
    found = []
    probe = torch.zeros(1, 1, opt.crop_size, opt.crop_size)
    for name in model.inference_names:
        net = getattr(model, name)
        channels = input_channels(net, opt.input_nc)
        try:
            with torch.no_grad():
                ok = as_tuple(net(probe.expand(-1, channels, -1, -1))) is not None
        except (TypeError, RuntimeError, ValueError):
            ok = False
        if not ok:
            print(f"{name} does not map one image to images on its own: exporting the translations instead")
            return [
                (f"translate_{d}", Translation(model, d), opt.input_nc if d == "AtoB" else opt.output_nc)
                for d in model.directions
            ]
        found.append((name, net, channels))
    return found


def samples(channels: int, size: int, multiple: int) -> list[torch.Tensor]:
    """The export example (batch 2: tracing at batch 1 would bake in batch-1 branches such as UNIT's
    LayerNorm), then batch 1 at a larger height to check that the export is not tied to one shape."""
    g = torch.Generator().manual_seed(0)
    bigger = size + multiple * max(1, 16 // multiple)
    return [
        torch.rand(2, channels, size, size, generator=g) * 2 - 1,
        torch.rand(1, channels, bigger, size, generator=g) * 2 - 1,
    ]


def max_difference(expected: tuple[torch.Tensor, ...], got) -> float:
    got = [torch.as_tensor(g) for g in (got if isinstance(got, (tuple, list)) else [got])]
    if len(got) != len(expected):
        raise RuntimeError(f"exported model returns {len(got)} outputs, PyTorch {len(expected)}")
    return max((e - g).abs().max().item() for e, g in zip(expected, got))


def export_torchscript(module: nn.Module, example: torch.Tensor, path: str):
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", FutureWarning
        )  # torch.jit is "deprecated" but still the portable format
        # Shape checks inside norms become constants; the second check sample shows the trace generalises.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(module, example, check_trace=False)
        torch.jit.save(traced, path)
        loaded = torch.jit.load(path)
    return lambda x: loaded(x)


@contextlib.contextmanager
def native_output_silenced():
    """Discard what native code writes to the process's stdout/stderr meanwhile: on a failure PyTorch's ONNX
    exporter dumps its whole graph there (hundreds of lines, whatever ``verbose`` says), and ONNX Runtime
    its warnings; the exception is reported as one line instead. Python's own output is not affected
    where ``sys.stdout`` is not the process's stdout (pytest), so print nothing inside."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def export_onnx(module: nn.Module, example: torch.Tensor, path: str, n_outputs: int, opset: int):
    """Dynamic batch/height/width when the exporter can; a fixed-shape file (with a message) when not."""
    outputs = ["output"] if n_outputs == 1 else [f"output_{i}" for i in range(n_outputs)]
    axes = {name: {0: "batch", 2: "height", 3: "width"} for name in ["input", *outputs]}
    kwargs = dict(dynamo=False, opset_version=opset, input_names=["input"], output_names=outputs)
    dynamic_failure = None
    with warnings.catch_warnings(), native_output_silenced():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter (dynamo=False) needs the onnx package but not onnxscript.
        try:
            torch.onnx.export(module, (example,), path, dynamic_axes=axes, **kwargs)
        except Exception as exc:  # some ops (e.g. adaptive norms) only export with static shapes
            dynamic_failure = str(exc).splitlines()[0]
    if dynamic_failure is not None:
        print(f"{path}: dynamic shapes failed ({dynamic_failure}); exporting for {tuple(example.shape)} only")
        with warnings.catch_warnings(), native_output_silenced():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), path, **kwargs)
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    with native_output_silenced():
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"input": x.numpy()})


def export_and_check(
    label: str,
    module: nn.Module,
    channels: int,
    fmt: str,
    out_dir: str,
    opt,
    args: argparse.Namespace,
    multiple: int,
) -> bool:
    """Write one file and print its difference to PyTorch on each sample; False on a mismatch."""
    xs, expected = [], []
    for x in samples(channels, opt.crop_size, multiple):
        try:
            with torch.no_grad():
                expected.append(as_tuple(module(x)))
            xs.append(x)
        except (RuntimeError, ValueError) as exc:  # e.g. U-GAT-IT's full generator takes one size only
            print(
                f"{label}: PyTorch itself does not take input {tuple(x.shape)} ({str(exc).splitlines()[0]})"
            )
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:
        print(
            f"{label}: ONNX export skipped: the onnx package is not installed (pip install onnx onnxruntime)"
        )
        return True
    ext = "pt" if fmt == "torchscript" else "onnx"
    path = os.path.join(out_dir, f"{label}_{opt.epoch}.{ext}")
    try:
        if fmt == "torchscript":
            run = export_torchscript(module, xs[0], path)
        else:
            run = export_onnx(module, xs[0], path, len(expected[0]), args.opset)
    except Exception as exc:  # report and go on with the other networks and formats
        with contextlib.suppress(OSError):
            os.remove(path)  # no half-written or unloadable file left behind
        print(f"{path}: export failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        return False
    if run is None:
        print(
            f"{path}: written; numeric check skipped (onnxruntime is not installed: pip install onnxruntime)"
        )
        return True
    ok = True
    for x, exp in zip(xs, expected):
        try:
            with torch.no_grad():
                diff = max_difference(exp, run(x))
        except Exception as exc:  # a shape the export cannot take: report it, do not crash the other exports
            print(f"{path}: input {tuple(x.shape)} failed: {str(exc).splitlines()[0]}")
            ok = False
            continue
        status = "ok" if diff <= args.atol else f"MISMATCH (> {args.atol:g})"
        ok &= diff <= args.atol
        print(f"{path}: input {tuple(x.shape)} max abs difference to PyTorch {diff:.3g} {status}")
    return ok


class ExportOptions(TestOptions):
    """test.py's options for a run that reads no images: no dataset is looked for, and none is generated."""

    reads_data = False


def parse(argv: list[str] | None):
    """export.py's own options, then test.py's; every bad value is one line and exit status 2 here."""
    p = OneLineErrorParser(prog="export.py", add_help=False, allow_abbrev=False)
    p.add_argument("--format", default="both", choices=sorted(FORMATS))
    p.add_argument(
        "--export_dir", "--out", default="", help="default: checkpoints_dir/name/export (official: .../official)"
    )
    p.add_argument("--opset", type=int, default=17, help=f"ONNX opset ({ONNX_MIN_OPSET}-{ONNX_MAX_OPSET})")
    p.add_argument("--atol", type=float, default=1e-4, help="largest accepted difference to PyTorch")
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(
            "export.py options: --format {onnx,torchscript,both,official} --export_dir/--out DIR --opset N "
            "--atol X\n"
            "plus every test.py option below.\n"
        )
    args, rest = p.parse_known_args(argv)
    if not ONNX_MIN_OPSET <= args.opset <= ONNX_MAX_OPSET:
        p.error(f"--opset {args.opset}: expected an ONNX opset from {ONNX_MIN_OPSET} to {ONNX_MAX_OPSET}")
    opt = ExportOptions().parse(rest, save=False)
    if args.format == "onnx" and opt.model in ONNX_UNSUPPORTED:
        p.error(f"--format onnx: --model {opt.model} has no ONNX export, use --format torchscript: "
                f"{ONNX_UNSUPPORTED[opt.model]}")  # fmt: skip
    out_dir = output_dir(opt, args)
    problem = output_dir_error("--export_dir", args.export_dir or out_dir, out_dir)
    if problem:
        p.error(problem)
    return args, opt


def output_dir(opt, args: argparse.Namespace) -> str:
    """``--export_dir``, else the experiment's ``export`` (``official`` for ``--format official``) folder."""
    default = "official" if args.format == "official" else "export"
    return args.export_dir or os.path.join(opt.checkpoints_dir, opt.name, default)


def formats(args: argparse.Namespace, model_name: str) -> tuple[str, ...]:
    """The formats to write: ``--format``'s, without ONNX for a model it cannot take (with a note)."""
    chosen = FORMATS[args.format]
    if "onnx" in chosen and model_name in ONNX_UNSUPPORTED:
        why = ONNX_UNSUPPORTED[model_name]
        print(f"note: --model {model_name} has no ONNX export, TorchScript only: {why}")
        return tuple(f for f in chosen if f != "onnx")
    return chosen


def export_model(model, opt, args: argparse.Namespace, out_dir: str) -> bool:
    """Export every exportable module of a loaded model in the requested formats; False on any failure.

    The CPU fast convolutions are switched back to PyTorch's for the exported copy: the files must hold
    portable convolution operators (NNPACK is neither exportable nor available everywhere).
    """
    use_fast_cpu_convs(model, enabled=False)
    model.eval()  # exports are for deployment: no dropout, batch norm with its running statistics
    made = new_dirs(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    ok, chosen = True, formats(args, opt.model)
    for label, module, channels in exportable_modules(model, opt):
        for fmt in chosen:
            ok &= export_and_check(label, module, channels, fmt, out_dir, opt, args, model.size_multiple())
    remove_empty(made)  # every export failed or was skipped: no empty folder left behind
    return ok


def export_official_files(opt, args: argparse.Namespace) -> int:
    """``--format official``: our checkpoint's networks in the official file layout (util.official_export)."""
    expr_dir = os.path.join(opt.checkpoints_dir, opt.name)
    path = ckpt_io.checkpoint_path(expr_dir, opt.epoch)
    out_dir = output_dir(opt, args)
    made = new_dirs(out_dir)
    try:
        if not os.path.isfile(path):
            raise CheckpointError(f"no checkpoint {path} to export (--epoch {opt.epoch})")
        ckpt = ckpt_io.load_checkpoint(path)
        written = export_official(ckpt, out_dir, str(opt.epoch), dataset_name(opt, ckpt), path)
    except CheckpointError as exc:
        remove_empty(made)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote the official layout of {path}:\n  " + "\n  ".join(written))
    return 0


def dataset_name(opt, ckpt: dict) -> str:
    """U-GAT-IT's official ``--dataset`` (the folder under ``dataset/``, in its file names): the last folder of
    ``--dataroot`` when given, else of the dataroot the experiment was trained on, else the experiment's name."""
    dataroot = opt.dataroot or ckpt.get("options", {}).get("dataroot")
    return os.path.basename(os.path.normpath(dataroot or "")) or opt.name


def main(argv: list[str] | None = None) -> int:
    args, opt = parse(argv)
    if args.format == "official":
        return export_official_files(opt, args)
    model = models.create_model(opt)
    try:
        source = load_for_inference(model, opt)
    except (CheckpointError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out_dir = output_dir(opt, args)
    print(f"exporting {opt.model} networks from {source} to {out_dir}")
    return 0 if export_model(model, opt, args, out_dir) else 1


if __name__ == "__main__":
    sys.exit(main())
