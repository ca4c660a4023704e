"""U-GAT-IT (Kim et al., ICLR 2020) as znxlwm/UGATIT-pytorch, with its bugs fixed where that changes no number.

genA2B, genB2A: CAM-attention ResNet generators with an AdaILN decoder; disGA/disGB (global, 7 layers) and
disLA/disLB (local, 5 layers) judge domain A / B, each with its own CAM logits. One iteration:

1. the six generator calls (A→B, B→A, both cycles, both identities), once; the D step comes after the first
   two, so the other four graphs are not alive during it;
2. D step (LSGAN on logits and CAM logits) on the *detached* fakes;
3. G step with the D frozen but still in training mode (their spectral norms iterate, as officially):
   adv_weight·LSGAN + cycle_weight·L1 + identity_weight·L1 + cam_weight·BCE(G's CAM logits);
4. ρ of every (Ada)ILN clipped to [0, 1]; lr decays linearly to 0 over the second half of ``--iteration``.

The official code recomputes the two fakes for the D step without detaching them (bug 1) and lets D collect
gradients in the G step (bug 2). G's weights do not change between the two steps, so computing the fakes once
and freezing D gives the same numbers with 6 instead of 8 generator passes. Other deviations, each behind an
option where published behaviour depends on it (docs/ugatit.md lists all):

- lr decay (bug 5): closed form lr0·(1 − (s − N/2)/(N/2)), clamped at 0 (official: repeated subtraction that
  goes negative for odd N and divides by zero for N < 2); identical for even N.
- ``--ugatit_d_cam_weight raw|sn`` (bug 12): D scales its CAM features by the raw ``weight_orig`` (official) or
  the spectral-normalised weight (TF).
- ``--ugatit_norm_var unbiased|biased`` (bug 13): ILN/AdaILN variance as PyTorch official or TF/paper.
- ``--no-weight_decay_norms`` (bug 15): no L2 decay on ρ/γ/β (official decays every parameter).
- ``--ugatit_fast_d``: D on real and fake in one batched call and in eval mode for the G step; faster, but not
  the official numbers (SN iterates once instead of three times per iteration).

Speed paths, on by default, each the official maths with different float rounding (``--no-`` forms give the
bit-exact official computation): ``--ugatit_fused_sn`` (spectral norm scales each D layer's output by 1/σ
instead of building W/σ), ``--ugatit_batch_d`` (the D step's real and fake in one call per D, one power
iteration per half), ``--ugatit_fused_norm`` (ILN/AdaILN as one scale-shift), ``--ugatit_fused_adam``. Both
optimisers' gradients are freed right after their step.
- ``--n_global_dis``/``--n_local_dis`` replace the ignored ``--n_dis`` (bug 4); loss weights are floats (bug 10).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from models.base_model import BaseModel
from models.losses.ugatit import bce, mse
from models.networks.adaptive_norms import RhoClipper
from models.networks.init import init_weights
from models.networks.ugatit import Discriminator, ResnetGenerator
from models.ugatit_options import add_ugatit_options, min_image_size, option_errors
from models.ugatit_support import UGATITDecay, UGATITOfficialFiles, heatmap_image, ugatit_adam

D_NAMES = ("disGA", "disLA", "disGB", "disLB")  # official loss order: GA, LA, then GB, LB


class UGATITModel(UGATITOfficialFiles, BaseModel):
    directions = ("AtoB", "BtoA")
    arch = "official"
    length_option = "--iteration"
    architecture_options = (*BaseModel.architecture_options, "light", "n_res", "ch", "ugatit_norm_var")

    @classmethod
    def architecture_from(cls, saved: dict, known) -> dict:
        arch = super().architecture_from(saved, known)
        if saved.get("light") == 0:  # the full generator's MLP flattens the whole map: built for one size
            arch["crop_size"] = saved["crop_size"]
        return arch

    @classmethod
    def training_size_multiple(cls, opt) -> int:
        return 4  # U-GAT-IT's own generator (not --netG): two stride-2 downsamplings

    @classmethod
    def min_image_size(cls, opt) -> int:
        return min_image_size(opt)

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return add_ugatit_options(parser, is_train)

    @classmethod
    def preset_defaults(cls, known, is_train):
        if known.img_size is None:
            return {}
        return {"crop_size": known.img_size, "load_size": known.img_size + (30 if is_train else 0)}

    @classmethod
    def validate_options(cls, opt, parser):
        errors = option_errors(opt)
        if errors:
            parser.error(errors[0])
        if opt.light == 0 and (opt.crop_size % 4 or opt.preprocess in ("none", "scale_width")):
            parser.error(
                "the full U-GAT-IT generator (--light False) needs fixed square inputs of a multiple of 4: "
                "use --preprocess resize_and_crop or crop, or --light True"
            )
        if opt.isTrain and opt.max_steps < 1:
            parser.error("--iteration must be >= 1")

    # ------------------------------------------------------------------ construction
    def __init__(self, opt):
        super().__init__(opt)
        self.ngf = opt.ch or opt.ngf
        self.ndf = opt.ch or opt.ndf
        self.visual_names = [
            "real_A",
            "fake_A2B",
            "fake_A2B2A",
            "fake_A2A",
            "heatmap_A2B",
            "real_B",
            "fake_B2A",
            "fake_B2A2B",
            "fake_B2B",
            "heatmap_B2A",
        ]
        self.genA2B = self.build_generator()
        self.genB2A = self.build_generator()
        self.model_names = ["genA2B", "genB2A"]
        if not self.isTrain:
            return
        self.d_losses = [f"D_ad{c}_loss_{d[3:]}" for d in D_NAMES for c in ("", "_cam")]
        self.g_adv_losses = [f"G_ad{c}_loss_{d[3:]}" for d in D_NAMES for c in ("", "_cam")]
        self.loss_names = [
            *self.d_losses,
            "D_loss_A",
            "D_loss_B",
            "Discriminator_loss",
            *self.g_adv_losses,
            "G_recon_loss_A",
            "G_identity_loss_A",
            "G_cam_loss_A",
            "G_loss_A",
            "G_recon_loss_B",
            "G_identity_loss_B",
            "G_cam_loss_B",
            "G_loss_B",
            "Generator_loss",
        ]
        for name in ("disGA", "disGB", "disLA", "disLB"):  # official construction order
            depth = opt.n_global_dis if name.startswith("disG") else opt.n_local_dis
            setattr(self, name, self.build_discriminator(depth))
        self.model_names += ["disGA", "disGB", "disLA", "disLB"]
        self.rho_clipper = RhoClipper(0.0, 1.0)
        self.optimizers["G"] = self.make_optimizer([self.genA2B, self.genB2A])
        self.optimizers["D"] = self.make_optimizer([self.disGA, self.disGB, self.disLA, self.disLB])
        if opt.official_ckpt:
            self.load_official_file(opt.official_ckpt, list(self.model_names))

    def generator_kwargs(self) -> dict:
        opt = self.opt
        return dict(
            ngf=self.ngf,
            n_blocks=opt.n_res,
            img_size=opt.crop_size,
            light=opt.light,
            arch=self.arch,
            unbiased_var=opt.ugatit_norm_var == "unbiased",
            fused_norm=opt.ugatit_fused_norm,
            input_nc=opt.input_nc,
            output_nc=opt.output_nc,
        )

    def discriminator_kwargs(self) -> dict:
        return dict(
            arch=self.arch, cam_weight=self.opt.ugatit_d_cam_weight, fused_sn=self.opt.ugatit_fused_sn
        )

    def build_generator(self) -> ResnetGenerator:
        return self._init(ResnetGenerator(**self.generator_kwargs()))

    def build_discriminator(self, n_layers: int) -> Discriminator:
        return self._init(Discriminator(ndf=self.ndf, n_layers=n_layers, **self.discriminator_kwargs()))

    def _init(self, net: nn.Module) -> nn.Module:
        # Official: no init call, i.e. PyTorch's defaults; --init_type normal gives the TF N(0, 0.02).
        if self.opt.init_type != "pytorch":
            init_weights(net, self.opt.init_type, self.opt.init_gain)
        return net

    def make_optimizer(self, nets: list[nn.Module]) -> torch.optim.Adam:
        return ugatit_adam(nets, self.opt)

    def setup(self, verbose: bool = False) -> None:
        if self.isTrain:
            decay = UGATITDecay(self.opt.max_steps, self.opt.decay_flag)
            self.schedulers = {name: LambdaLR(o, decay) for name, o in self.optimizers.items()}
        self.print_networks(verbose)

    def max_steps(self) -> int | None:
        return self.opt.max_steps if self.isTrain else None

    def total_epochs(self) -> int:
        return 10**9  # iteration-based: --iteration decides

    # ------------------------------------------------------------------ training
    def set_input(self, batch: dict) -> None:
        self.real_A, self.real_B = batch["A"], batch["B"]
        self.image_paths = batch.get("A_paths")

    def forward(self) -> None:
        """The six generator calls of an iteration, in the official order."""
        self.forward_translations()
        self.forward_reconstructions()

    def forward_translations(self) -> None:
        """A→B and B→A: all the D step needs."""
        self.fake_A2B, self.cam_A2B, self.heat_A2B = self.genA2B(self.real_A)
        self.fake_B2A, self.cam_B2A, self.heat_B2A = self.genB2A(self.real_B)

    def forward_reconstructions(self) -> None:
        """Cycles and identities, built after the D step so their graphs are not alive during it."""
        self.fake_A2B2A, _, _ = self.genB2A(self.fake_A2B)
        self.fake_B2A2B, _, _ = self.genA2B(self.fake_B2A)
        self.fake_A2A, self.cam_A2A, _ = self.genB2A(self.real_A)
        self.fake_B2B, self.cam_B2B, _ = self.genA2B(self.real_B)

    def discriminate(
        self, name: str, x: torch.Tensor, src: str | None, sn_groups: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logit map, CAM logits) of discriminator ``name`` on ``x``, an image made from domain ``src``.

        ``src`` selects the segmentation mask in the enhanced model; the official model ignores it.
        ``sn_groups``: see ``Discriminator.forward``.
        """
        logit, cam_logit, _ = getattr(self, name)(x, sn_groups=sn_groups)
        return logit, cam_logit

    def d_step_groups(self) -> int:
        """How the D step calls each D: 0 = real, then fake (official); 2 = one batched call whose halves
        get one power iteration each (same numbers, needs the fused SN); 1 = one batched call with a single
        power iteration (``--ugatit_fast_d``, not the official numbers)."""
        o = self.opt
        if o.ugatit_fast_d:
            return 1
        return 2 if o.ugatit_batch_d and o.ugatit_fused_sn else 0

    def mask_logit(self, logit: torch.Tensor, src: str, target: float) -> torch.Tensor:
        """Hook for the enhanced ``--seg_D_mask`` (background logits set to their target); identity here."""
        return logit

    def real_fake(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Real images of the D's domain and the (detached) fakes translated into it."""
        if name[-1] == "A":
            return self.real_A, self.fake_B2A.detach()
        return self.real_B, self.fake_A2B.detach()

    def d_terms(self) -> dict[str, torch.Tensor]:
        """LSGAN terms (real → 1, fake → 0) of each D on its logit map and on its CAM logits."""
        terms = {}
        for name in D_NAMES:
            real, fake = self.real_fake(name)
            dom, other = name[-1], "B" if name[-1] == "A" else "A"  # fakes of domain X come from the other
            groups = self.d_step_groups()
            if groups:
                logit, cam = self.discriminate(name, torch.cat([real, fake]), None, groups)
                (real_logit, fake_logit), (real_cam, fake_cam) = logit.chunk(2), cam.chunk(2)
            else:
                real_logit, real_cam = self.discriminate(name, real, dom)
                fake_logit, fake_cam = self.discriminate(name, fake, other)
            real_logit = self.mask_logit(real_logit, dom, 1.0)
            fake_logit = self.mask_logit(fake_logit, other, 0.0)
            suffix = name[3:]
            terms[f"D_ad_loss_{suffix}"] = mse(real_logit, 1.0) + mse(fake_logit, 0.0)
            terms[f"D_ad_cam_loss_{suffix}"] = mse(real_cam, 1.0) + mse(fake_cam, 0.0)
        return terms

    def combine_d(self, t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.opt.adv_weight
        loss_a = w * (t["D_ad_loss_GA"] + t["D_ad_cam_loss_GA"] + t["D_ad_loss_LA"] + t["D_ad_cam_loss_LA"])
        loss_b = w * (t["D_ad_loss_GB"] + t["D_ad_cam_loss_GB"] + t["D_ad_loss_LB"] + t["D_ad_cam_loss_LB"])
        return loss_a, loss_b

    def backward_D(self) -> torch.Tensor:
        terms = self.d_terms()
        for key, value in terms.items():
            setattr(self, f"loss_{key}", value)
        self.loss_D_loss_A, self.loss_D_loss_B = self.combine_d(terms)
        self.loss_Discriminator_loss = self.loss_D_loss_A + self.loss_D_loss_B
        return self.loss_Discriminator_loss

    def g_fakes(self) -> dict[str, torch.Tensor]:
        """The fakes each D judges in the G step (the enhanced model may detach their backgrounds)."""
        return {"A": self.fake_B2A, "B": self.fake_A2B}

    def g_terms(self) -> dict[str, torch.Tensor]:
        fakes = self.g_fakes()
        terms = {}
        for name in D_NAMES:
            src = "B" if name[-1] == "A" else "A"
            logit, cam = self.discriminate(name, fakes[name[-1]], src)
            logit = self.mask_logit(logit, src, 1.0)
            terms[f"G_ad_loss_{name[3:]}"] = mse(logit, 1.0)
            terms[f"G_ad_cam_loss_{name[3:]}"] = mse(cam, 1.0)
        terms["G_recon_loss_A"] = F.l1_loss(self.fake_A2B2A, self.real_A)
        terms["G_recon_loss_B"] = F.l1_loss(self.fake_B2A2B, self.real_B)
        terms["G_identity_loss_A"] = F.l1_loss(self.fake_A2A, self.real_A)
        terms["G_identity_loss_B"] = F.l1_loss(self.fake_B2B, self.real_B)
        # G's own CAM must call translated inputs "source domain" (1) and identity inputs not (0).
        terms["G_cam_loss_A"] = bce(self.cam_B2A, 1.0) + bce(self.cam_A2A, 0.0)
        terms["G_cam_loss_B"] = bce(self.cam_A2B, 1.0) + bce(self.cam_B2B, 0.0)
        return terms

    def combine_g(self, t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.opt
        losses = []
        for x in ("A", "B"):
            adv = (
                t[f"G_ad_loss_G{x}"]
                + t[f"G_ad_cam_loss_G{x}"]
                + t[f"G_ad_loss_L{x}"]
                + t[f"G_ad_cam_loss_L{x}"]
            )
            losses.append(
                o.adv_weight * adv
                + o.cycle_weight * t[f"G_recon_loss_{x}"]
                + o.identity_weight * t[f"G_identity_loss_{x}"]
                + o.cam_weight * t[f"G_cam_loss_{x}"]
            )
        return losses[0], losses[1]

    def backward_G(self) -> torch.Tensor:
        terms = self.g_terms()
        for key, value in terms.items():
            setattr(self, f"loss_{key}", value)
        self.loss_G_loss_A, self.loss_G_loss_B = self.combine_g(terms)
        self.loss_Generator_loss = self.loss_G_loss_A + self.loss_G_loss_B
        return self.loss_Generator_loss

    def discriminators(self) -> list[nn.Module]:
        return [self.disGA, self.disGB, self.disLA, self.disLB]

    def d_eval_in_g_step(self) -> bool:
        return self.opt.ugatit_fast_d

    def optimize_parameters(self) -> None:
        # The six generator calls in the official order, with the D step (which only judges the detached
        # translations) between the first two and the rest: fewer graphs alive at once, same numbers.
        self.forward_translations()
        # D's gradients are freed now rather than at the next D step: they would otherwise sit beside the G
        # step's graphs (the official keeps them and even adds to them there, bug 2). Same for G's below.
        self.backward_and_step(self.backward_D(), "D", free_grads=True)
        self.forward_reconstructions()
        # D frozen: same G gradients as the official code, which lets D accumulate unused ones (bug 2).
        self.set_requires_grad(self.discriminators(), False)
        eval_d = self.d_eval_in_g_step()
        for net in self.discriminators():
            net.train(not eval_d)
        self.backward_and_step(self.backward_G(), "G", free_grads=True)
        for net in self.discriminators():
            net.train(True)
        self.set_requires_grad(self.discriminators(), True)

    def on_step_end(self) -> None:
        self.genA2B.apply(self.rho_clipper)
        self.genB2A.apply(self.rho_clipper)
        for scheduler in self.schedulers.values():
            scheduler.step()  # per iteration: the official decay is by step, not by epoch

    def on_epoch_end(self, metric: float | None = None) -> None:
        """Epochs are only the data order here; the lr follows the iteration count."""

    # ------------------------------------------------------------------ visuals and inference
    @property
    def heatmap_A2B(self) -> torch.Tensor | None:
        heat = getattr(self, "heat_A2B", None)
        return None if heat is None else heatmap_image(heat.detach(), self.real_A.shape[-2:])

    @property
    def heatmap_B2A(self) -> torch.Tensor | None:
        heat = getattr(self, "heat_B2A", None)
        return None if heat is None else heatmap_image(heat.detach(), self.real_B.shape[-2:])

    def generators_for(self, direction: str) -> tuple[nn.Module, nn.Module]:
        """(forward, backward) generators of a direction at test time."""
        return (self.genA2B, self.genB2A) if direction == "AtoB" else (self.genB2A, self.genA2B)

    def translate(self, real: torch.Tensor, direction: str) -> OrderedDict[str, torch.Tensor]:
        src, dst = ("A", "B") if direction == "AtoB" else ("B", "A")
        forward, backward = self.generators_for(direction)
        size = real.shape[-2:]
        fake, _, heat = forward(real)
        out = OrderedDict([(f"real_{src}", real)])
        if getattr(self.opt, "save_panels", False):
            # The official test strip: real, identity, translation and cycle, each after its heatmap.
            idt, _, heat_idt = backward(real)
            rec, _, heat_rec = backward(fake)
            out[f"heatmap_{src}2{src}"] = heatmap_image(heat_idt, size)
            out[f"fake_{src}2{src}"] = idt
            out[f"heatmap_{src}2{dst}"] = heatmap_image(heat, size)
            out[f"fake_{dst}"] = fake
            out[f"heatmap_{src}2{dst}2{src}"] = heatmap_image(heat_rec, size)
            out[f"rec_{src}"] = rec
            return out
        out[f"fake_{dst}"] = fake
        if getattr(self.opt, "save_heatmaps", False):
            out[f"heatmap_{src}2{dst}"] = heatmap_image(heat, size)
        return out
