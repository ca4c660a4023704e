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

import models
from data.image_io import DataError, image_size
from data.samplers import SizeGroupedBatchSampler
from data.single_dataset import SingleDataset
from data.transforms import output_size
from util import checkpoint as ckpt_io
from util.distributed import DistInfo, select_device
from util.html import HTML
from util.image_utils import save_image, tensor2im
from util.test_inputs import CLASS_FOLDER_MODES, Readable, collate_readable, input_dataset, unique_stems
from util.visualizer import save_images


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
        f"files ({model.official_files_hint(opt.epoch)}); {what_is_there(expr_dir, opt.epoch)}"
    )


def available_epochs(expr_dir: str) -> list[str]:
    """The ``--epoch`` values ``expr_dir`` has weights for (ours ``<label>.pth``, official ``<label>_net_X.pth``):
    latest and best first, then numbers in order, then the rest (``iter_<step>``) by name."""
    labels = {n[: -len(".pth")].split("_net_")[0] for n in os.listdir(expr_dir) if n.endswith(".pth")}
    return sorted(
        labels, key=lambda s: (s not in ("latest", "best"), not s.isdigit(), int(s) if s.isdigit() else 0, s)
    )


def what_is_there(expr_dir: str, epoch: str) -> str:
    """The end of the "no weights" line: the epochs that do exist, so a typo or a missing best.pth is plain."""
    if not os.path.isdir(expr_dir):
        return f"{expr_dir} does not exist (check --name and --checkpoints_dir)"
    labels = available_epochs(expr_dir)
    held = f"it holds --epoch {', '.join(labels)}" if labels else "it holds no checkpoints"
    if epoch == "best":
        held += " (best.pth is written by train.py --eval_freq N, the lowest FID so far)"
    return held


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
        # what could not be read, and every input tried: files, not (file, direction) pairs, since with
        # --input_dir both directions read the same folder and one bad file is one warning
        self.skipped: list[str] = []
        self.inputs: set[str] = set()
        self.stems: dict[str, str] = {}  # input path -> output name, unique per direction

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
        self.inputs.update(dataset.paths[i] for i in indices)
        if self.opt.preprocess == "none":  # batches group equal sizes, read from the headers
            sized = [(i, self.header_size(dataset, i)) for i in indices]
            indices, sizes = [i for i, s in sized if s], [s for _, s in sized if s]
        else:
            sizes = [(0, 0)] * len(indices)
        sampler = SizeGroupedBatchSampler(sizes, self.opt.batch_size)
        return DataLoader(Readable(dataset, indices), batch_sampler=sampler, num_workers=self.opt.num_threads,
                          collate_fn=collate_readable)  # fmt: skip

    def header_size(self, dataset: SingleDataset, index: int) -> tuple[int, int] | None:
        """The (h, w) input ``index`` gives, or None (warned, skipped) when its header cannot be read."""
        try:
            return output_size(self.opt, image_size(dataset.paths[index]), dataset.load_size)
        except DataError as exc:
            self.skip(str(exc))
            return None

    def skip(self, message: str) -> None:
        if message not in self.skipped:
            self.skipped.append(message)
            tqdm.write(f"warning: skipped: {message}")

    @torch.no_grad()
    def run(self) -> str:
        inputs = [(d, *input_dataset(self.opt, d)) for d in self.directions()]  # bad input: no folder made
        html = HTML(
            self.web_dir, f"Experiment = {self.opt.name}, Phase = {self.opt.phase}, Epoch = {self.opt.epoch}"
        )
        for direction, dataset, source in inputs:
            html.add_header(f"{direction}: {source}")
            self.stems = dict(zip(dataset.paths, unique_stems([self.output_stem(p, source) for p in dataset.paths],
                                                               dataset.paths)))  # fmt: skip
            loader = self.loader(dataset)
            for item in tqdm(loader, desc=direction, disable=self.opt.no_progress):
                for message in item["skipped"]:
                    self.skip(message)
                if item["batch"] is not None:
                    self.translate_batch(item["batch"], direction, html, source)
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
            stem = self.stems.get(path) or self.output_stem(path, source)
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
