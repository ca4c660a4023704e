"""LiSS (Schmidt, Sreedhar, ElAraby, Rish 2020): CycleGAN with lifelong self-supervised auxiliary tasks.

Each generator is a shared encoder plus heads (``models/networks/liss.py``): the translation decoder and the
rotation, jigsaw, depth and gray (colorisation) tasks. A task schedule (``models/liss_training.py``) decides,
from validation metrics on the test split, which of them train: all at once (``parallel``), one after the
other (``sequential``), one after the other with distillation towards a moving reference encoder (``liss``),
or tasks first and translation on a frozen representation (``representational``).

What differs from CycleGAN, as vict0rsch/LiSS computes it (see docs/liss.md):

- fake_B = G_A.decoder(z_A) with z_A = G_A.encoder(A); identity uses the *other* generator's encoding:
  idt_A = G_A.decoder(G_B.encoder(B)) (``--liss_idt_own_encoder`` for CycleGAN's G_A(B)).
- Task losses: CE for rotation (4 views per image) and jigsaw, L1 for depth (log inverse depth), and for gray
  0.1 GAN (own discriminators D_{A,B}_gray) + 0.9 L1 to the colour image; each weighted by its lambda.
- ``--D_rotation``: SSGAN-style rotation heads in every discriminator (5 classes, 4 = generated).
- RAdam (``torch.optim.RAdam``) with one parameter group per task head; ``--liss_legacy_optim`` reproduces
  torch_optimizer's shared step-size cache. The learning rate decays only once translation runs.

Deliberate deviations (listed in the model's docs): reference encoders and distillation work on every device (official:
DataParallel only, so CPU ``liss`` runs were ``sequential``); ``additional`` follows the README (official:
broken); checkpoints also hold the gray discriminators, the reference encoders and the schedule, so a resumed
run continues in its stage; stale losses are not logged.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from data.liss_dataset import LiSSDataset
from models.base_model import BaseModel
from models.cycle_gan_model import CycleGANModel
from models.liss_training import (
    SCHEDULES,
    THRESHOLD_KIND,
    LegacyRAdam,
    TaskSchedule,
    TranslationLinearDecay,
    task_metrics,
)
from models.losses import GANLoss
from models.networks import init_weights
from models.networks.liss import (
    JIGSAW_SIZE,
    LiSSGenerator,
    RotationalNLayerDiscriminator,
    classifier_map_size,
    parse_tasks,
    patch_map_size,
)
from util.checkpoint import load_file
from util.image_pool import ImagePool
from util.trainer import crossed

LAMBDA_KEY = {"rotation": "lambda_R", "jigsaw": "lambda_J", "depth": "lambda_D", "gray": "lambda_G"}
BOOL = argparse.BooleanOptionalAction


def _opt(*flags: str, **kwargs) -> tuple[tuple[str, ...], dict]:
    return flags, kwargs


# Official names and defaults (vict0rsch/LiSS options/train_options.py and LiSSModel); cycle/identity weights
# share CycleGAN's attribute names, with the official spellings as aliases.
COMMON_OPTIONS = [
    _opt(
        "--auxiliary_tasks",
        default="rotation, gray, depth, jigsaw",
        help="comma list of rotation, jigsaw, depth, gray (they always run in that order)",
    ),
    _opt(
        "--liss_fix_head_norm",
        action=BOOL,
        default=False,
        help="heads' last norm for its real 128 channels (official: 256); needed by --norm batch",
    ),
]
TEST_OPTIONS = [
    _opt("--liss_panels", default="", help="comma list of depth, gray: also save these heads' outputs")
]
TRAIN_OPTIONS = [
    _opt("--lambda_A", "--lambda_CA", dest="lambda_A", type=float, default=10.0, help="cycle A->B->A weight"),
    _opt("--lambda_B", "--lambda_CB", dest="lambda_B", type=float, default=10.0, help="cycle B->A->B weight"),
    _opt("--lambda_identity", "--lambda_I", dest="lambda_identity", type=float, default=0.5,
         help="identity weight, relative to lambda_A/lambda_B"),
    _opt("--lambda_DA", type=float, default=1.0, help="weight of G_A's adversarial loss"),
    _opt("--lambda_DB", type=float, default=1.0, help="weight of G_B's adversarial loss"),
    *[_opt(f"--{LAMBDA_KEY[t]}", type=float, default=1.0, help=f"{t} task weight") for t in LAMBDA_KEY],
    _opt("--lambda_DR", type=float, default=1.0, help="G-side discriminator-rotation weight (--D_rotation)"),
    _opt("--lambda_distillation", type=float, default=5.0, help="L1 to the reference encoders' features"),
    _opt("--task_schedule", default="parallel", choices=SCHEDULES),
    _opt("--rotation_acc_threshold", type=float, default=0.2, help="test accuracy above which rotation passes"),
    _opt("--jigsaw_acc_threshold", type=float, default=0.2, help="test accuracy above which jigsaw is done"),
    _opt("--depth_loss_threshold", type=float, default=0.5, help="test loss below which depth is done"),
    _opt("--gray_loss_threshold", type=float, default=0.5, help="test loss below which gray is done"),
    _opt("--i_loss_threshold", type=float, default=0.5, help="unused (kept for official command lines)"),
    *[_opt(f"--lr_{t}", type=float, default=0.0, help=f"lr of the {t} heads (0: --lr)") for t in LAMBDA_KEY],
    _opt("--encoder_merge_ratio", type=float, default=1.0, help="a in ref = a * encoder + (1 - a) * ref"),
    _opt("--D_rotation", action=BOOL, default=False, help="SSGAN rotation heads in the discriminators"),
    _opt("--repr_mode", default="freeze", choices=["freeze", "flow", "distillation"],
         help="representational schedules: what the encoders do once translation starts"),
    _opt("--jigsaw_size", type=int, default=JIGSAW_SIZE, help="side of the jigsaw window (3x3 tiles)"),
    _opt("--liss_legacy_optim", action=BOOL, default=False,
         help="torch_optimizer RAdam: shared step-size cache, --lr_rotation/--lr_jigsaw ignored"),
    _opt("--liss_idt_own_encoder", action=BOOL, default=False,
         help="identity G_A(B) as CycleGAN (official: G_A's decoder on G_B's encoding)"),
    _opt("--liss_val_phase", default="test", help="split the schedule is validated on (official: test)"),
]  # fmt: skip


def depth_panel(depth: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each depth map to [-1, 1], repeated on 3 channels, for display (official eval)."""
    flat = depth.flatten(1)
    lo, hi = flat.min(1).values.view(-1, 1, 1, 1), flat.max(1).values.view(-1, 1, 1, 1)
    return ((depth - lo) / (hi - lo).clamp_min(1e-12) * 2 - 1).repeat(1, 3, 1, 1)


class LiSSModel(CycleGANModel):
    directions = ("AtoB", "BtoA")

    @staticmethod
    def modify_commandline_options(parser, is_train):
        # The official loader draws a flip and never applies it (known official bug 5): no flips by default. --netG and
        # --netD are not read: the generator is always LiSS's and every D a RotationalNLayerDiscriminator.
        parser.set_defaults(no_dropout=True, no_flip=True)
        for flags, kwargs in COMMON_OPTIONS + (TRAIN_OPTIONS if is_train else TEST_OPTIONS):
            parser.add_argument(*flags, **kwargs)
        if is_train:
            parser.set_defaults(dataset_mode="liss")
        return parser

    @classmethod
    def validate_options(cls, opt, parser):
        try:
            tasks = parse_tasks(opt.auxiliary_tasks)
        except ValueError as exc:
            parser.error(f"--auxiliary_tasks: {exc}")
        if opt.input_nc != 3 or opt.output_nc != 3:
            parser.error("--model liss needs RGB images (--input_nc 3 --output_nc 3)")
        if opt.norm == "batch" and not opt.liss_fix_head_norm:
            parser.error("--norm batch needs --liss_fix_head_norm (official heads norm 128 channels as 256)")
        if not opt.isTrain:
            return
        if opt.lr_policy != "linear":
            parser.error("--model liss decays the lr itself once translation runs: keep --lr_policy linear")
        if "jigsaw" in tasks and (opt.jigsaw_size % 3 or opt.jigsaw_size > opt.crop_size):
            parser.error("--jigsaw_size must be a multiple of 3 and at most --crop_size")
        crops = {"rotation": opt.crop_size, "jigsaw": opt.jigsaw_size}
        sizes = {t: classifier_map_size(crops[t]) for t in tasks if t in crops}
        if len(set(sizes.values())) > 1 or any(s < 2 for s in sizes.values()):
            hint = "e.g. --crop_size 256 --jigsaw_size 222 (official) or --crop_size 96 --jigsaw_size 84"
            parser.error(f"the rotation/jigsaw heads need one map size >= 2, got {sizes}: use {hint}")
        if ("rotation" in tasks or opt.D_rotation) and "crop" not in opt.preprocess:
            parser.error("the rotation task needs square crops: use a --preprocess with crop")
        if opt.D_rotation and ("rotation" not in tasks or patch_map_size(opt.crop_size, opt.n_layers_D) < 2):
            parser.error("--D_rotation needs the rotation task and --crop_size >= 32")

    def __init__(self, opt):
        BaseModel.__init__(self, opt)  # not CycleGANModel's: it would build ResNet generators
        self.tasks = parse_tasks(opt.auxiliary_tasks)
        crop = opt.jigsaw_size if self.tasks == ("jigsaw",) and self.isTrain else opt.crop_size
        g_kwargs = dict(ngf=opt.ngf, n_blocks=6, norm=opt.norm, use_dropout=not opt.no_dropout,
                        head_map_size=classifier_map_size(crop),
                        fix_head_norm=opt.liss_fix_head_norm)  # fmt: skip
        init = dict(init_type=opt.init_type, init_gain=opt.init_gain)
        self.netG_A = init_weights(LiSSGenerator(opt.input_nc, opt.output_nc, **g_kwargs), **init)
        self.netG_B = init_weights(LiSSGenerator(opt.output_nc, opt.input_nc, **g_kwargs), **init)
        self.model_names = ["netG_A", "netG_B"]
        self.visual_names = ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]
        if not self.isTrain:
            return
        # Official: gray discriminators only with the gray task; every D, gray ones too, sees output_nc channels.
        d_names = ["netD_A", "netD_B"] + (["netD_A_gray", "netD_B_gray"] if "gray" in self.tasks else [])
        rotation_map = patch_map_size(opt.crop_size, opt.n_layers_D)
        for name in d_names:
            netD = RotationalNLayerDiscriminator(
                opt.output_nc, opt.ndf, opt.n_layers_D, opt.norm, rotation_map
            )
            setattr(self, name, init_weights(netD, **init))
        self.model_names += d_names
        self.loss_names = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B", "G"]
        self.loss_names += [f"G_{d}_{t}" for t in self.tasks for d in "AB"]
        self.loss_names += ["D_A_gray", "D_B_gray"] if "gray" in self.tasks else []
        self.loss_names += ["G_D_rotation", "D_A_rotation", "D_B_rotation"] if opt.D_rotation else []
        self.loss_names += ["G_distillation_A", "G_distillation_B"]
        self.visual_names += ["idt_A", "idt_B"] if opt.lambda_identity > 0 else []
        self.fake_A_pool, self.fake_B_pool = ImagePool(opt.pool_size), ImagePool(opt.pool_size)
        self.criterionGAN = GANLoss(opt.gan_mode)
        thresholds = {t: getattr(opt, f"{t}_{THRESHOLD_KIND[t]}_threshold") for t in self.tasks}
        self.schedule = TaskSchedule(opt.task_schedule, self.tasks, thresholds)
        self.ref_encoder_A = self.ref_encoder_B = None
        self.n_validations, self.val_metrics, self._val_loader = 0, {}, None
        optim = LegacyRAdam if opt.liss_legacy_optim else torch.optim.RAdam
        betas = (opt.beta1, opt.beta2)
        self.optimizers["G"] = optim(self._g_param_groups(), lr=opt.lr, betas=betas, eps=1e-8)
        d_params = [p for name in d_names for p in getattr(self, name).parameters()]
        self.optimizers["D"] = optim(d_params, lr=opt.lr, betas=betas, eps=1e-8)
        self._apply_freezing()

    def _g_param_groups(self) -> list[dict]:
        """Official order: encoders + decoders, then per task a group with that head of both generators."""
        G_A, G_B = self.netG_A, self.netG_B
        trunk = [*G_A.encoder.parameters(), *G_A.decoder.parameters(), *G_B.encoder.parameters()]
        groups = [{"group_name": "default", "params": trunk + [*G_B.decoder.parameters()]}]
        for task in self.tasks:
            heads = [*getattr(G_A, task).parameters(), *getattr(G_B, task).parameters()]
            groups.append({"group_name": task, "params": heads})
            lr = getattr(self.opt, f"lr_{task}")
            # The official code only reads lr_depth / lr_gray (known official bug 1); all four count unless legacy.
            if lr > 0 and not (self.opt.liss_legacy_optim and task in ("rotation", "jigsaw")):
                groups[-1]["lr"] = lr
        return groups

    def size_multiple(self) -> int:
        return 4

    def discriminators(self) -> list[nn.Module]:
        return [getattr(self, n) for n in self.model_names if n.startswith("netD")]

    # ------------------------------------------------------------------ schedule
    def _apply_freezing(self) -> None:
        """requires_grad as the schedule stage says (also re-applied after a resume)."""
        kind, frozen = self.schedule.kind, self.schedule.repr_is_frozen
        decoders = [self.netG_A.decoder, self.netG_B.decoder]
        if kind == "representational-traduction" and not frozen:
            self.set_requires_grad(decoders, False)
        if kind.startswith("representational") and frozen:
            encoders = [self.netG_A.encoder, self.netG_B.encoder] if self.opt.repr_mode == "freeze" else []
            heads = [getattr(g, t) for g in (self.netG_A, self.netG_B) for t in self.tasks]
            self.set_requires_grad(encoders + heads, False)
            self.set_requires_grad(decoders, True)

    def update_ref_encoder(self) -> None:
        """ref <- copy of the encoder the first time, then a * encoder + (1 - a) * ref (state_dict-wise)."""
        a = self.opt.encoder_merge_ratio
        for X in "AB":
            encoder, ref = getattr(self, f"netG_{X}").encoder, getattr(self, f"ref_encoder_{X}")
            if ref is None:
                ref = copy.deepcopy(encoder)
            else:
                old = ref.state_dict()
                ref.load_state_dict({k: a * v + (1 - a) * old[k] for k, v in encoder.state_dict().items()})
            self.set_requires_grad(ref, False)
            setattr(self, f"ref_encoder_{X}", ref)

    def on_validation(self, metrics: dict[str, float]) -> None:
        event = self.schedule.update(metrics)
        if event is not None:
            stage = ", ".join(k for k, v in self.schedule.on.items() if v)
            print(
                f"LiSS {self.schedule.kind} schedule: {event} after step {self.global_step + 1}; on: {stage}"
            )
        if event == "switch" and self.schedule.kind == "liss":
            self.update_ref_encoder()
        if event == "handover":
            self._apply_freezing()
            if self.opt.repr_mode == "distillation":
                self.update_ref_encoder()

    def on_step_end(self) -> None:
        """Validate after the first iteration and every --display_freq images (official cadence)."""
        step = self.global_step + 1
        if step == 1 or crossed(step, self.opt.batch_size, self.opt.display_freq):
            self.val_metrics = self.validate()
            self.on_validation(self.val_metrics)

    # ------------------------------------------------------------------ training
    def set_input(self, batch: dict) -> None:
        super().set_input(batch)
        for X in "AB":
            for key in ("jigsaw", "jigsaw_target", "depth_target", "gray"):
                if f"{X}_{key}" in batch:
                    setattr(self, f"{key}_{X}", batch[f"{X}_{key}"])
            if f"{X}_rotation" in batch:  # (B, 12, H, W) -> (4B, 3, H, W) and labels (B, 4) -> (4B,)
                views = batch[f"{X}_rotation"]
                setattr(self, f"rotation_{X}", views.reshape(-1, 3, *views.shape[-2:]))
                setattr(self, f"rotation_target_{X}", batch[f"{X}_rotation_target"].reshape(-1))

    def forward(self, on: dict[str, bool] | None = None) -> None:
        on = self.schedule.on if on is None else on
        G_A, G_B = self.netG_A, self.netG_B
        self.z_A, self.z_B = G_A.encoder(self.real_A), G_B.encoder(self.real_B)
        if self.ref_encoder_A is not None:
            with torch.no_grad():
                self.z_ref_A, self.z_ref_B = self.ref_encoder_A(self.real_A), self.ref_encoder_B(self.real_B)
        if on.get("identity"):
            own = self.opt.liss_idt_own_encoder
            self.idt_A = G_A(self.real_B) if own else G_A.decoder(self.z_B)
            self.idt_B = G_B(self.real_A) if own else G_B.decoder(self.z_A)
        if on.get("translation"):
            self.fake_B = G_A.decoder(self.z_A)
            self.rec_A = G_B(self.fake_B)
            self.fake_A = G_B.decoder(self.z_B)
            self.rec_B = G_A(self.fake_A)
        for task in (t for t in self.tasks if on.get(t)):
            for X, G in (("A", G_A), ("B", G_B)):
                # depth reads the image's own encoding; the other tasks encode their own inputs.
                z = getattr(self, f"z_{X}") if task == "depth" else G.encoder(getattr(self, f"{task}_{X}"))
                setattr(self, f"{task}_pred_{X}", getattr(G, task)(z))

    def task_loss(self, task: str, X: str) -> torch.Tensor:
        pred = getattr(self, f"{task}_pred_{X}")
        if task == "depth":
            return F.l1_loss(pred, getattr(self, f"depth_target_{X}").to(pred.dtype))
        if task == "gray":
            adv = self.criterionGAN(getattr(self, f"netD_{X}_gray")(pred)[0], True, for_discriminator=False)
            return 0.1 * adv + 0.9 * F.l1_loss(pred, getattr(self, f"real_{X}"))
        return F.cross_entropy(pred, getattr(self, f"{task}_target_{X}"))

    def backward_G(self) -> torch.Tensor:
        """Sum in the official order: depth, rotation, jigsaw, identity, gray, translation, distillation."""
        opt, on = self.opt, self.schedule.on
        for name in self.loss_names:
            setattr(self, f"loss_{name}", None)  # parts off in this stage are not logged
        total = 0
        for part in ("depth", "rotation", "jigsaw", "identity", "gray", "translation"):
            if not on.get(part):
                continue
            if part == "identity" and opt.lambda_identity > 0:
                self.loss_idt_A = F.l1_loss(self.idt_A, self.real_B) * opt.lambda_B * opt.lambda_identity
                self.loss_idt_B = F.l1_loss(self.idt_B, self.real_A) * opt.lambda_A * opt.lambda_identity
                total = total + (self.loss_idt_A + self.loss_idt_B)
            elif part == "translation":
                total = total + self.translation_loss()
            elif part in self.tasks:
                loss_A, loss_B = self.task_loss(part, "A"), self.task_loss(part, "B")
                setattr(self, f"loss_G_A_{part}", loss_A)
                setattr(self, f"loss_G_B_{part}", loss_B)
                total = total + getattr(opt, LAMBDA_KEY[part]) * (loss_B + loss_A)
        if self.ref_encoder_A is not None:
            self.loss_G_distillation_A = F.l1_loss(self.z_A, self.z_ref_A) * opt.lambda_distillation
            self.loss_G_distillation_B = F.l1_loss(self.z_B, self.z_ref_B) * opt.lambda_distillation
            total = total + (self.loss_G_distillation_A + self.loss_G_distillation_B)
        self.loss_G = total
        return total

    def translation_loss(self) -> torch.Tensor:
        opt, gan = self.opt, self.criterionGAN
        self.loss_G_A = gan(self.netD_A(self.fake_B)[0], True, for_discriminator=False) * opt.lambda_DA
        self.loss_G_B = gan(self.netD_B(self.fake_A)[0], True, for_discriminator=False) * opt.lambda_DB
        self.loss_cycle_A = F.l1_loss(self.rec_A, self.real_A) * opt.lambda_A
        self.loss_cycle_B = F.l1_loss(self.rec_B, self.real_B) * opt.lambda_B
        self.loss_G_D_rotation = torch.zeros((), device=self.real_A.device)
        if opt.D_rotation:
            self.loss_G_D_rotation = opt.lambda_DR * (self.g_d_rotation("A") + self.g_d_rotation("B"))
        return self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B + self.loss_G_D_rotation

    def rotation_ce(self, netD: nn.Module, views: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(netD(rotation=views)[1], target)

    def g_d_rotation(self, X: str) -> torch.Tensor:
        """|CE(D_X on 4 random turns of each fake_X) - CE(D_X on the real turns)| (SSGAN, as official).

        D_X's rotation head sees domain-X images although its GAN head judges the other domain (official).
        """
        netD, fake = getattr(self, f"netD_{X}"), getattr(self, f"fake_{X}")
        perms = [torch.randperm(4) for _ in range(len(self.real_A))]
        views = torch.cat(
            [torch.rot90(fake[i : i + 1], int(k), (-2, -1)) for i, p in enumerate(perms) for k in p]
        )
        loss_fake = self.rotation_ce(netD, views, torch.cat(perms).to(fake.device))
        loss_real = self.rotation_ce(
            netD, getattr(self, f"rotation_{X}"), getattr(self, f"rotation_target_{X}")
        )
        setattr(self, f"loss_G_{X}_D_rotation", (loss_fake - loss_real).abs())
        return getattr(self, f"loss_G_{X}_D_rotation")

    def discriminator_loss(self, netD, real, fake, X: str) -> torch.Tensor:
        """CycleGAN's halved real/fake GAN loss (+ rotation CE on domain X's real turns with --D_rotation)."""
        loss = 0.5 * (
            self.criterionGAN(netD(real)[0], True) + self.criterionGAN(netD(fake.detach())[0], False)
        )
        if self.opt.D_rotation:
            views, target = getattr(self, f"rotation_{X}"), getattr(self, f"rotation_target_{X}")
            loss = loss + self.rotation_ce(netD, views, target)
        return loss

    def mixed_rotation_loss(self, X: str) -> torch.Tensor:
        """D_X classifies each X image's 4 real turns plus the unrotated fake_X (class 4) put at random."""
        real, target = getattr(self, f"rotation_{X}"), getattr(self, f"rotation_target_{X}")
        fake, views, targets = getattr(self, f"fake_{X}"), [], []
        for i in range(len(fake)):
            at = int(torch.randint(0, 5, (1,)))
            r, t = real[4 * i : 4 * i + 4], target[4 * i : 4 * i + 4]
            views.append(torch.cat([r[:at], fake[i : i + 1], r[at:]]))
            targets.append(torch.cat([t[:at], t.new_tensor([4]), t[at:]]))
        return self.rotation_ce(getattr(self, f"netD_{X}"), torch.cat(views).detach(), torch.cat(targets))

    def optimize_D(self) -> None:
        on, schedule, trained = self.schedule.on, self.schedule, False
        self.zero_grad("D")
        waiting = schedule.kind == "representational-traduction" and not schedule.repr_is_frozen
        if on["translation"] and not waiting:
            for X, other, pool in (("A", "B", self.fake_B_pool), ("B", "A", self.fake_A_pool)):
                netD = getattr(self, f"netD_{X}")
                self.set_requires_grad(netD, True)
                fake = pool.query(getattr(self, f"fake_{other}"))
                loss = self.discriminator_loss(netD, getattr(self, f"real_{other}"), fake, X)
                if self.opt.D_rotation:
                    setattr(self, f"loss_D_{X}_rotation", self.mixed_rotation_loss(X))
                    loss = loss + getattr(self, f"loss_D_{X}_rotation")
                setattr(self, f"loss_D_{X}", loss)
                self.backward(loss)
            trained = True
        if on.get("gray"):
            for X in "AB":
                netD = getattr(self, f"netD_{X}_gray")
                self.set_requires_grad(netD, True)
                real, fake = getattr(self, f"real_{X}"), getattr(self, f"gray_pred_{X}")
                setattr(self, f"loss_D_{X}_gray", self.discriminator_loss(netD, real, fake, X))
                self.backward(getattr(self, f"loss_D_{X}_gray"))
            trained = True
        if trained:  # a step without gradients would trip the fp16 GradScaler
            self.step("D")

    def optimize_parameters(self) -> None:
        self.forward()
        self.set_requires_grad(self.discriminators(), False)
        self.backward_and_step(self.backward_G(), "G")
        self.optimize_D()

    # ------------------------------------------------------------------ validation
    def validation_loader(self) -> torch.utils.data.DataLoader:
        if self._val_loader is None:
            opt = self.opt.replace(phase=self.opt.liss_val_phase, serial_batches=True)
            dataset = LiSSDataset(opt)
            self._val_loader = torch.utils.data.DataLoader(
                dataset, opt.batch_size, num_workers=opt.num_threads
            )
        self._val_loader.dataset.set_epoch(self.n_validations)  # new random crops/views each time, replayable
        return self._val_loader

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Task metrics on the validation split with every task on (official eval.py, training transforms).

        The training batch, outputs and losses are restored afterwards, so logs still show the training step.
        """
        saved = {k: v for k, v in vars(self).items() if torch.is_tensor(v)}
        with self.runtime.autocast():
            metrics = task_metrics(self, self.validation_loader(), next(self.netG_A.parameters()).device)
        vars(self).update(saved)
        self.n_validations += 1
        shown = " ".join(f"{k[7:]}={v:.4f}" for k, v in sorted(metrics.items()))
        print(f"LiSS validation {self.n_validations} after step {self.global_step + 1}: {shown}")
        return metrics

    # ------------------------------------------------------------------ schedules, state, visuals
    def setup(self, verbose: bool = False) -> None:
        # Not BaseModel.setup: its --lr_policy schedulers would already change the lr at construction.
        if self.isTrain:
            opt = self.opt
            decay = TranslationLinearDecay(
                self.optimizers.values(), opt.n_epochs, opt.n_epochs_decay, opt.epoch_count
            )
            self.schedulers = {"lr": decay}
        self.print_networks(verbose)

    def on_epoch_end(self, metric: float | None = None) -> None:
        self.schedulers["lr"].epoch_end(self.epoch, self.schedule.on["translation"])

    def total_epochs(self) -> int:
        if not self.isTrain or "lr" not in self.schedulers:
            return super().total_epochs()
        return self.schedulers["lr"].total_epochs(self.schedule.on["translation"])

    def extra_state(self) -> dict:
        if not self.isTrain:
            return {}
        state = super().extra_state()
        state.update(schedule=self.schedule.state_dict(), n_validations=self.n_validations)
        for X in "AB":
            ref = getattr(self, f"ref_encoder_{X}")
            state[f"ref_encoder_{X}"] = None if ref is None else ref.state_dict()
        return state

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        if not self.isTrain or not state:
            return
        self.schedule.load_state_dict(state["schedule"])
        self.n_validations = int(state["n_validations"])
        for X in "AB":
            if state[f"ref_encoder_{X}"] is not None:
                ref = copy.deepcopy(getattr(self, f"netG_{X}").encoder)
                ref.load_state_dict(state[f"ref_encoder_{X}"])
                self.set_requires_grad(ref, False)
                setattr(self, f"ref_encoder_{X}", ref)
        self._apply_freezing()

    def get_current_visuals(self) -> OrderedDict[str, torch.Tensor]:
        visuals = super().get_current_visuals()
        for X in "AB":
            depth, gray = getattr(self, f"depth_pred_{X}", None), getattr(self, f"gray_pred_{X}", None)
            if self.schedule.on.get("depth") and torch.is_tensor(depth):
                visuals[f"depth_pred_{X}"] = depth_panel(depth.detach())
            if self.schedule.on.get("gray") and torch.is_tensor(gray):
                visuals[f"gray_pred_{X}"] = gray
        return visuals

    # ------------------------------------------------------------------ inference and official files
    def translate(self, real: torch.Tensor, direction: str) -> OrderedDict[str, torch.Tensor]:
        visuals = super().translate(real, direction)
        X, G = ("A", self.netG_A) if direction == "AtoB" else ("B", self.netG_B)
        panels = parse_tasks(getattr(self.opt, "liss_panels", ""))
        if "depth" in panels:
            visuals[f"depth_{X}"] = depth_panel(G.depth(G.encoder(real)))
        if "gray" in panels:
            # ITU-R 601-2 luma (PIL 'L') in [-1, 1]: the weights sum to 1, so the affine scaling commutes.
            luma = (real * real.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            visuals[f"gray_{X}"] = G.gray(G.encoder(luma.repeat(1, 3, 1, 1)))
        return visuals

    def _fit_heads(self, name: str, state: dict) -> None:
        """Size generator ``name``'s classifier heads to a state_dict trained at another crop size."""
        net = getattr(self, name)
        key = next((k for k in state if k.endswith("rotation.11.weight")), None)
        if isinstance(net, LiSSGenerator) and key is not None:
            net.set_head_map_size(math.isqrt(state[key].shape[1] // 128))

    def load_inference_state(self, ckpt: dict, source: str = "") -> None:
        for name in self.inference_names:
            self._fit_heads(name, ckpt["networks"].get(name, {}))
        super().load_inference_state(ckpt, source)

    def import_official(self, expr_dir: str, epoch: str, names: list[str]) -> bool:
        """Official ``<epoch>_net_{G_A,G_B,D_A,D_B}.pth`` files: plain state_dicts with these module names."""
        for name, label in self.official_file_labels(names).items():
            path = os.path.join(expr_dir, f"{epoch}_net_{label}.pth")
            if os.path.isfile(path):
                self._fit_heads(name, load_file(path))
        return super().import_official(expr_dir, epoch, names)
