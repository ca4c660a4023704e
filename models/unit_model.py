"""UNIT (Liu, Breuel & Kautz, NIPS 2017) as the ``UNIT_Trainer`` of mingyuliutw/UNIT master.

Two VAEs share a latent space: E_a(x_a) = h_a is the mean of N(h_a, I), z_a = h_a + n_a decodes to x_a (G_a) and
to its translation x_ab (G_b). One iteration is a D step then a G step (the G step sees the updated D):

- D: LSGAN (or nsgan) on x_ba / x_a and x_ab / x_b, summed over scales, weighted by ``gan_w``.
- G: ``gan_w`` adversarial + ``recon_x_w`` L1(x_aa, x_a) + ``recon_kl_w`` mean(h_a^2) + ``recon_x_cyc_w``
  L1(x_aba, x_a) + ``recon_kl_cyc_w`` mean(h_ab^2) (+ b terms, + ``vgg_w`` perceptual).

Options carry the official config key names (``--gen.dim`` / ``--gen_dim`` ...) and ``--config file.yaml`` reads
an official config. Official ``gen_%08d.pt`` / ``dis_%08d.pt`` (+ ``optimizer.pt``) files load as they are.
Deviations from the official code, each harmless to the maths, are listed in docs/unit.md.
"""

from __future__ import annotations

import argparse
import glob
import os
from collections import OrderedDict

import torch
import yaml

from models.base_model import BaseModel
from models.losses.unit import GAN_TYPES, PerceptualLoss, dis_loss, gen_adv_loss, kl_loss, recon_loss
from models.networks.unit import (
    ACTIVATIONS,
    INIT_TYPES,
    NORM_TYPES,
    PAD_TYPES,
    MsImageDis,
    VAEGen,
    share_blocks,
    unique_parameters,
    weights_init,
)
from util.checkpoint import CheckpointError, clean_state_dict, load_file

# Official config key -> option dest. Nested keys are "section.key". None: accepted and ignored.
CONFIG_KEYS: dict[str, str | None] = {
    "max_iter": "max_steps", "batch_size": "batch_size", "weight_decay": "weight_decay", "beta1": "beta1",
    "beta2": "beta2", "init": "init_type", "lr": "lr", "lr_policy": "lr_policy", "step_size": "step_size",
    "gamma": "gamma", "gan_w": "gan_w", "recon_x_w": "recon_x_w", "recon_h_w": "recon_h_w",
    "recon_kl_w": "recon_kl_w", "recon_x_cyc_w": "recon_x_cyc_w", "recon_kl_cyc_w": "recon_kl_cyc_w",
    "vgg_w": "vgg_w", "input_dim_a": "input_nc", "input_dim_b": "output_nc", "num_workers": "num_threads",
    "new_size": "load_size", "new_size_a": "load_size", "new_size_b": "load_size",
    "crop_image_height": "crop_size", "crop_image_width": "crop_size", "data_root": "dataroot",
    "snapshot_save_iter": "save_latest_freq", "log_iter": "print_freq", "image_display_iter": "display_freq",
    "image_save_iter": "update_html_freq", "display_size": None,
    "gen.dim": "ngf", "gen.n_downsample": "n_downsample", "gen.n_res": "n_res", "gen.activ": "gen_activ",
    "gen.pad_type": "gen_pad_type", "gen.style_dim": None, "gen.mlp_dim": None,  # MUNIT leftovers in a config
    "dis.dim": "ndf", "dis.n_layer": "n_layer", "dis.num_scales": "num_scales", "dis.norm": "dis_norm",
    "dis.activ": "dis_activ", "dis.pad_type": "dis_pad_type", "dis.gan_type": "gan_type",
}  # fmt: skip
_PER_IMAGE_FREQS = (
    "save_latest_freq",
    "print_freq",
    "display_freq",
    "update_html_freq",
)  # counted in images here


def read_config(path: str) -> tuple[dict, list[str]]:
    """Option defaults from an official UNIT YAML config, and the reasons it cannot be used as is."""
    with open(path) as f:
        raw = yaml.safe_load(f) or {}  # safe_load: the official yaml.load(f) fails on PyYAML >= 6
    flat = {}
    for key, value in raw.items():
        for sub, v in value.items() if isinstance(value, dict) else [(None, value)]:
            flat[f"{key}.{sub}" if sub else key] = v
    values, problems = {}, []
    for key, value in flat.items():
        if key not in CONFIG_KEYS:
            problems.append(f"{key} is not supported (folder datasets only: data_root/trainA ...)")
        elif CONFIG_KEYS[key] is not None:
            dest = CONFIG_KEYS[key]
            if dest in values and values[dest] != value:
                problems.append(f"{key}={value} differs from another key mapped to --{dest} ({values[dest]})")
            values[dest] = value
    if values.get("init_type") == "gaussian":
        values["init_type"] = "normal"  # the framework's name for N(0, 0.02)
    for dest in _PER_IMAGE_FREQS:
        if dest in values:
            values[dest] = values[dest] * values.get("batch_size", 1)
    return values, problems


def _alias(parser, *names: str, dest: str, **kwargs) -> None:
    """Another spelling of an existing option; SUPPRESS keeps the option's own default."""
    parser.add_argument(
        *names, dest=dest, default=argparse.SUPPRESS, help=f"alias of the {dest} option", **kwargs
    )


def _dis_too_small(size: int, n_layer: int, num_scales: int) -> bool:
    """True when some D layer would get an input under 2 px (its 4x4 kernel on a pad-1 map fails, as officially)."""
    for _ in range(num_scales):
        s = size
        for _ in range(n_layer):
            if s < 2:
                return True
            s //= 2  # 4x4, stride 2, pad 1
        size = (size + 1) // 2  # AvgPool2d(3, 2, 1)
    return False


def find_official(path: str, kind: str, iteration: str = "latest") -> str | None:
    """``<kind>_%08d.pt`` in ``path`` or ``path/checkpoints`` (newest, or the given iteration), or path itself."""
    if os.path.isfile(path):
        folder, name = os.path.split(path)
        if kind == "gen" or not name.startswith("gen_"):
            return path if kind == "gen" else None
        return os.path.join(folder, "dis_" + name[4:])
    for folder in (path, os.path.join(path, "checkpoints")):
        if iteration.isdigit():
            name = os.path.join(folder, f"{kind}_{int(iteration):08d}.pt")
            if os.path.isfile(name):
                return name
        elif iteration == "latest":
            names = sorted(glob.glob(os.path.join(folder, f"{kind}_" + "[0-9]" * 8 + ".pt")))
            if names:
                return names[-1]
    return None


class UNITModel(BaseModel):
    directions = ("AtoB", "BtoA")

    @staticmethod
    def modify_commandline_options(parser, is_train):
        g = parser.add_argument_group("UNIT (official config key names)")
        g.add_argument("--config", default="", help="official UNIT YAML config; flags given here override it")
        _alias(g, "--gen.dim", "--gen_dim", dest="ngf", type=int)
        g.add_argument("--gen.n_downsample", "--n_downsample", dest="n_downsample", type=int, default=2)
        g.add_argument(
            "--gen.n_res", "--n_res", dest="n_res", type=int, default=4, help="ResBlocks in E and in G"
        )
        g.add_argument("--gen.activ", "--gen_activ", dest="gen_activ", default="relu", choices=ACTIVATIONS)
        g.add_argument(
            "--gen.pad_type", "--gen_pad_type", dest="gen_pad_type", default="reflect", choices=PAD_TYPES
        )
        g.add_argument(
            "--unit_shared_enc_blocks",
            type=int,
            default=0,
            help="last encoder ResBlocks shared by gen_a and gen_b (paper: 1; master: 0)",
        )
        g.add_argument(
            "--unit_shared_dec_blocks",
            type=int,
            default=0,
            help="first decoder ResBlocks shared by gen_a and gen_b (paper: 1; master: 0)",
        )
        g.add_argument(
            "--share_layers", type=int, default=None, help="shorthand: share N encoder and N decoder blocks"
        )
        _alias(g, "--input_dim_a", dest="input_nc", type=int, choices=[1, 3])
        _alias(g, "--input_dim_b", dest="output_nc", type=int, choices=[1, 3])
        _alias(g, "--new_size", dest="load_size", type=int)
        _alias(g, "--crop_image_height", "--crop_image_width", dest="crop_size", type=int)
        _alias(g, "--data_root", dest="dataroot")
        _alias(g, "--num_workers", dest="num_threads", type=int)
        _alias(g, "--init", dest="init_type", choices=INIT_TYPES)
        g.add_argument(
            "--official_checkpoint",
            default="",
            help="official gen_XXXXXXXX.pt (dis_/optimizer.pt beside it are used when training)",
        )
        parser.set_defaults(load_size=256, crop_size=256, ngf=64, ndf=64, init_type="kaiming")
        if not is_train:
            g.add_argument("--num_style", type=int, default=0, help="also decode N samples h + n per input")
            g.add_argument(
                "--minmax_output",
                action=argparse.BooleanOptionalAction,
                default=False,
                help="min-max stretch each image as the official test.py's save_image(normalize=True)",
            )
            return parser
        _alias(g, "--dis.dim", "--dis_dim", dest="ndf", type=int)
        g.add_argument("--dis.n_layer", "--n_layer", dest="n_layer", type=int, default=4)
        g.add_argument("--dis.num_scales", "--num_scales", dest="num_scales", type=int, default=3)
        g.add_argument("--dis.norm", "--dis_norm", dest="dis_norm", default="none", choices=NORM_TYPES)
        g.add_argument("--dis.activ", "--dis_activ", dest="dis_activ", default="lrelu", choices=ACTIVATIONS)
        g.add_argument(
            "--dis.pad_type", "--dis_pad_type", dest="dis_pad_type", default="reflect", choices=PAD_TYPES
        )
        g.add_argument("--dis.gan_type", "--gan_type", dest="gan_type", default="lsgan", choices=GAN_TYPES)
        for name, default, what in [
            ("gan_w", 1.0, "adversarial"),
            ("recon_x_w", 10.0, "L1 x -> x"),
            ("recon_kl_w", 0.01, "mean(h^2) of h_a, h_b"),
            ("recon_x_cyc_w", 10.0, "L1 cycle"),
            ("recon_kl_cyc_w", 0.01, "mean(h^2) of the cycle latents"),
            ("recon_h_w", 0.0, "documented, never read by the official code: must be 0"),
            ("vgg_w", 0.0, "domain-invariant perceptual loss (needs --vgg_weights)"),
            ("weight_decay", 1e-4, "Adam L2 weight decay (G and D)"),
        ]:
            g.add_argument(f"--{name}", type=float, default=default, help=what)
        g.add_argument(
            "--vgg_weights", default="", help="local VGG16 file: official vgg16.weight or torchvision's"
        )
        g.add_argument(
            "--step_size", type=int, default=100000, help="iterations between lr decays (--lr_policy step)"
        )
        g.add_argument("--gamma", type=float, default=0.5, help="lr decay factor (--lr_policy step)")
        _alias(g, "--max_iter", dest="max_steps", type=int)
        _alias(g, "--snapshot_save_iter", dest="save_latest_freq", type=int)
        _alias(g, "--log_iter", dest="print_freq", type=int)
        _alias(g, "--image_display_iter", dest="display_freq", type=int)
        _alias(g, "--image_save_iter", dest="update_html_freq", type=int)
        for action in parser._actions:  # the official "constant" policy (no schedule) joins the base choices
            if action.dest == "lr_policy" and "constant" not in action.choices:
                action.choices = [*action.choices, "constant"]
        parser.set_defaults(
            lr=1e-4,
            beta1=0.5,
            beta2=0.999,
            lr_policy="step",
            max_steps=1_000_000,
            save_latest_freq=10000,
            print_freq=10,
            display_freq=500,
            update_html_freq=10000,
            save_epoch_freq=0,
        )
        return parser

    @classmethod
    def preset_defaults(cls, known, is_train):
        if not getattr(known, "config", ""):
            return {}
        values, _ = read_config(known.config)
        return {dest: v for dest, v in values.items() if hasattr(known, dest)}

    @classmethod
    def validate_options(cls, opt, parser):
        if opt.config:
            problems = read_config(opt.config)[1]
            if problems:
                parser.error(f"--config {opt.config}: " + "; ".join(problems))
        if opt.share_layers is not None and (opt.unit_shared_enc_blocks or opt.unit_shared_dec_blocks):
            parser.error(
                "--share_layers is a shorthand for --unit_shared_enc_blocks/--unit_shared_dec_blocks: give one"
            )
        if any(n > opt.n_res for n in cls.shared_blocks(opt)) or min(cls.shared_blocks(opt)) < 0:
            parser.error(f"shared blocks must be between 0 and --gen.n_res ({opt.n_res})")
        if not opt.isTrain:
            return
        if opt.lr_policy not in ("step", "constant"):
            parser.error(
                f"UNIT supports --lr_policy step (every --step_size iterations) or constant, not {opt.lr_policy}"
            )
        if opt.recon_h_w != 0:
            parser.error("--recon_h_w is never read by the official trainer; no hidden reconstruction exists")
        if opt.vgg_w > 0 and not os.path.isfile(opt.vgg_weights):
            parser.error(
                f"--vgg_w {opt.vgg_w} needs a local VGG16 file via --vgg_weights (got {opt.vgg_weights!r}); "
                "nothing is downloaded"
            )
        if opt.crop_size % 2**opt.n_downsample:
            parser.error(
                f"--crop_size {opt.crop_size} must be divisible by 2**n_downsample = {2**opt.n_downsample}"
            )
        if _dis_too_small(opt.crop_size, opt.n_layer, opt.num_scales):
            parser.error(
                f"--crop_size {opt.crop_size} is too small for a D with {opt.num_scales} scales of "
                f"{opt.n_layer} layers; use >= {2 ** (opt.n_layer + opt.num_scales - 1)} or fewer scales"
            )

    @staticmethod
    def shared_blocks(opt) -> tuple[int, int]:
        if opt.share_layers is not None:
            return opt.share_layers, opt.share_layers
        return opt.unit_shared_enc_blocks, opt.unit_shared_dec_blocks

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = [
            "dis_a",
            "dis_b",
            "dis_total",
            "gen_adv_a",
            "gen_adv_b",
            "gen_recon_x_a",
            "gen_recon_x_b",
            "gen_recon_kl_a",
            "gen_recon_kl_b",
            "gen_cyc_x_a",
            "gen_cyc_x_b",
            "gen_recon_kl_cyc_aba",
            "gen_recon_kl_cyc_bab",
            "gen_total",
        ]
        self.visual_names = ["real_A", "rec_A", "fake_B", "cyc_A", "real_B", "rec_B", "fake_A", "cyc_B"]
        self.model_names = ["gen_a", "gen_b", "dis_a", "dis_b"] if self.isTrain else ["gen_a", "gen_b"]
        # Noise source of the posterior samples z = h + n; tests replace it to inject the official draws.
        self.noise_fn = torch.randn_like
        self.sample_generator: torch.Generator | None = None
        g = dict(
            dim=opt.ngf,
            n_downsample=opt.n_downsample,
            n_res=opt.n_res,
            activ=opt.gen_activ,
            pad_type=opt.gen_pad_type,
        )
        self.gen_a = VAEGen(input_dim=opt.input_nc, **g)
        self.gen_b = VAEGen(input_dim=opt.output_nc, **g)
        share_blocks(self.gen_a, self.gen_b, *self.shared_blocks(opt))
        init = weights_init("gaussian" if opt.init_type == "normal" else opt.init_type)
        if not self.isTrain:
            self.gen_a.apply(init)
            self.gen_b.apply(init)
            return
        d = dict(
            dim=opt.ndf,
            n_layer=opt.n_layer,
            num_scales=opt.num_scales,
            norm=opt.dis_norm,
            activ=opt.dis_activ,
            pad_type=opt.dis_pad_type,
        )
        self.dis_a = MsImageDis(input_dim=opt.input_nc, **d)
        self.dis_b = MsImageDis(input_dim=opt.output_nc, **d)
        # Official order: `init` on every network, then both Ds again with N(0, 0.02).
        for net in (self.gen_a, self.gen_b, self.dis_a, self.dis_b):
            net.apply(init)
        self.dis_a.apply(weights_init("gaussian"))
        self.dis_b.apply(weights_init("gaussian"))
        self.perceptual = PerceptualLoss.from_file(opt.vgg_weights) if opt.vgg_w > 0 else None
        if self.perceptual is not None:
            self.loss_names[-1:-1] = ["gen_vgg_a", "gen_vgg_b"]
        adam = dict(lr=opt.lr, betas=(opt.beta1, opt.beta2), weight_decay=opt.weight_decay)
        # Shared blocks must be stepped once per iteration: each tensor appears once (unlike PyTorch-GAN's UNIT).
        self.optimizers["G"] = torch.optim.Adam(unique_parameters([self.gen_a, self.gen_b]), **adam)
        self.optimizers["D"] = torch.optim.Adam(unique_parameters([self.dis_a, self.dis_b]), **adam)

    # ------------------------------------------------------------------ length and schedules
    def size_multiple(self) -> int:
        return 2**self.opt.n_downsample

    def total_epochs(self) -> int:
        return 10**9  # iteration-based: max_iter (--max_steps) ends training

    def setup(self, verbose: bool = False) -> None:
        """Per-iteration StepLR (official ``get_scheduler``), and an official checkpoint if one was given."""
        opt = self.opt
        iteration = (
            self.load_official(opt.official_checkpoint) if self.isTrain and opt.official_checkpoint else 0
        )
        if self.isTrain and opt.lr_policy == "step":
            self.schedulers = {n: torch.optim.lr_scheduler.StepLR(o, opt.step_size, opt.gamma)
                               for n, o in self.optimizers.items()}  # fmt: skip
            for name, sched in self.schedulers.items():  # continue an official run at its learning rate
                sched.last_epoch = iteration
                for group in self.optimizers[name].param_groups:
                    group["lr"] = group["initial_lr"] * opt.gamma ** (iteration // opt.step_size)
                sched._last_lr = [group["lr"] for group in self.optimizers[name].param_groups]
        self.print_networks(verbose)
        if any(self.shared_blocks(opt)):
            n = sum(p.numel() for p in unique_parameters([self.gen_a, self.gen_b]))
            print(f"[Network gen_a + gen_b] unique parameters (shared blocks counted once): {n}")

    def on_step_end(self) -> None:
        # Stepped after the updates (the official steps before them, so its lr halves one iteration earlier).
        for sched in self.schedulers.values():
            sched.step()

    def on_epoch_end(self, metric: float | None = None) -> None:
        """Epochs mean nothing to UNIT's schedule (counted in iterations)."""

    # ------------------------------------------------------------------ training
    def set_input(self, batch: dict) -> None:
        self.real_A, self.real_B = batch["A"], batch["B"]
        self.image_paths = batch.get("A_paths")

    def sample(self, h: torch.Tensor) -> torch.Tensor:
        """z = h + n, n ~ N(0, I): the unit-variance posterior sample."""
        return h + self.noise_fn(h)

    def optimize_parameters(self) -> None:
        self.update_D()
        self.update_G()

    def update_D(self) -> None:
        opt = self.opt
        with torch.no_grad():  # the official detaches the fakes; no graph is needed to make them
            z_a = self.sample(self.gen_a.encode(self.real_A))
            z_b = self.sample(self.gen_b.encode(self.real_B))
            fake_A, fake_B = self.gen_a.decode(z_b), self.gen_b.decode(z_a)
        self.loss_dis_a = dis_loss(self.dis_a(fake_A), self.dis_a(self.real_A), opt.gan_type)
        self.loss_dis_b = dis_loss(self.dis_b(fake_B), self.dis_b(self.real_B), opt.gan_type)
        self.loss_dis_total = opt.gan_w * self.loss_dis_a + opt.gan_w * self.loss_dis_b
        self.backward_and_step(self.loss_dis_total, "D")

    def update_G(self) -> None:
        opt = self.opt
        # D gets no gradient here; the official lets it accumulate and clears it in the next D step (same updates).
        self.set_requires_grad([self.dis_a, self.dis_b], False)
        h_a = self.gen_a.encode(self.real_A)
        z_a = self.sample(h_a)
        h_b = self.gen_b.encode(self.real_B)
        z_b = self.sample(h_b)
        self.rec_A, self.rec_B = self.gen_a.decode(z_a), self.gen_b.decode(z_b)
        # One noisy z per domain feeds both the reconstruction and the translation (official).
        self.fake_A, self.fake_B = self.gen_a.decode(z_b), self.gen_b.decode(z_a)
        h_b_recon = self.gen_a.encode(self.fake_A)
        h_a_recon = self.gen_b.encode(self.fake_B)
        zero = self.real_A.new_zeros(())
        if opt.recon_x_cyc_w > 0:  # the official crashes here (L1 of None) when recon_x_cyc_w is 0
            z_b_recon = self.sample(h_b_recon)  # official draw order: n_b_recon, then n_a_recon
            self.cyc_A = self.gen_a.decode(self.sample(h_a_recon))
            self.cyc_B = self.gen_b.decode(z_b_recon)
            self.loss_gen_cyc_x_a = recon_loss(self.cyc_A, self.real_A)
            self.loss_gen_cyc_x_b = recon_loss(self.cyc_B, self.real_B)
        else:
            self.cyc_A = self.cyc_B = None
            self.loss_gen_cyc_x_a = self.loss_gen_cyc_x_b = zero
        self.loss_gen_recon_x_a = recon_loss(self.rec_A, self.real_A)
        self.loss_gen_recon_x_b = recon_loss(self.rec_B, self.real_B)
        self.loss_gen_recon_kl_a, self.loss_gen_recon_kl_b = kl_loss(h_a), kl_loss(h_b)
        self.loss_gen_recon_kl_cyc_aba, self.loss_gen_recon_kl_cyc_bab = (
            kl_loss(h_a_recon),
            kl_loss(h_b_recon),
        )
        self.loss_gen_adv_a = gen_adv_loss(self.dis_a(self.fake_A), opt.gan_type)
        self.loss_gen_adv_b = gen_adv_loss(self.dis_b(self.fake_B), opt.gan_type)
        if self.perceptual is not None:  # across domains: content of x_ba vs x_b
            self.loss_gen_vgg_a = self.perceptual(self.fake_A, self.real_B)
            self.loss_gen_vgg_b = self.perceptual(self.fake_B, self.real_A)
        else:
            self.loss_gen_vgg_a = self.loss_gen_vgg_b = zero
        # Summed in the official order (float parity).
        self.loss_gen_total = (
            opt.gan_w * self.loss_gen_adv_a + opt.gan_w * self.loss_gen_adv_b
            + opt.recon_x_w * self.loss_gen_recon_x_a + opt.recon_kl_w * self.loss_gen_recon_kl_a
            + opt.recon_x_w * self.loss_gen_recon_x_b + opt.recon_kl_w * self.loss_gen_recon_kl_b
            + opt.recon_x_cyc_w * self.loss_gen_cyc_x_a + opt.recon_kl_cyc_w * self.loss_gen_recon_kl_cyc_aba
            + opt.recon_x_cyc_w * self.loss_gen_cyc_x_b + opt.recon_kl_cyc_w * self.loss_gen_recon_kl_cyc_bab
            + opt.vgg_w * self.loss_gen_vgg_a + opt.vgg_w * self.loss_gen_vgg_b
        )  # fmt: skip
        self.backward_and_step(self.loss_gen_total, "G")
        self.set_requires_grad([self.dis_a, self.dis_b], True)

    # ------------------------------------------------------------------ inference
    def translate(self, real: torch.Tensor, direction: str) -> OrderedDict[str, torch.Tensor]:
        """x_ab = G_b(E_a(x_a)) from the posterior mean (official test.py); ``--num_style N`` adds N samples
        G_b(h + n) named ``fake_B_000`` ..., drawn from a generator seeded with ``--seed``."""
        enc, dec, src, tgt = (self.gen_a, self.gen_b, "A", "B") if direction == "AtoB" else (
            self.gen_b, self.gen_a, "B", "A")  # fmt: skip
        h = enc.encode(real)
        visuals = OrderedDict([(f"real_{src}", real), (f"fake_{tgt}", dec.decode(h))])
        n_samples = getattr(self.opt, "num_style", 0)
        if n_samples and self.sample_generator is None:
            self.sample_generator = torch.Generator(device=h.device).manual_seed(self.opt.seed)
        for j in range(n_samples):
            n = torch.randn(h.shape, generator=self.sample_generator, device=h.device, dtype=h.dtype)
            visuals[f"fake_{tgt}_{j:03d}"] = dec.decode(h + n)
        if getattr(self.opt, "minmax_output", False):
            for key, x in visuals.items():  # per image, as save_image(normalize=True) on one image per file
                lo = x.amin(dim=(1, 2, 3), keepdim=True)
                hi = x.amax(dim=(1, 2, 3), keepdim=True)
                visuals[key] = (x - lo) / (hi - lo).clamp_min(1e-5) * 2 - 1
        return visuals

    # ------------------------------------------------------------------ official checkpoints
    def official_file_labels(self, names: list[str]) -> dict[str, str]:
        return {n: f"gen_<iteration>.pt['{n[-1]}']" for n in names}

    def import_official(self, expr_dir: str, epoch: str, names: list[str]) -> bool:
        path = self.opt.official_checkpoint or find_official(expr_dir, "gen", str(epoch))
        if not path or not os.path.isfile(path):
            return False
        self.load_official(path, with_dis=False)
        return True

    def load_official(self, path: str, with_dis: bool | None = None) -> int:
        """Load an official ``gen_%08d.pt`` ({'a', 'b'}) and, when training, ``dis_%08d.pt`` and ``optimizer.pt``
        beside it. Returns the iteration parsed from the file name (0 if none)."""
        gen_path = find_official(path, "gen") if os.path.isdir(path) else path
        if gen_path is None or not os.path.isfile(gen_path):
            raise CheckpointError(f"no official gen_XXXXXXXX.pt at {path}")
        self._load_pair(gen_path, self.gen_a, self.gen_b)
        if with_dis is False or not self.isTrain:
            return 0
        dis_path = find_official(gen_path, "dis")
        if dis_path is not None and os.path.isfile(dis_path):
            self._load_pair(dis_path, self.dis_a, self.dis_b)
        opt_path = os.path.join(os.path.dirname(gen_path), "optimizer.pt")
        if os.path.isfile(opt_path):
            state = load_file(opt_path)
            try:  # Adam state is positional: gen_a's then gen_b's parameters, as the official list
                self.optimizers["G"].load_state_dict(state["gen"])
                self.optimizers["D"].load_state_dict(state["dis"])
            except (KeyError, ValueError) as exc:
                raise CheckpointError(f"{opt_path} does not fit these networks: {exc}") from exc
        stem = os.path.basename(gen_path)[4:-3]
        print(f"loaded official UNIT checkpoint {gen_path}")
        return int(stem) if stem.isdigit() else 0

    @staticmethod
    def _load_pair(path: str, net_a: torch.nn.Module, net_b: torch.nn.Module) -> None:
        state = load_file(path)
        if not isinstance(state, dict) or not {"a", "b"} <= set(state):
            raise CheckpointError(f"{path}: expected a dict with keys 'a' and 'b' (official UNIT layout)")
        for key, net in (("a", net_a), ("b", net_b)):
            try:  # clean_state_dict drops the InstanceNorm running stats of torch-0.3 files (official converter)
                net.load_state_dict(clean_state_dict(state[key], net.state_dict()), strict=True)
            except RuntimeError as exc:
                raise CheckpointError(
                    f"{path}['{key}'] does not fit (--gen.dim/--n_res/...?): {str(exc).splitlines()[0]}"
                ) from exc
        shared = {
            k for k, v in net_a.state_dict().items() if v.data_ptr() == net_b.state_dict()[k].data_ptr()
        }
        if any(not torch.equal(state["a"][k], state["b"][k]) for k in shared):
            raise CheckpointError(
                f"{path} was trained without shared blocks; drop --unit_shared_*/--share_layers"
            )
