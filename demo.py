"""Translate your own images in the browser with one or more trained (or zoo) experiments.

    python demo.py --name horse2zebra_cyclegan [--name horse2zebra_cut ...] [--port 7860]

Drop images (or a folder), pick the direction, and see the input beside every experiment's translation,
with each model's extra panels (U-GAT-IT's attention heatmaps, one image per TUNIT style); a TUNIT model can
also take its style from a reference image. Results can be downloaded. Requests are queued and run one at
a time, so two users cannot crash it; a bad upload (not an image, too large) gets a message in the page.
Gradio is an optional dependency (pip install gradio). A bad option, or a ``--port`` already in use, stops with
one line before any model is loaded.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import socket
import sys
import tempfile
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from data.image_io import to_channels
from options.base_options import OneLineErrorParser
from util.checkpoint import CheckpointError

DEFAULT_MAX_PIXELS = 4096 * 4096


class DemoError(RuntimeError):
    """A problem the page shows as one line."""


@dataclass
class Experiment:
    name: str
    model: torch.nn.Module
    opt: argparse.Namespace
    min_size: int


def experiment_args(name: str, checkpoints_dir: str, epoch: str) -> list[str]:
    """test.py options for an experiment: the zoo's record, else the model named in our checkpoint (test.py
    then takes the architecture from the checkpoint)."""
    from options.checkpoint_options import saved_options
    from util.checkpoint import checkpoint_path
    from util.zoo import json_record

    expr_dir = os.path.join(checkpoints_dir, name)
    record = json_record(expr_dir)
    if record:
        return list(record["test_args"])
    model, saved = saved_options(checkpoint_path(expr_dir, epoch))
    if model is None:
        raise DemoError(f"--name {name}: no checkpoint {checkpoint_path(expr_dir, epoch)} of this framework and no "
                        f"zoo.json in {expr_dir} (train it, or get a pretrained one: python -m util.zoo list)")  # fmt: skip
    size = str(saved.get("crop_size", 256))  # the size it was trained at: the demo's default working size
    return ["--model", model, "--crop_size", size, "--load_size", size]


def load_experiment(name: str, args: argparse.Namespace, device: torch.device) -> Experiment:
    """Build and load one experiment exactly as test.py does."""
    import models
    from options import TestOptions
    from util.test_loop import load_for_inference

    argv = experiment_args(name, args.checkpoints_dir, args.epoch)
    argv += [
        "--name",
        name,
        "--checkpoints_dir",
        args.checkpoints_dir,
        "--epoch",
        args.epoch,
        "--gpu_ids",
        "-1",
    ]
    argv += ["--input_dir", args.checkpoints_dir]  # uploads are the input: no dataset is looked for or made
    model_name = argv[argv.index("--model") + 1]
    if model_name.startswith("ugatit"):
        argv.append("--save_panels")  # the attention heatmaps beside the translation
    if model_name == "tunit" and args.style_dir:
        argv += ["--tunit_style_dir", args.style_dir]  # images whose clusters give the styles
    opt = TestOptions().parse(argv, save=False)
    model = models.create_model(opt)
    model.setup(verbose=False)
    load_for_inference(model, opt)
    model.to(device).eval()
    return Experiment(name, model, opt, type(model).min_image_size(opt))


# ---------------------------------------------------------------------------------------------- images
def read_upload(path: str, max_pixels: int) -> tuple[Image.Image, str]:
    """An uploaded file as an RGB image, and a note on what was done to it ("" if nothing)."""
    name = os.path.basename(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise DemoError(f"{name}: {w} x {h} pixels is more than this demo accepts ({max_pixels}, "
                                "--max_pixels); resize it first")  # fmt: skip
            im.load()
            img = ImageOps.exif_transpose(im)
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise DemoError(f"{name}: not an image this demo can read (PNG, JPEG, WebP, BMP, ...)") from None
    except OSError as exc:
        raise DemoError(f"{name}: unreadable image ({exc})") from None
    note = ""
    if img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (img.mode == "P" and "transparency" in img.info):
        note = f"{name}: transparent image, composited on white"
    elif img.mode in ("L", "1", "F", "I") or img.mode.startswith("I;16"):
        note = f"{name}: {img.mode} image, converted to RGB"
    # The data layer's conversion: 16-bit and float images scaled, not clipped to white as convert('RGB') does.
    return to_channels(img, 3, name), note


def to_tensor(img: Image.Image, channels: int, size: int | None) -> torch.Tensor:
    """1xCxHxW in [-1, 1]; ``size``: shorter side scaled to it (None: full resolution, as --preprocess none)."""
    if size is not None:
        w, h = img.size
        scale = size / min(w, h)
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
    if channels == 1:
        img = img.convert("L")
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    t = torch.from_numpy(arr).unsqueeze(-1) if arr.ndim == 2 else torch.from_numpy(arr)
    return t.permute(2, 0, 1).unsqueeze(0)


@torch.no_grad()
def translate(exp: Experiment, x: torch.Tensor, direction: str, reference: Image.Image | None = None):
    """The model's visuals for one image, cropped back to its size: label -> HxWx3 uint8."""
    from util.image_utils import tensor2im
    from util.test_loop import pad_to_multiple

    model = exp.model
    device = next(model.parameters()).device
    real, (h, w) = pad_to_multiple(x.to(device), model.size_multiple(), exp.min_size)
    saved = None
    if reference is not None and hasattr(model, "netC_ema"):  # TUNIT: the style of a reference image
        ref = to_tensor(reference, exp.opt.input_nc, exp.opt.crop_size).to(device)
        ref = torch.nn.functional.interpolate(ref, size=(exp.opt.crop_size,) * 2, mode="bilinear")
        saved = (model.styles, model.style_labels)
        model.styles, model.style_labels = model.netC_ema.moco(ref), ["to_reference"]
    try:
        visuals = model.translate(real, direction)
    finally:
        if saved is not None:
            model.styles, model.style_labels = saved
    out = OrderedDict()
    for label, v in visuals.items():
        if torch.is_tensor(v) and not label.startswith("real"):
            out[label] = tensor2im(v[..., :h, :w] if v.shape[-2:] == real.shape[-2:] else v)
    return out


class Demo:
    """The app's logic without Gradio: translate uploads with every experiment, collect messages."""

    def __init__(self, experiments: list[Experiment], out_dir: str, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.experiments, self.out_dir, self.max_pixels = experiments, out_dir, max_pixels

    def directions(self) -> list[str]:
        found = [d for e in self.experiments for d in e.model.directions]
        return list(dict.fromkeys(found))

    def run(self, paths: list[str], direction: str, full_resolution: bool, reference: str | None = None):
        """Returns (gallery items [(HxWx3, caption)], files to download, message lines)."""
        gallery, files, messages = [], [], []
        ref_img = None
        if reference:
            try:
                ref_img, _ = read_upload(reference, self.max_pixels)
            except DemoError as exc:
                messages.append(f"reference: {exc}")
        if not paths:
            return gallery, files, messages + ["drop one or more images (or a folder) first"]
        for path in paths:
            try:
                img, note = read_upload(path, self.max_pixels)
            except DemoError as exc:
                messages.append(str(exc))
                continue
            if note:
                messages.append(note)
            stem = os.path.splitext(os.path.basename(path))[0]
            gallery.append((np.asarray(img), f"{stem}: input"))
            for exp in self.experiments:
                if direction not in exp.model.directions:
                    messages.append(f"{exp.name} does not translate {direction}")
                    continue
                size = None if full_resolution else exp.opt.crop_size
                x = to_tensor(img, exp.opt.input_nc if direction == "AtoB" else exp.opt.output_nc, size)
                for label, arr in translate(exp, x, direction, ref_img).items():
                    gallery.append((arr, f"{exp.name}: {label}"))
                    out = os.path.join(self.out_dir, f"{stem}_{exp.name}_{label}.png")
                    Image.fromarray(arr).save(out)
                    files.append(out)
        return gallery, files, messages


# ---------------------------------------------------------------------------------------------- the page
def build_page(demo: Demo):
    import gradio as gr

    def run(uploads, folder, direction, full_resolution, reference):
        paths = [getattr(f, "name", f) for f in (uploads or []) + (folder or [])]
        try:
            gallery, files, messages = demo.run(paths, direction, full_resolution, reference)
        except Exception as exc:  # the page shows a line, never a stack trace
            gallery, files, messages = [], [], [f"translation failed: {type(exc).__name__}: {exc}"]
        status = "\n".join(f"- {m}" for m in messages) if messages else "done"
        return gallery, files or None, status

    names = ", ".join(e.name for e in demo.experiments)
    with gr.Blocks(title="Image translation demo") as page:
        gr.Markdown(f"## Image translation demo\nExperiments: **{names}**")
        with gr.Row():
            uploads = gr.File(label="images", file_count="multiple", elem_id="uploads")
            folder = gr.File(label="or a folder", file_count="directory", elem_id="folder")
            reference = gr.Image(label="style reference (TUNIT)", type="filepath", elem_id="reference")
        with gr.Row():
            direction = gr.Dropdown(demo.directions(), value=demo.directions()[0], label="direction")
            full = gr.Checkbox(label="full resolution (no resize)", value=False)
            button = gr.Button("Translate", variant="primary", elem_id="translate")
        status = gr.Markdown(elem_id="status")
        gallery = gr.Gallery(label="input and translations", columns=4, elem_id="results")
        download = gr.File(label="download", file_count="multiple", elem_id="download")
        button.click(run, [uploads, folder, direction, full, reference], [gallery, download, status])
    return page


def port_number(value: str) -> int:
    """A TCP port a server can listen on (0, "any free port", would not match the address the demo prints)."""
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {value!r}")
    return port


def port_error(host: str, port: int) -> str | None:
    """Why the demo cannot listen on ``host:port`` (in use, not an address of this machine), or None.

    Checked before the models load, the way Gradio checks (a bind with SO_REUSEADDR), so that a busy port is
    one line at once instead of Gradio's traceback after the loading.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})"
        return f"--port {port}: {host}:{port} is already in use (another demo?); pick another, e.g. --port {free_port(host, port)}"  # fmt: skip
    return None


def free_port(host: str, busy: int) -> int:
    """A port to suggest: the next free one above ``busy`` (else one the system picks)."""
    for port in range(busy + 1, min(busy + 20, 65535) + 1):
        try:
            with socket.socket(socket.getaddrinfo(host, port)[0][0], socket.SOCK_STREAM) as s:
                s.bind((host, port))
            return port
        except OSError:
            continue
    with socket.socket(socket.getaddrinfo(host, 0)[0][0], socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(prog="demo.py", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--name", action="append", required=True, help="experiment (repeat for side by side)")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--epoch", default="latest")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    parser.add_argument("--port", type=port_number, default=7860, help="1-65535")
    parser.add_argument(
        "--style_dir", default="", help="TUNIT: images for the cluster styles (docs/tunit.md)"
    )
    parser.add_argument("--cpu", action="store_true", help="stay on the CPU even when a GPU is available")
    parser.add_argument("--max_pixels", type=int, default=DEFAULT_MAX_PIXELS, help="largest upload accepted")
    parser.add_argument("--queue_size", type=int, default=16, help="requests waiting at most (then refused)")
    return parser.parse_args(argv)


def gradio_available() -> bool:
    """Whether Gradio can be imported, without paying for its import (seconds) before the models load."""
    if "gradio" in sys.modules:
        return sys.modules["gradio"] is not None
    return importlib.util.find_spec("gradio") is not None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not gradio_available():
        print("error: demo.py needs Gradio (an optional dependency): pip install gradio", file=sys.stderr)
        return 1
    problem = port_error(args.host, args.port)
    if problem:  # before the models load: seconds each
        print(f"error: {problem}", file=sys.stderr)
        return 1
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    try:
        experiments = [load_experiment(name, args, device) for name in args.name]
    except (DemoError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out_dir = tempfile.mkdtemp(prefix="translation_demo_")
    page = build_page(Demo(experiments, out_dir, args.max_pixels))
    page.queue(default_concurrency_limit=1, max_size=args.queue_size)
    print(f"demo of {', '.join(args.name)} on {device}: http://{args.host}:{args.port}", flush=True)
    try:
        page.launch(server_name=args.host, server_port=args.port, allowed_paths=[out_dir], show_error=False)
    except OSError:  # taken while the models loaded: Gradio's "Cannot find empty port" traceback as one line
        print(f"error: {port_error(args.host, args.port) or f'--port {args.port}: cannot listen there'}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
