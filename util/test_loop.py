"""The one test loop: translate every image of a folder with any registered model.

Each direction a model supports reads its own input folder (``<phase>A`` for A->B, ``<phase>B`` for B->A),
so every input image gives exactly one output, whatever the folder sizes. With ``--preprocess none`` images
keep their resolution: they are batched only with images of the same size, padded (reflection) to the
network's size multiple, and images below the model's smallest size (``min_image_size``) up to it
(replication where reflection cannot reach), then cropped back, so outputs have the input's size. With a
class-folder dataset (TUNIT) the inputs are the images of the phase's class folders.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

import data
import models
from data.base_dataset import list_option
from data.image_io import DataError, read_image_list
from data.samplers import SizeGroupedBatchSampler
from data.single_dataset import SingleDataset
from util import checkpoint as ckpt_io
from util.distributed import DistInfo, select_device
from util.html import HTML
from util.image_utils import save_image, tensor2im
from util.visualizer import save_images

CLASS_FOLDER_MODES = ("class_folder", "tunit")


def load_for_inference(model, opt) -> str:
    """Load the test-time networks from our checkpoint, or from the official file layout."""
    expr_dir = os.path.join(opt.checkpoints_dir, opt.name)
    path = ckpt_io.checkpoint_path(expr_dir, opt.epoch)
    if os.path.isfile(path):
        ckpt = ckpt_io.load_checkpoint(path, getattr(model, "checkpoint_model", opt.model))
        model.load_inference_state(ckpt, source=path)
        return path
    if model.import_official(expr_dir, opt.epoch, model.inference_names):
        return expr_dir
    raise ckpt_io.CheckpointError(
        f"no weights for --epoch {opt.epoch} in {expr_dir}: expected {path} (this framework) or the official "
        f"files ({model.official_files_hint(opt.epoch)})"
    )


def pad_to_multiple(x: torch.Tensor, multiple: int, minimum: int = 1) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad H and W (bottom, right) to multiples of ``multiple`` and at least ``minimum``; returns the original
    (h, w) to crop the outputs back to."""
    h, w = x.shape[-2:]
    ph, pw = _padded(h, multiple, minimum) - h, _padded(w, multiple, minimum) - w
    if ph == 0 and pw == 0:
        return x, (h, w)
    # Reflection needs the pad to be smaller than the image; fall back to replication for tiny inputs.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def _padded(n: int, multiple: int, minimum: int) -> int:
    size = max(n, minimum)
    return size + (-size) % multiple


def input_folder(opt, direction: str) -> tuple[str, int]:
    """Folder (or ``--list_A``/``--list_B`` file) and channel count of the input domain of ``direction``.

    ``--direction BtoA`` swaps the domains.
    """
    if opt.input_dir:
        return opt.input_dir, opt.input_nc if direction == "AtoB" else opt.output_nc
    if opt.dataset_mode in CLASS_FOLDER_MODES:  # <dataroot>[/<phase>]/<class>/<images>: every class
        return opt.dataroot, opt.input_nc
    letter = "A" if direction == "AtoB" else "B"
    if opt.direction == "BtoA":
        letter = "B" if letter == "A" else "A"
    channels = opt.input_nc if direction == "AtoB" else opt.output_nc
    list_file = list_option(opt, letter)[0]
    if list_file:
        return list_file, channels
    if os.path.isdir(opt.dataroot) and not os.path.isdir(os.path.join(opt.dataroot, f"{opt.phase}{letter}")):
        if opt.dataset_mode == "single":
            return opt.dataroot, opt.input_nc
    return os.path.join(opt.dataroot, f"{opt.phase}{letter}"), channels


def input_dataset(opt, direction: str) -> tuple[SingleDataset, str]:
    """The inputs of ``direction`` and where they come from (a folder or a list file)."""
    source, channels = input_folder(opt, direction)
    if not opt.input_dir and opt.dataset_mode in CLASS_FOLDER_MODES:
        classes = data.create_dataset(opt)  # its class selection and held-out split for --phase
        return SingleDataset(opt, channels=channels, paths=classes.paths), classes.dir
    if not opt.input_dir and os.path.isfile(source):
        letter = next(x for x in "AB" if list_option(opt, x)[0] == source)
        paths = read_image_list(source, list_option(opt, letter)[1], what=f"domain {letter} images")
        return SingleDataset(opt, channels=channels, paths=paths), source
    return SingleDataset(opt, folder=source, channels=channels), source


class Tester:
    __test__ = False  # not a pytest class

    def __init__(self, opt):
        self.opt = opt
        self.device = select_device(opt.gpu_ids, DistInfo(), explicit=opt.was_given("gpu_ids"))
        self.model = models.create_model(opt)
        self.model.setup(verbose=opt.verbose)
        self.source = None if opt.dry_run else load_for_inference(self.model, opt)
        self.model.to(self.device)
        if opt.eval:
            self.model.eval()
        self.web_dir = os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}")
        self.min_size = type(self.model).min_image_size(opt)  # smaller images are padded up to it
        self.written: list[str] = []

    def directions(self) -> list[str]:
        dirs = list(self.model.directions)
        if self.opt.test_direction != "both":
            dirs = [d for d in dirs if d == self.opt.test_direction]
        if not dirs:
            raise DataError(
                f"--test_direction {self.opt.test_direction}: --model {self.opt.model} translates "
                f"{' and '.join(self.model.directions)} only"
            )
        return dirs

    def loader(self, dataset: SingleDataset) -> DataLoader:
        indices = list(range(len(dataset)))
        if self.opt.num_test > 0:
            indices = indices[: self.opt.num_test]
        sizes = dataset.sizes() if self.opt.preprocess == "none" else [(0, 0)] * len(dataset)
        sampler = SizeGroupedBatchSampler([sizes[i] for i in indices], self.opt.batch_size)
        subset = torch.utils.data.Subset(dataset, indices)
        return DataLoader(subset, batch_sampler=sampler, num_workers=self.opt.num_threads)

    @torch.no_grad()
    def run(self) -> str:
        inputs = [(d, *input_dataset(self.opt, d)) for d in self.directions()]  # bad input: no folder made
        html = HTML(
            self.web_dir, f"Experiment = {self.opt.name}, Phase = {self.opt.phase}, Epoch = {self.opt.epoch}"
        )
        for direction, dataset, source in inputs:
            html.add_header(f"{direction}: {source}")
            loader = self.loader(dataset)
            for batch in tqdm(loader, desc=direction, disable=self.opt.no_progress):
                self.translate_batch(batch, direction, html, source)
        html.save()
        print(f"wrote {len(self.written)} images and {os.path.join(self.web_dir, 'index.html')}")
        return self.web_dir

    def output_stem(self, path: str, source: str) -> str:
        """Output name of an input: its file name; in class folders ``<class>_<name>`` (names repeat per class)."""
        if self.opt.dataset_mode in CLASS_FOLDER_MODES and not self.opt.input_dir and source:
            return os.path.splitext(os.path.relpath(path, source))[0].replace(os.sep, "_")
        return os.path.splitext(os.path.basename(path))[0]

    def translate_batch(self, batch: dict, direction: str, html: HTML, source: str = "") -> None:
        real, (h, w) = pad_to_multiple(batch["A"].to(self.device), self.model.size_multiple(), self.min_size)
        visuals = self.model.translate(real, direction)
        visuals = OrderedDict((k, v[..., :h, :w]) for k, v in visuals.items() if torch.is_tensor(v))
        fake_label = self.model.output_visual(direction, visuals)
        for i, path in enumerate(batch["A_paths"]):
            stem = self.output_stem(path, source)
            path = os.path.join(os.path.dirname(path), stem + os.path.splitext(path)[1])
            one = OrderedDict((label, images[i]) for label, images in visuals.items())
            save_images(html, one, path, aspect_ratio=self.opt.aspect_ratio, width=self.opt.display_winsize)
            if self.opt.output_path:
                sub = direction if len(self.directions()) > 1 else ""
                out = os.path.join(self.opt.output_path, sub, f"{stem}.png")
                save_image(tensor2im(visuals[fake_label][i]), out)
                self.written.append(out)
            else:
                self.written.append(os.path.join(html.get_image_dir(), f"{stem}_{fake_label}.png"))
