"""Test options. As in the CycleGAN/CUT codebases, load_size defaults to crop_size so test images are not cropped
(here the --crop_size given on the command line or taken from the checkpoint, not the parser default).

The architecture, and as defaults the training folder and preprocessing, come from the checkpoint
(``options.checkpoint_options``); training-only flags copied from a training command are accepted and ignored,
with one note naming them.
"""

from __future__ import annotations

import argparse
import sys

import models

from .base_options import BaseOptions, FrozenOptions, add_flag
from .checkpoint_options import (
    apply_checkpoint_architecture,
    apply_checkpoint_data,
    drop_train_only,
    with_checkpoint_model,
)
from .checks import given_options
from .train_options import TrainOptions


class TestOptions(BaseOptions):
    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        g = parser.add_argument_group("testing")
        g.add_argument(
            "--results_dir", default="./results/", help="results go to results_dir/name/phase_epoch/"
        )
        g.add_argument("--aspect_ratio", type=float, default=1.0, help="aspect ratio of saved result images")
        g.add_argument(
            "--phase", default="test", help="train, val, test, ...: reads DATAROOT/<phase>A (and B)"
        )
        add_flag(g, "--eval", help="eval mode for the networks (batch norm running stats, no dropout)")
        g.add_argument("--num_test", type=int, default=0, help="images to translate per direction (0: all)")
        g.add_argument(
            "--output_path",
            default="",
            help="also write only the translated images here, named after their inputs",
        )
        g.add_argument(
            "--input_dir",
            default="",
            help="translate the images of this plain folder instead of DATAROOT/<phase>A",
        )
        g.add_argument(
            "--test_direction",
            default="both",
            choices=["both", "AtoB", "BtoA"],
            help="for two-way models: which directions to run",
        )
        g.add_argument(
            "--video",
            default="",
            help="translate this video file, or every video of this folder, to mp4 instead of images "
            "(needs PyAV: pip install av); one direction: --test_direction, else the model's first",
        )
        g.add_argument(
            "--camera",
            type=int,
            default=-1,
            help="show this webcam (0, 1, ...) and its translation until 'q' (needs opencv-python); -1: off",
        )
        g.add_argument(
            "--video_out",
            default="",
            help="folder for --video outputs (default: results_dir/name/video_<epoch>)",
        )
        parser.set_defaults(load_size=None)  # None: the --crop_size actually given (see finalize)
        return parser

    def build_parser(self, args: list[str] | None) -> argparse.ArgumentParser:
        """The three passes, then the checkpoint's architecture, preprocessing and training folder as defaults."""
        parser = super().build_parser(args)
        known, _ = parser.parse_known_args(args)
        given = given_options(parser, args)
        apply_checkpoint_architecture(parser, known, given)
        # what a model's presets set (U-GAT-IT's --img_size, UNIT's --config) counts as given
        presets = models.find_model_class(known.model).preset_defaults(known, self.is_train)
        note = apply_checkpoint_data(parser, known, given | set(presets), dataroot=self.reads_data)
        if note:
            print(note)
        return parser

    def parse(self, args: list[str] | None = None, *, save: bool = True) -> FrozenOptions:
        args = list(sys.argv[1:] if args is None else args)
        helps = [a for a in args if a in ("-h", "--help")]
        if helps:  # --name EXP --help: the help of EXP's model
            rest = [a for a in args if a not in helps]
            return super().parse(with_checkpoint_model(rest, super().build_parser(rest)) + helps, save=save)
        args = with_checkpoint_model(args, super().build_parser(args))
        args, ignored = drop_train_only(args, super().build_parser(args), TrainOptions().build_parser)
        if ignored:
            print(f"note: training options ignored at test time: {' '.join(ignored)}")
        return super().parse(args, save=save)
