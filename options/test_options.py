"""Test options. As in the CycleGAN/CUT codebases, load_size defaults to crop_size so test images are not cropped
(here the --crop_size given on the command line, not the parser default)."""

from __future__ import annotations

import argparse

from .base_options import BaseOptions, add_flag


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
