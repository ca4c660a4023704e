"""Training options: display, saving, schedule and optimiser flags with the CycleGAN/CUT names and defaults."""

from __future__ import annotations

import argparse

from util.distributed import add_distributed_options

from .base_options import BaseOptions, add_flag


class TrainOptions(BaseOptions):
    is_train = True

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        g = parser.add_argument_group("display and logging")
        g.add_argument(
            "--display_freq", type=int, default=400, help="iterations between visuals on screen/HTML"
        )
        g.add_argument("--display_ncols", type=int, default=4, help="images per row in visdom")
        g.add_argument(
            "--display_id", type=int, default=1, help="visdom window id; 0 or less turns visdom off"
        )
        g.add_argument("--display_server", default="http://localhost")
        g.add_argument("--display_env", default="main")
        g.add_argument("--display_port", type=int, default=8097)
        g.add_argument("--update_html_freq", type=int, default=1000, help="iterations between HTML saves")
        g.add_argument("--print_freq", type=int, default=100, help="iterations between loss prints")
        add_flag(g, "--no_html", help="do not write checkpoints_dir/name/web/")
        add_flag(g, "--tensorboard", help="also log to TensorBoard (needs the tensorboard package)")
        g.add_argument(
            "--web_keep_last",
            type=int,
            default=50,
            help="epochs of images the web page keeps (web/images); older ones are deleted; 0 keeps all",
        )
        add_flag(g, "--use_wandb", help="also log to Weights & Biases (needs the wandb package)")
        g.add_argument("--wandb_project_name", default="unpaired-translation", help="W&B project")

        g = parser.add_argument_group("saving and resuming")
        g.add_argument(
            "--save_latest_freq", type=int, default=5000, help="images between 'latest' checkpoints"
        )
        g.add_argument("--save_epoch_freq", type=int, default=5, help="epochs between numbered checkpoints")
        add_flag(g, "--save_by_iter", help="also keep a numbered checkpoint at every save_latest_freq")
        g.add_argument(
            "--keep_last",
            type=int,
            default=0,
            help="keep only the newest N numbered checkpoints (<epoch>.pth, iter_<step>.pth); latest.pth and "
            "best.pth are always kept; 0 keeps all",
        )
        add_flag(
            g,
            "--continue_train",
            help="resume from checkpoints_dir/name/<epoch>.pth exactly where it stopped",
        )
        add_flag(
            g,
            "--overwrite",
            help="start a new run in a folder that holds checkpoints (refused without it): once this run's "
            "options and data are checked, the old run's checkpoints (*.pth) are deleted and its "
            "eval_history.json is moved to eval_history.json.old",
        )
        g.add_argument(
            "--epoch_count",
            type=int,
            default=1,
            help="first epoch of a fresh run (a resumed run continues from its checkpoint)",
        )
        g.add_argument(
            "--pretrained_name",
            default=None,
            help="initialise networks from another experiment's checkpoint (fine-tuning)",
        )
        g.add_argument("--phase", default="train", help="train, val, test, ...")
        g.add_argument(
            "--max_steps",
            type=int,
            default=0,
            help="stop after this many iterations in total (0: train for all epochs)",
        )

        g = parser.add_argument_group("optimisation")
        g.add_argument("--n_epochs", type=int, default=100, help="epochs at the initial learning rate")
        g.add_argument(
            "--n_epochs_decay", type=int, default=100, help="epochs to decay the learning rate to zero"
        )
        g.add_argument("--beta1", type=float, default=0.5)
        g.add_argument("--beta2", type=float, default=0.999)
        g.add_argument("--lr", type=float, default=0.0002)
        g.add_argument(
            "--gan_mode", default="lsgan", choices=["lsgan", "vanilla", "wgangp", "hinge", "nonsaturating"]
        )
        g.add_argument("--pool_size", type=int, default=50, help="image buffer of generated images for D")
        g.add_argument(
            "--lr_policy", default="linear", choices=["linear", "step", "plateau", "cosine", "constant"]
        )
        g.add_argument(
            "--lr_decay_iters", type=int, default=50, help="step policy: epochs between x0.1 decays"
        )
        add_distributed_options(parser)
        return parser
