"""One-direction inference with a single generator, as the CycleGAN repo's ``--model test``.

The official pretrained CycleGAN downloads are single generators saved as ``latest_net_G.pth``; this model
loads such a file (``--model_suffix _A`` reads ``latest_net_G_A.pth`` of a CycleGAN run instead) and
translates the images of one folder. It also loads one generator of this framework's own cycle_gan
checkpoints: G_A or G_B, picked by ``--model_suffix _A/_B`` or ``--test_direction AtoB/BtoA``. Test only.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from models.base_model import BaseModel
from models.networks import build_generator, size_multiple
from util.checkpoint import CheckpointError

#: how to pick the generator: --model_suffix wins, then --test_direction
DIRECTION_SUFFIX = {"AtoB": "_A", "BtoA": "_B", "both": ""}


def chosen_suffix(opt) -> str:
    """``_A``, ``_B`` or "" (a lone official ``latest_net_G.pth``)."""
    return getattr(opt, "model_suffix", "") or DIRECTION_SUFFIX[getattr(opt, "test_direction", "both")]


class TestModel(BaseModel):
    directions = ("AtoB",)
    #: the checkpoints of ours it loads a generator from
    checkpoint_model = "cycle_gan"

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.set_defaults(dataset_mode="single", no_dropout=True)
        parser.add_argument(
            "--model_suffix",
            default="",
            help="load <epoch>_net_G<suffix>.pth, e.g. _A for the G_A of a CycleGAN run (or --test_direction)",
        )
        return parser

    @classmethod
    def validate_options(cls, opt, parser):
        if opt.isTrain:
            parser.error("--model test is for test.py only; train with --model cycle_gan")
        wanted = DIRECTION_SUFFIX[opt.test_direction]
        if opt.model_suffix and wanted and opt.model_suffix != wanted:
            parser.error(f"--model_suffix {opt.model_suffix} contradicts --test_direction {opt.test_direction}")

    @classmethod
    def architecture_from(cls, saved: dict, known) -> dict:
        """A cycle_gan run's options describe G_A; G_B maps output_nc channels to input_nc."""
        arch = super().architecture_from(saved, known)
        if chosen_suffix(known) == "_B" and "input_nc" in arch and "output_nc" in arch:
            arch["input_nc"], arch["output_nc"] = arch["output_nc"], arch["input_nc"]
        return arch

    def __init__(self, opt):
        super().__init__(opt)
        self.visual_names = ["real", "fake"]
        self.model_names = ["netG"]
        self.directions = ("BtoA",) if chosen_suffix(opt) == "_B" else ("AtoB",)  # reads <phase>B for G_B
        self.netG = build_generator(
            opt.netG,
            opt.input_nc,
            opt.output_nc,
            ngf=opt.ngf,
            norm=opt.norm,
            use_dropout=not opt.no_dropout,
            init_type=opt.init_type,
            init_gain=opt.init_gain,
        )

    def size_multiple(self) -> int:
        return size_multiple(self.opt.netG)

    def set_input(self, batch: dict) -> None:
        self.real = batch["A"]

    def optimize_parameters(self) -> None:
        raise RuntimeError("--model test cannot be trained")

    def forward(self) -> None:
        self.fake = self.netG(self.real)

    def translate(self, real: torch.Tensor, direction: str) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(real=real, fake=self.netG(real))

    def load_inference_state(self, ckpt: dict, source: str = "") -> None:
        """G_A or G_B of one of our cycle_gan checkpoints."""
        name = f"netG{chosen_suffix(self.opt) or '_A'}"
        if name not in ckpt["networks"]:
            raise CheckpointError(f"{source} has no {name}: pick a generator with --model_suffix _A/_B")
        if not chosen_suffix(self.opt):
            print(f"--model test: loading {name} of {source} (--model_suffix _B or --test_direction BtoA: G_B)")
        self.load_network_state({"netG": ckpt["networks"][name]}, ["netG"], source=f"{source} ({name})")

    def official_file_labels(self, names: list[str]) -> dict[str, str]:
        return {"netG": f"G{chosen_suffix(self.opt)}"}

    def official_files_hint(self, epoch: str) -> str:
        return (
            f"{super().official_files_hint(epoch)}; a CycleGAN run's G_A or G_B: --model_suffix _A/_B or "
            f"--test_direction AtoB/BtoA"
        )
