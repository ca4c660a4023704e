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

Speed (same maths, other rounding; each with a flag back to the official computation): the unrotated rotation
view reuses the image's encoding, gray images enter the encoder as one luma channel, unread encodings and
parts weighted 0 are skipped (``--liss_reuse_encodings``); jigsaw and gray are backpropagated as soon as
computed, which lowers peak memory (``--liss_split_backward``); RAdam runs its foreach implementation.
"""

from __future__ import annotations

import functools
import math
import os
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from models.base_model import BaseModel
from models.cycle_gan_model import CycleGANModel
from models.liss_options import LAMBDA_KEY, add_options, check_options, head_min_size
from models.liss_training import THRESHOLD_KIND, LegacyRAdam, ScheduleMixin, TaskSchedule
from models.losses import GANLoss
from models.networks import init_weights
from models.networks.liss import (
    LiSSGenerator,
    RotationalNLayerDiscriminator,
    classifier_map_size,
    depth_panel,
    parse_tasks,
    patch_map_size,
)
from util.checkpoint import load_file
from util.image_pool import ImagePool


class LiSSModel(ScheduleMixin, CycleGANModel):
    directions = ("AtoB", "BtoA")

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return add_options(parser, is_train)

    architecture_options = (*BaseModel.architecture_options, "auxiliary_tasks", "crop_size")
    architecture_options += ("liss_fix_head_norm",)

    @classmethod
    def min_image_size(cls, opt) -> int:
        return max(super().min_image_size(opt), head_min_size(opt))

    @classmethod
    def validate_options(cls, opt, parser):
        check_options(opt, parser)

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
        # foreach: torch's default on CUDA only. On CPU the per-tensor loop (like torch_optimizer's) takes ~0.5 s
        # per G step at full width on one thread, foreach ~0.15 s; same updates up to rounding.
        optim = LegacyRAdam if opt.liss_legacy_optim else functools.partial(torch.optim.RAdam, foreach=True)
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

    def active_parts(self) -> dict[str, bool]:
        """The schedule's parts; with --liss_reuse_encodings less those weighted 0 (zero gradients anyway)."""
        if not self.opt.liss_reuse_encodings:
            return self.schedule.on
        weight = {t: getattr(self.opt, LAMBDA_KEY[t]) for t in self.tasks} | {
            "identity": self.opt.lambda_identity
        }
        return {k: on and weight.get(k, 1.0) != 0 for k, on in self.schedule.on.items()}

    def forward(self, on: dict[str, bool] | None = None) -> None:
        on = self.active_parts() if on is None else on
        G_A, G_B = self.netG_A, self.netG_B
        reuse = self.opt.liss_reuse_encodings
        # Official: both images are always encoded, even in stages where nothing reads the encodings.
        readers = ("identity", "translation", "depth") + (("rotation",) if reuse else ())
        if not reuse or self.ref_encoder_A is not None or any(on.get(k) for k in readers):
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
                setattr(self, f"{task}_pred_{X}", self.task_forward(task, X, G, reuse))

    def task_forward(self, task: str, X: str, G: LiSSGenerator, reuse: bool) -> torch.Tensor:
        """Head ``task`` of G on its input's encoding (depth: the image's own, official).

        ``reuse`` (--liss_reuse_encodings) computes less for the same values: each image's unrotated view,
        which the dataset makes equal to the image, takes the image's encoding instead of a second pass (the
        official encodes all four views), and gray images, one luma channel repeated, go through
        ``encode_luma``. Both are checked on the batch; other inputs take the official path.
        """
        head, z = getattr(G, task), getattr(self, f"z_{X}", None)
        if task == "depth":
            return head(z)
        x = getattr(self, f"{task}_{X}")
        if reuse and task == "gray" and torch.equal(x[:, :1].expand_as(x), x):
            return head(G.encoder.encode_luma(x[:, :1]))
        if reuse and task == "rotation":
            # View positions of each image sorted by angle: column 0 holds the unrotated view. Gathers, not
            # boolean masks, so the only host sync is the one equality check.
            n = z.shape[0]
            by_angle = getattr(self, f"rotation_target_{X}").view(n, 4).argsort(dim=1)
            rows = (torch.arange(n, device=x.device) * 4).unsqueeze(1) + by_angle
            if torch.equal(x[rows[:, 0]], getattr(self, f"real_{X}")):
                pred = head(torch.cat([z, G.encoder(x[rows[:, 1:].reshape(-1)])]))
                sorted_pred = torch.cat([pred[:n].unsqueeze(1), pred[n:].view(n, 3, -1)], dim=1)
                return sorted_pred.reshape(4 * n, -1)[rows.reshape(-1).argsort()]
        return head(G.encoder(x))

    def task_loss(self, task: str, X: str) -> torch.Tensor:
        pred = getattr(self, f"{task}_pred_{X}")
        if task == "depth":
            return F.l1_loss(pred, getattr(self, f"depth_target_{X}").to(pred.dtype))
        if task == "gray":
            adv = self.criterionGAN(getattr(self, f"netD_{X}_gray")(pred)[0], True, for_discriminator=False)
            return 0.1 * adv + 0.9 * F.l1_loss(pred, getattr(self, f"real_{X}"))
        return F.cross_entropy(pred, getattr(self, f"{task}_target_{X}"))

    def task_part(self, task: str) -> torch.Tensor:
        """lambda * (loss_B + loss_A) of one task (official order), logging both domains' losses."""
        loss_A, loss_B = self.task_loss(task, "A"), self.task_loss(task, "B")
        setattr(self, f"loss_G_A_{task}", loss_A)
        setattr(self, f"loss_G_B_{task}", loss_B)
        return getattr(self.opt, LAMBDA_KEY[task]) * (loss_B + loss_A)

    def backward_G(self, skip: tuple[str, ...] = ()) -> torch.Tensor:
        """Sum in the official order: depth, rotation, jigsaw, identity, gray, translation, distillation.

        ``skip``: tasks already backpropagated (``--liss_split_backward``); they count in the logged loss_G only.
        """
        opt, on = self.opt, self.active_parts()
        for name in self.loss_names:
            if not name.endswith(skip):
                setattr(self, f"loss_{name}", None)  # parts off in this stage are not logged
        total = 0
        for part in ("depth", "rotation", "jigsaw", "identity", "gray", "translation"):
            if not on.get(part) or part in skip:
                continue
            if part == "identity" and opt.lambda_identity > 0:
                self.loss_idt_A = F.l1_loss(self.idt_A, self.real_B) * opt.lambda_B * opt.lambda_identity
                self.loss_idt_B = F.l1_loss(self.idt_B, self.real_A) * opt.lambda_A * opt.lambda_identity
                total = total + (self.loss_idt_A + self.loss_idt_B)
            elif part == "translation":
                total = total + self.translation_loss()
            elif part in self.tasks:
                total = total + self.task_part(part)
        if self.ref_encoder_A is not None:
            self.loss_G_distillation_A = F.l1_loss(self.z_A, self.z_ref_A) * opt.lambda_distillation
            self.loss_G_distillation_B = F.l1_loss(self.z_B, self.z_ref_B) * opt.lambda_distillation
            total = total + (self.loss_G_distillation_A + self.loss_G_distillation_B)
        done = [
            getattr(opt, LAMBDA_KEY[t]) * (getattr(self, f"loss_G_B_{t}") + getattr(self, f"loss_G_A_{t}"))
            for t in skip
        ]
        self.loss_G = total + sum(done).detach() if skip else total
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
        n = len(self.real_A)
        # Turn orders drawn on the device and applied by a gather of the 4 turns: no host read, no copy.
        perms = torch.stack([torch.randperm(4, device=fake.device) for _ in range(n)])
        turns = torch.stack([torch.rot90(fake, k, (-2, -1)) for k in range(4)], 1)  # B x 4 x C x H x W
        views = turns[torch.arange(n, device=fake.device).unsqueeze(1), perms].flatten(0, 1)
        loss_fake = self.rotation_ce(netD, views, perms.flatten())
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
            at = int(torch.randint(0, 5, (1,), device="cpu"))  # a host draw: it slices Python-side
            r, t = real[4 * i : 4 * i + 4], target[4 * i : 4 * i + 4]
            views.append(torch.cat([r[:at], fake[i : i + 1], r[at:]]))
            targets.append(torch.cat([t[:at], t.new_full((1,), 4), t[at:]]))
        return self.rotation_ce(getattr(self, f"netD_{X}"), torch.cat(views).detach(), torch.cat(targets))

    def optimize_D(self) -> None:
        on, schedule, trained = self.active_parts(), self.schedule, False
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
        self.set_requires_grad(self.discriminators(), False)
        on, reuse = self.active_parts(), self.opt.liss_reuse_encodings
        # --liss_split_backward: jigsaw and gray read nothing but their own inputs, so each is backpropagated
        # right after its forward, its activations freed before the rest runs (official: one backward).
        early = tuple(t for t in ("jigsaw", "gray") if on.get(t) and self.opt.liss_split_backward)
        self.zero_grad("G")
        for task in early:
            for X, G in (("A", self.netG_A), ("B", self.netG_B)):
                setattr(self, f"{task}_pred_{X}", self.task_forward(task, X, G, reuse))
            self.backward(self.task_part(task))
        self.forward({**on, **dict.fromkeys(early, False)})
        rest = self.backward_G(skip=early)
        if torch.is_tensor(rest):  # 0 when the early tasks were all this stage trains
            self.backward(rest)
        self.step("G")
        self.optimize_D()

    # ------------------------------------------------------------------ visuals
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
