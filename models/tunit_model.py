"""TUNIT (Baek et al., "Rethinking the Truly Unsupervised Image-to-Image Translation", ICCV 2021).

A guiding network C clusters the images (IIC head ``disc``) and encodes their style (MoCo head ``cont``); a
FUNIT-style generator G translates an image to the style of a reference, and a multi-head discriminator D
judges it under the reference's pseudo label. One iteration, as clovaai/tunit ``train/train_*.py``:

1. C step (always): MoCo loss against the momentum copy C_ema and a key queue, plus 5 x IIC mutual
   information (semi-supervised labelled iterations: 5 x cross-entropy; supervised: MoCo only, x0.1);
   x0.1 once the GAN has started.
2. From ``gan_start`` on: pseudo labels from the updated C, a D step (hinge + R1), then one G step whose
   loss also trains C (C gets a second Adam step; C is the style encoder).
3. The keys of this batch enter the queue; C_ema (and G_ema from ``ema_start``) follow by EMA of their
   parameters; at the end of every official epoch all buffers are copied to the EMA nets (quirk E1).

Deliberate differences from the official code, each reachable by an option (see ``docs/tunit.md``): the
queue persists across epochs and is saved (Q1, ``--tunit_queue_reset_each_epoch`` restores the reset), the
schedule never divides by ``iters // 1000`` (S1), D is frozen during the G step (D1: same numbers), the
startup queue is made from the first training batch instead of a separate draw, and IIC clamps out of
place (I1). The default step shares guiding-net trunk passes (the GAN part runs two where upstream runs
four), runs one D backward and one D call in the G step (same maths, other float rounding) and returns the
freed heap to the OS before the D step; ``--tunit_official_step`` runs upstream's op order.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F

from models.base_model import BaseModel
from models.losses.contrastive import MoCoQueue, hinge_adv_loss, iic_loss, moco_loss, r1_penalty
from models.networks.tunit import Discriminator, Generator, GuidingNet
from models.tunit_options import add_tunit_options, option_errors
from models.tunit_support import (
    TunitSchedule,
    cluster_styles,
    copy_buffers,
    ema_update,
    eval_mode,
    load_official_checkpoint,
    official_checkpoint_path,
    parse_widths,
    release_free_heap,
    repeated_bn_updates,
    style_images,
)
from util.checkpoint import load_file
from util.distributed import all_gather_cat


class TunitModel(BaseModel):
    length_option = "--tunit_epochs (x --tunit_epoch_iters) or --max_steps"
    architecture_options = ("crop_size", "input_nc", "output_nc", "output_k", "sty_dim", "tunit_g_nf",
                            "tunit_g_nf_mlp", "tunit_c_widths")  # fmt: skip

    @classmethod
    def training_size_multiple(cls, opt) -> int:
        return 1  # validate_options asks for a power of two, which TUNIT's generator depth is derived from

    @classmethod
    def min_image_size(cls, opt) -> int:
        """32 px: the generator downsamples log2(S / 16) times and needs at least one (a power of two >= 32)."""
        return 32

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return add_tunit_options(parser, is_train)

    @classmethod
    def validate_options(cls, opt, parser):
        errors = option_errors(opt)
        if errors:
            parser.error(errors[0])

    @classmethod
    def grad_accum_blocker(cls, opt) -> str:
        return "TUNIT steps C twice per iteration and its losses use whole-batch statistics (BatchNorm, IIC)"

    def __init__(self, opt):
        super().__init__(opt)
        c_kwargs = dict(sty_dim=opt.sty_dim, output_k=opt.output_k, widths=parse_widths(opt.tunit_c_widths))
        g_kwargs = dict(
            img_size=opt.crop_size, sty_dim=opt.sty_dim, nf=opt.tunit_g_nf or None, nf_mlp=opt.tunit_g_nf_mlp
        )
        self.visual_names = ["x_org", "x_tf", "x_ref", "x_fake", "x_rec"]
        if not self.isTrain:
            self.model_names = ["netG_ema", "netC_ema"] + (["netC"] if opt.tunit_cluster_net == "C" else [])
            self.netG_ema, self.netC_ema = Generator(**g_kwargs), GuidingNet(**c_kwargs)
            self.netC = GuidingNet(**c_kwargs) if opt.tunit_cluster_net == "C" else None
            self.styles: torch.Tensor | None = None
            return
        self.mode = "unsup" if opt.p_semi == 0.0 else "sup" if opt.p_semi == 1.0 else "semi"
        c_losses = {"unsup": ["C_iic"], "semi": ["C_iic", "C_ce"], "sup": []}[self.mode]
        self.loss_names = ["C_moco", *c_losses, "C", *"D_real D_fake D_gp D G_adv G_rec G_sty G".split()]
        self.model_names = ["netC", "netC_ema", "netD", "netG", "netG_ema"]
        # Construction order of main.py's build_model, so a seed gives the official initial weights.
        self.netC, self.netC_ema = GuidingNet(**c_kwargs), GuidingNet(**c_kwargs)
        self.netD = Discriminator(opt.crop_size, opt.output_k, opt.tunit_d_max_nf, opt.tunit_d_nf or None)
        self.netG, self.netG_ema = Generator(**g_kwargs), Generator(**g_kwargs)
        self.netC_ema.load_state_dict(self.netC.state_dict())  # G_ema stays random until ema_start (E2)
        self.set_requires_grad([self.netC_ema, self.netG_ema], False)
        self.optimizers = {
            "C": torch.optim.Adam(
                self.netC.parameters(),
                lr=opt.lr,
                betas=(opt.beta1, opt.beta2),
                weight_decay=opt.c_weight_decay,
            ),
            "D": torch.optim.RMSprop(self.netD.parameters(), lr=opt.lr, weight_decay=opt.gd_weight_decay),
            "G": torch.optim.RMSprop(self.netG.parameters(), lr=opt.lr, weight_decay=opt.gd_weight_decay),
        }
        self.schedule = TunitSchedule(
            self.mode,
            opt.tunit_epoch_iters,
            opt.tunit_epochs,
            opt.p_semi,
            opt.tunit_gan_start,
            opt.tunit_ema_start,
            opt.tunit_semi_warm_epochs,
        )
        self.queue = MoCoQueue(opt.moco_k)
        self.queue0: torch.Tensor | None = None  # the startup keys (for the Q1 compatibility reset)
        self.start_iter = opt.tunit_start_iter
        self.pending_optimizer_states: dict | None = None
        if opt.tunit_official_ckpt:
            ckpt = load_official_checkpoint(self, opt.tunit_official_ckpt, self.model_names)
            self.pending_optimizer_states = {
                k: ckpt[f"{k.lower()}_optimizer"] for k in "CDG" if f"{k.lower()}_optimizer" in ckpt
            }

    # ------------------------------------------------------------------ schedule and bookkeeping
    def setup(self, verbose: bool = False) -> None:
        super().setup(verbose)
        self.schedulers = {}  # TUNIT keeps every learning rate constant

    def max_steps(self) -> int | None:
        if self.opt.max_steps:
            return self.opt.max_steps
        return max(self.schedule.total_steps - self.start_iter, 0)

    def total_epochs(self) -> int:
        return 1 << 30  # iteration-based

    @property
    def inference_names(self) -> list[str]:
        return ["netG_ema", "netC_ema"] + (
            ["netC"] if getattr(self.opt, "tunit_cluster_net", "") == "C" else []
        )

    def size_multiple(self) -> int:
        return 2**self.netG_ema.n_downs

    def _step_index(self) -> int:
        return self.global_step + self.start_iter

    # ------------------------------------------------------------------ training
    def set_input(self, batch: dict) -> None:
        self.batch = batch
        self.image_paths = batch.get("A_paths")

    def _views(self, labelled: bool):
        b = self.batch
        if labelled and self.mode == "semi":
            return b["L"], b["L_tf"], b["L_label"]
        return b["A"], b["A_tf"], b.get("label")

    def optimize_parameters(self) -> None:
        t, s = self._step_index(), self.schedule
        if self.pending_optimizer_states is not None:  # official states, loaded once params are on the device
            for name, state in self.pending_optimizer_states.items():
                self.optimizers[name].load_state_dict(state)
            self.pending_optimizer_states = None
        if t == s.ema_start:
            self.netG_ema.load_state_dict(self.netG.state_dict())  # main.py: G_EMA := G at ema_start
        if len(self.queue) == 0:
            with torch.no_grad():  # C_ema in train mode, as initialize_queue (moves its BN statistics)
                self.queue0 = all_gather_cat(self.netC_ema.moco(self.batch["A_tf"]).detach())
            self.queue.reset(self.queue0)
        labelled = s.labelled(t)
        x_org, x_tf, y = self._views(labelled)
        perm = self.batch.get("ref_idx")  # tests inject the reference permutation
        perm = torch.randperm(x_org.size(0), device=x_org.device) if perm is None else perm
        self.x_org, self.x_tf, self.x_ref = x_org, x_tf, x_org[perm]
        self.x_fake = self.x_rec = None
        gan = t >= s.gan_start
        k, p_org = self._c_step(x_org, x_tf, y, labelled, gan)
        if gan:
            # Pseudo labels: unsupervised from the updated C (official), semi from the pre-update p.
            unsup_labels = not labelled and self.mode == "unsup"
            y_org = y if labelled else None if unsup_labels else torch.argmax(p_org, 1)
            if self.opt.tunit_official_step:
                self._gan_official(y_org, perm)
            else:
                self._gan_fast(y_org, perm)
        self.queue.push(all_gather_cat(k))  # under torchrun the keys of every process, in rank order (MoCo)

    def _c_step(self, x_org, x_tf, y, labelled: bool, gan: bool):
        opt, net = self.opt, self.netC
        k = None
        if self.mode == "sup" or opt.tunit_official_step:
            q = net.moco(x_org)
        else:  # C.moco(x_org) and C.iic(x_org) run the same trunk on the same batch: run it once
            with repeated_bn_updates(net, 2):
                feat_org = net.trunk(x_org)
            q = net.cont(feat_org)
        with torch.no_grad():  # the keys are detached upstream: no graph to build
            k = self.netC_ema.moco(x_tf)
        self.loss_C_moco = moco_loss(q, k, self.queue.tensor, opt.moco_t)
        p_org = None
        if self.mode == "sup":
            loss = opt.tunit_c_gan_factor * self.loss_C_moco  # supervised: MoCo only, always x0.1
        else:
            logit_org = net.iic(x_org) if opt.tunit_official_step else net.disc(feat_org)
            logit_tf = net.iic(x_tf)
            if labelled:
                self.loss_C_ce = F.cross_entropy(logit_org, y) + F.cross_entropy(logit_tf, y)
                loss = self.loss_C_moco + opt.lambda_iic * self.loss_C_ce
            else:
                p_org = F.softmax(logit_org, 1)
                self.loss_C_iic = iic_loss(p_org, F.softmax(logit_tf, 1))
                loss = self.loss_C_moco + opt.lambda_iic * self.loss_C_iic
            if gan or (self.mode == "semi" and not labelled):  # semi unlabelled iterations: always x0.1
                loss = opt.tunit_c_gan_factor * loss
        self.loss_C = loss
        self._step(loss, "C")
        return k, None if p_org is None else p_org.detach()

    def _step(self, loss: torch.Tensor, *names: str) -> None:
        # Upstream keeps the gradients until the next step; the default step frees them at once.
        self.backward_and_step(loss, *names, free_grads=not self.opt.tunit_official_step)

    def _gan_official(self, y_org, perm) -> None:
        """Official order: labels and x_fake under no_grad, D step, then the G step recomputes it all."""
        C, G = self.netC, self.netG
        with torch.no_grad():
            self.y_org = torch.argmax(C.iic(self.x_org), 1) if y_org is None else y_org
            self.y_ref = self.y_org[perm]
            x_fake = G.decode(G.cnt_encoder(self.x_org), C.moco(self.x_ref))
        self._d_step(x_fake)
        s_src, s_ref = C.moco(self.x_org), C.moco(self.x_ref)
        c_src = G.cnt_encoder(self.x_org)
        self.x_fake = G.decode(c_src, s_ref)
        self.x_rec = G.decode(c_src, s_src)
        self._g_step()

    def _gan_fast(self, y_org, perm) -> None:
        """The same maths with fewer passes and the D step's peak lowered (docs/tunit.md, "Speed").

        C and G do not change before the G step (only D is stepped), and BatchNorm batch statistics do not
        depend on the order of the batch, so one no_grad C trunk pass on x_org gives the labels and s_ref
        (upstream: C.iic(x_org) and C.moco(x_ref)), and one C.moco(x_org) with gradients gives the G step's
        s_src and s_ref = s_src[perm] (upstream: two passes). As upstream, the D step's fake is made under
        no_grad and the generator graph is built after the D step, so the D step (the iteration's memory
        peak) runs with no graph alive; before it, the freed heap pages go back to the OS.
        """
        C, G = self.netC, self.netG
        with torch.no_grad():
            with repeated_bn_updates(C, 3 if y_org is None else 2):  # iic(x_org)?, moco(x_ref), moco(x_org)
                feat = C.trunk(self.x_org)
            self.y_org = torch.argmax(C.disc(feat), 1) if y_org is None else y_org
            self.y_ref = self.y_org[perm]
            x_fake = G.decode(G.cnt_encoder(self.x_org), C.cont(feat)[perm])
        del feat
        if self.x_org.device.type == "cpu":
            release_free_heap()
        self._d_step(x_fake)
        del x_fake
        s_src = C.moco(self.x_org)  # the last BatchNorm update: moco(x_ref) of the G step
        c_src = G.cnt_encoder(self.x_org)
        self.x_fake = G.decode(c_src, s_src[perm])
        self.x_rec = G.decode(c_src, s_src)
        self._g_step()

    def _d_step(self, x_fake: torch.Tensor) -> None:
        x_ref = self.x_ref.detach().requires_grad_()
        d_real, _ = self.netD(x_ref, self.y_ref)
        d_fake, _ = self.netD(x_fake.detach(), self.y_ref)
        self.loss_D_real = hinge_adv_loss(d_real, "d_real")
        self.loss_D_fake = hinge_adv_loss(d_fake, "d_fake")
        self.loss_D_gp = self.opt.lambda_r1 * r1_penalty(d_real, x_ref)
        self.loss_D = self.loss_D_real + self.loss_D_fake + self.loss_D_gp
        if not self.opt.tunit_official_step:  # one backward pass through D(x_ref) instead of two
            self._step(self.loss_D, "D")
            return
        # Three backward calls in the official order: the float sums of the gradients match upstream.
        self.zero_grad("D")
        self.backward(self.loss_D_real, retain_graph=True)
        self.backward(self.loss_D_gp)
        self.backward(self.loss_D_fake)
        self.step("D")

    def _g_step(self) -> None:
        opt, C, D = self.opt, self.netC, self.netD
        self.set_requires_grad(D, False)  # D1: upstream fills D's grads here and discards them
        if opt.tunit_official_step:
            logit_fake, logit_rec = D(self.x_fake, self.y_ref)[0], D(self.x_rec, self.y_org)[0]
        else:  # D has no batch statistics (FRN is per sample): one call for both
            logits = D(torch.cat([self.x_fake, self.x_rec]), torch.cat([self.y_ref, self.y_org]))[0]
            logit_fake, logit_rec = logits.chunk(2)
        self.loss_G_adv = hinge_adv_loss(logit_fake, "g") + hinge_adv_loss(logit_rec, "g")
        self.loss_G_rec = torch.mean(torch.abs(self.x_rec - self.x_org))
        with torch.no_grad():
            s_ref_ema = self.netC_ema.moco(self.x_ref)
        self.loss_G_sty = moco_loss(C.moco(self.x_fake), s_ref_ema, self.queue.tensor, opt.moco_t)
        self.loss_G = (
            opt.lambda_adv * self.loss_G_adv
            + opt.lambda_rec * self.loss_G_rec
            + opt.lambda_sty * self.loss_G_sty
        )
        # C (the style encoder) is trained by the G loss too (clovaai/tunit#27); C steps first, as upstream.
        self._step(self.loss_G, "C", "G")
        self.set_requires_grad(D, True)

    def on_step_end(self) -> None:
        t, s, beta = self._step_index(), self.schedule, self.opt.ema_beta
        if t >= s.ema_start:
            ema_update(self.netG_ema, self.netG, beta)
        ema_update(self.netC_ema, self.netC, beta)
        if s.epoch_end(t):
            copy_buffers(self.netG_ema, self.netG)
            copy_buffers(self.netC_ema, self.netC)
            if self.opt.tunit_queue_reset_each_epoch and self.queue0 is not None:
                self.queue.reset(self.queue0)

    def extra_state(self) -> dict:
        if not self.isTrain:
            return {}
        queue0 = None if self.queue0 is None else self.queue0.detach().cpu()
        return {"queue": self.queue.state_dict(), "queue0": queue0}

    def load_extra_state(self, state: dict) -> None:
        if self.isTrain and state:
            device = next(self.netC.parameters()).device
            self.queue.load_state_dict(state["queue"], device=device)
            self.queue0 = None if state["queue0"] is None else state["queue0"].to(device)

    # ------------------------------------------------------------------ inference
    def import_official(self, expr_dir: str, epoch: str, names: list[str]) -> bool:
        path = official_checkpoint_path(expr_dir, epoch)
        if path is None:
            return False
        load_official_checkpoint(self, path, names)
        print(f"loaded official TUNIT weights for {', '.join(names)} from {path}")
        return True

    def official_file_labels(self, names: list[str]) -> dict[str, str]:
        return {n: "model_<N>.ckpt" for n in names}

    @torch.no_grad()
    def style_codes(self, device: torch.device) -> tuple[torch.Tensor, list[str]]:
        """The styles to render with, (K or R, sty_dim), and their visual labels; computed once, then cached.

        Cluster mode (the paper's figures, clovaai/tunit#13/#26): images of ``--tunit_style_dir`` are assigned
        to clusters by C_ema (or C) and each cluster's style is the mean of their C_ema style codes. Reference
        mode: one style per image. Guiding nets run in eval mode (BatchNorm running statistics).
        """
        if self.styles is not None:
            return self.styles.to(device), self.style_labels
        opt = self.opt
        if opt.tunit_styles:
            saved = load_file(opt.tunit_styles)
            self.styles, labels = saved["styles"], [f"to_cluster{k}" for k in saved.get("clusters", [])]
            self.style_labels = labels or [f"to_cluster{k}" for k in range(self.styles.size(0))]
            return self.styles.to(device), self.style_labels
        limit = opt.tunit_max_style_images or (2000 if opt.tunit_style == "cluster" else 8)
        images = style_images(opt.tunit_style_dir or opt.dataroot, opt.crop_size, opt.input_nc, limit)
        with eval_mode(self.netC_ema, self.netC):
            if opt.tunit_style == "reference":
                self.styles = torch.cat([self.netC_ema.moco(x.to(device)) for x in images.split(50)])
                self.style_labels = [f"to_ref{j}" for j in range(images.size(0))]
            else:
                assign = self.netC if opt.tunit_cluster_net == "C" else self.netC_ema
                styles, counts = cluster_styles(assign, self.netC_ema, images, opt.output_k, device)
                keep = [k for k, n in enumerate(counts) if n > 0]
                if len(keep) < len(counts):
                    print(
                        f"warning: clusters {[k for k, n in enumerate(counts) if n == 0]} got no style images"
                    )
                self.styles, self.style_labels = styles[keep], [f"to_cluster{k}" for k in keep]
        return self.styles.to(device), self.style_labels

    def translate(self, real: torch.Tensor, direction: str) -> OrderedDict[str, torch.Tensor]:
        styles, labels = self.style_codes(real.device)
        visuals = OrderedDict(real_A=real)
        content = self.netG_ema.cnt_encoder(real)
        for label, s in zip(labels, styles):
            visuals[label] = self.netG_ema.decode(content, s.unsqueeze(0).expand(real.size(0), -1))
        return visuals

    @staticmethod
    def output_visual(direction: str, visuals: dict) -> str:
        return next(k for k in visuals if k.startswith("to_"))
