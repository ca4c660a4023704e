"""One-direction inference with a single generator, as the CycleGAN repo's ``--model test``.

The official pretrained CycleGAN downloads are single generators saved as ``latest_net_G.pth``; this model
loads such a file (``--model_suffix _A`` reads ``latest_net_G_A.pth`` of a CycleGAN run instead) and
translates the images of one folder. Test only.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from models.base_model import BaseModel
from models.networks import build_generator, size_multiple


class TestModel(BaseModel):
    directions = ("AtoB",)

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.set_defaults(dataset_mode="single", no_dropout=True)
        parser.add_argument(
            "--model_suffix",
            default="",
            help="load <epoch>_net_G<suffix>.pth, e.g. _A for the G_A of a CycleGAN run",
        )
        return parser

    @classmethod
    def validate_options(cls, opt, parser):
        if opt.isTrain:
            parser.error("--model test is for test.py only; train with --model cycle_gan")

    def __init__(self, opt):
        super().__init__(opt)
        self.visual_names = ["real", "fake"]
        self.model_names = ["netG"]
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

    def official_file_labels(self, names: list[str]) -> dict[str, str]:
        return {"netG": f"G{self.opt.model_suffix}"}
