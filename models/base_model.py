"""The contract every model fulfils, and the bookkeeping they share.

A model owns only the maths: its networks, losses, optimisers and one training iteration. Devices, mixed
precision, multi-process training, checkpoint files and the loop belong to ``util.trainer``; the model
reaches them only through ``backward`` / ``step`` (see ``util.runtime``). Names are declared once per model
(``loss_names``, ``visual_names``, ``model_names``) and drive logging, checkpoints and the HTML pages.
"""

from __future__ import annotations

import argparse
import os
from abc import ABC, abstractmethod
from collections import OrderedDict

import torch
from torch import nn

from models.networks import count_parameters
from models.networks.discriminators import min_size as min_discriminator_size
from models.networks.generators import min_size as min_generator_size
from models.networks.generators import size_multiple as generator_size_multiple
from util.checkpoint import CheckpointError, clean_state_dict, load_file
from util.runtime import Runtime
from util.schedulers import get_scheduler
from util.state_fit import load_fitting


class BaseModel(nn.Module, ABC):
    #: translation directions this model runs at test time ("AtoB", "BtoA")
    directions: tuple[str, ...] = ("AtoB",)
    #: options that shape the networks; test.py and export.py take them from the checkpoint (models add theirs)
    architecture_options: tuple[str, ...] = (
        "netG", "ngf", "ndf", "netD", "n_layers_D", "norm", "input_nc", "output_nc", "no_dropout",
    )  # fmt: skip
    #: models that count iterations: the option setting their length (they refuse --n_epochs)
    length_option: str | None = None

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.isTrain = opt.isTrain
        self.loss_names: list[str] = []
        self.visual_names: list[str] = []
        self.model_names: list[str] = []
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, object] = {}
        self.epoch = 1
        self.global_step = 0
        self.runtime = Runtime("cpu")

    # ------------------------------------------------------------------ options
    @staticmethod
    def modify_commandline_options(
        parser: argparse.ArgumentParser, is_train: bool
    ) -> argparse.ArgumentParser:
        """Add model-specific options or change base defaults."""
        return parser

    @classmethod
    def preset_defaults(cls, known: argparse.Namespace, is_train: bool) -> dict:
        """Defaults that depend on another option (CUT_mode presets); user flags still override them."""
        return {}

    @classmethod
    def validate_options(cls, opt, parser: argparse.ArgumentParser) -> None:
        """Reject option combinations the model cannot run (call ``parser.error``)."""

    @classmethod
    def min_image_size(cls, opt) -> int:
        """Smallest square image the networks run on (training: G and D; testing: G), checked at parse time.

        Each model states its rule, found by trying its networks at growing sizes (README model table); this
        one is the CycleGAN family's: ``--netG``'s minimum, in training also the PatchGAN's (24 px by default).
        """
        size = min_generator_size(opt.netG)
        return max(size, min_discriminator_size(opt.netD, opt.n_layers_D)) if opt.isTrain else size

    @classmethod
    def training_size_multiple(cls, opt) -> int:
        """Training crops must be multiples of this, checked at parse time: the generator then returns its input's
        size (a 70 px crop gives a 72 px ResNet output, which the cycle L1 cannot compare and at which CUT's
        patch positions would no longer line up). test.py pads instead. Models that check their own rule: 1."""
        return generator_size_multiple(opt.netG)

    @classmethod
    def architecture_from(cls, saved: dict, known: argparse.Namespace) -> dict:
        """The architecture options of a checkpoint's saved training options, as this model's test options."""
        return {k: saved[k] for k in cls.architecture_options if k in saved}

    @classmethod
    def grad_accum_blocker(cls, opt) -> str:
        """Why ``--grad_accum > 1`` would not equal a larger batch for this configuration ("" if it would)."""
        if getattr(opt, "norm", "") == "batch":
            return "--norm batch normalises with the statistics of each micro-batch"
        return ""

    # ------------------------------------------------------------------ the contract
    @abstractmethod
    def set_input(self, batch: dict) -> None:
        """Unpack a batch whose tensors are already on the right device."""

    @abstractmethod
    def optimize_parameters(self) -> None:
        """One training iteration: forward, losses, backward, optimiser steps."""

    @abstractmethod
    def translate(self, real: torch.Tensor, direction: str) -> OrderedDict[str, torch.Tensor]:
        """Inference on a batch of the input domain of ``direction``; returns visual name -> images."""

    def test(self) -> None:
        """Forward pass without gradients on the current input (CycleGAN-codebase compatibility)."""
        with torch.no_grad():
            self.forward()

    def forward(self):
        """Models with a single training forward (CycleGAN's four translations) define it; others need not."""
        return None

    @property
    def inference_names(self) -> list[str]:
        """Networks test.py needs; the others are not built or loaded at test time."""
        return [n for n in self.model_names if n.startswith("netG") or n.startswith("gen")]

    def size_multiple(self) -> int:
        """H and W of an input must be multiples of this (test.py pads full-resolution images to it)."""
        return 4

    def max_steps(self) -> int | None:
        """Training length in iterations for iteration-based models; None: by epochs."""
        return self.opt.max_steps or None

    def total_epochs(self) -> int:
        return self.opt.n_epochs + self.opt.n_epochs_decay

    # ------------------------------------------------------------------ optimisation helpers
    def backward(self, loss: torch.Tensor, retain_graph: bool = False) -> None:
        self.runtime.backward(loss, retain_graph=retain_graph)

    def step(self, *names: str, free_grads: bool = False) -> None:
        """Step the named optimisers; ``free_grads``: release their gradients right after.

        Spent gradients otherwise stay allocated until the next zero_grad, i.e. through the other networks'
        passes of the iteration (D's through the G step): freeing them lowers the peak memory.
        """
        for name in names:
            self.runtime.step(self.optimizers[name])
        if free_grads:
            self.zero_grad(*names)

    def zero_grad(self, *names: str) -> None:
        for name in names:
            self.optimizers[name].zero_grad(set_to_none=True)

    def backward_and_step(
        self, loss: torch.Tensor, *names: str, retain_graph: bool = False, free_grads: bool = False
    ) -> None:
        """Zero the named optimisers' gradients, backpropagate ``loss`` and step them (see ``step``).

        The gradients of these optimisers are final after this backward, so under torchrun their all-reduce
        starts while the backward still runs (``util.grad_reduce``).
        """
        self.zero_grad(*names)
        final = [self.optimizers[n] for n in names]
        self.runtime.backward(loss, retain_graph=retain_graph, final_for=final)
        self.step(*names, free_grads=free_grads)

    @staticmethod
    def set_requires_grad(nets: nn.Module | list[nn.Module], requires_grad: bool) -> None:
        for net in nets if isinstance(nets, (list, tuple)) else [nets]:
            if net is not None:
                for p in net.parameters():
                    p.requires_grad_(requires_grad)

    def networks(self) -> dict[str, nn.Module]:
        return {
            name: getattr(self, name) for name in self.model_names if getattr(self, name, None) is not None
        }

    # ------------------------------------------------------------------ setup, schedules, hooks
    def setup(self, verbose: bool = False) -> None:
        """Create schedulers (training) and print every network's parameter count."""
        if self.isTrain:
            self.schedulers = {name: get_scheduler(opt, self.opt) for name, opt in self.optimizers.items()}
        self.print_networks(verbose)

    def print_networks(self, verbose: bool = False) -> None:
        print("---------- Networks initialized -------------")
        for name, net in self.networks().items():
            if verbose:
                print(net)
            label = name[3:] if name.startswith("net") else name
            print(f"[Network {label}] Total number of parameters: {count_parameters(net)}")
        print("-----------------------------------------------")

    def set_progress(self, epoch: int, global_step: int) -> None:
        self.epoch, self.global_step = epoch, global_step

    def on_step_end(self) -> None:
        """After every iteration's optimiser steps (clippers, EMA updates)."""

    def on_epoch_end(self, metric: float | None = None) -> None:
        """Step the epoch-based learning-rate schedules."""
        for sched in self.schedulers.values():
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(metric if metric is not None else 0.0)
            else:
                sched.step()

    def current_lr(self) -> float:
        first = next(iter(self.optimizers.values()), None)
        return first.param_groups[0]["lr"] if first is not None else 0.0

    # ------------------------------------------------------------------ logging
    def get_current_losses(self) -> OrderedDict[str, torch.Tensor]:
        losses = OrderedDict()
        for name in self.loss_names:
            value = getattr(self, f"loss_{name}", None)
            if value is not None:
                losses[name] = value.detach() if torch.is_tensor(value) else torch.tensor(float(value))
        return losses

    def get_current_visuals(self) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(
            (n, getattr(self, n)) for n in self.visual_names if torch.is_tensor(getattr(self, n, None))
        )

    # ------------------------------------------------------------------ state
    def network_state(self) -> dict[str, dict]:
        return {name: net.state_dict() for name, net in self.networks().items()}

    def load_network_state(
        self, states: dict[str, dict], names: list[str] | None = None, source: str = ""
    ) -> None:
        for name in names or list(self.networks()):
            if name not in states:
                raise CheckpointError(f"{source}: no weights for network {name!r} (has: {', '.join(states)})")
            load_fitting(getattr(self, name), states[name], name, source)

    def extra_state(self) -> dict:
        """Model state beyond networks and optimisers (image pools, queues, schedules)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what ``extra_state`` returned."""

    def load_inference_state(self, ckpt: dict, source: str = "") -> None:
        """Load test-time networks from one of our checkpoints (models with EMA copies prefer those)."""
        self.load_network_state(ckpt["networks"], self.inference_names, source=source)

    @staticmethod
    def output_visual(direction: str, visuals: dict) -> str:
        """Which visual is "the translation" (written to --output_path): fake_B for A->B, fake_A for B->A."""
        wanted = "fake_B" if direction == "AtoB" else "fake_A"
        return wanted if wanted in visuals else next(k for k in visuals if k.startswith("fake"))

    def official_file_labels(self, names: list[str]) -> dict[str, str]:
        """Network attribute -> the label in official file names (``netG_A`` -> ``G_A``)."""
        return {n: n[3:] if n.startswith("net") else n for n in names}

    def official_files_hint(self, epoch: str) -> str:
        """The official file names ``import_official`` looks for (shown when no weights are found)."""
        labels = self.official_file_labels(self.inference_names).values()
        return ", ".join(f"{epoch}_net_{label}.pth" for label in labels)

    def import_official(self, expr_dir: str, epoch: str, names: list[str]) -> bool:
        """Load official per-network files ``<epoch>_net_<X>.pth`` (CycleGAN/CUT layout), if present.

        Returns False when none of the files exist; models with another official layout override this.
        """
        labels = self.official_file_labels(names)
        paths = {n: os.path.join(expr_dir, f"{epoch}_net_{labels[n]}.pth") for n in names}
        if not any(os.path.isfile(p) for p in paths.values()):
            return False
        for name, path in paths.items():
            net = getattr(self, name)
            load_fitting(net, clean_state_dict(load_file(path), net.state_dict()), name, path)
            print(f"loaded official weights for {name} from {path}")
        return True
