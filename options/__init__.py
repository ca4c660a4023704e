"""Command-line options: base, train and test sets; models and dataset modes add their own."""

from .base_options import BaseOptions, FrozenOptions, add_flag, add_switch, str2bool
from .test_options import TestOptions
from .train_options import TrainOptions

__all__ = [
    "BaseOptions",
    "FrozenOptions",
    "TestOptions",
    "TrainOptions",
    "add_flag",
    "add_switch",
    "str2bool",
]
