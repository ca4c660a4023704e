"""enhanced-U-GAT-IT (zheng-yuwei/enhanced-UGATIT) as options on top of U-GAT-IT: only what differs is here.

Network: the fork's layer layout (affine IN, biases, CAM weight + bias), ``--light k`` pooling, ``--use_se``,
``--attention_gan k`` (+ ``--attention_input``), ``--use_deconv``; D with ``--no-sn``, ``--no-cam_D_attention``,
depths below 5. Training: the fork's loop (D step on detached fakes, G step with D in eval mode, so spectral norm
iterates only in the D step), per-direction adversarial weights, D CAM-loss weight, AdaLIN ρ clipped to
[0, 0.9], EMA generators, edge-blurred images as extra fakes (``--has_blur``), TV loss and the segmentation
options driven by ``--mask_dir`` masks (``--dataset_mode ugatit``).

Fixed fork bugs, each with a flag restoring the published behaviour:

- E2 ``--adv_dir_legacy``: the fork scales the domain-A discriminators (the B→A direction) by
  ``forward_adv_weight``; here forward = A→B, i.e. the domain-B discriminators.
- E3 ``--attention_input_legacy``: the fork mixes input colour channels across candidate groups.
- E5: the EMA update runs under no_grad (the fork builds an ever longer graph through the EMA copies).
- E6 ``--tv_loss_legacy``: the fork's "TV" is mean √(2x² + ε) of the image, not a total variation.
- E1: lr decay follows ``--decay_flag`` (default on, as the official code; the fork decays only when
  ``--no_decay_flag`` is passed, i.e. ``--decay_flag False`` reproduces its default).
- E9/E10: A and B are sampled independently and resized to squares, as the official code.

The fork's data options (``--match_histograms --match_mode --match_prob --match_ratio``, ``--aug_prob``) live
in ``--dataset_mode ugatit`` (data/ugatit_dataset.py), as in the fork's dataset; this model only sets the
fork's ``--aug_prob 0.2`` default. Not implemented: FID during training, the BiSeNet face parser (masks come
from files) and ``--seg_fix_glass_mouth`` (needs part labels).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from models.losses.ugatit import edge_blur, erode_mask, legacy_tv_loss, mse, soft_mask, tv_loss
from models.networks.adaptive_norms import RhoClipper
from models.ugatit_model import D_NAMES, UGATITModel
from options.base_options import add_flag, add_switch


class UGATITEnhancedModel(UGATITModel):
    arch = "enhanced"
    architecture_options = (*UGATITModel.architecture_options, "use_se", "attention_gan", "attention_input",
                            "attention_input_legacy", "use_deconv", "use_ema")  # fmt: skip

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser = UGATITModel.modify_commandline_options(parser, is_train)
        g = parser.add_argument_group("enhanced-U-GAT-IT (fork option names)")
        add_flag(g, "--use_se", help="scSE block at the end of every residual branch of G")
        g.add_argument("--attention_gan", type=int, default=0, help="k > 0: blend k candidates with k masks")
        add_flag(g, "--attention_input", help="the input image is one of the attention candidates")
        add_flag(g, "--attention_input_legacy", help="fork channel mixing of --attention_input (bug E3)")
        add_flag(g, "--use_deconv", help="transposed-conv up-sampling (the fork's removed option)")
        if is_train:
            add_switch(
                g, "--sn", True, help="spectral norm in D (the fork's --sn flag *disables* it: use --no-sn)"
            )
            add_switch(
                g,
                "--cam_D_attention",
                True,
                help="D scales features by its CAM weights (fork's --cam_D_attention disables it)",
            )
            g.add_argument(
                "--cam_D_weight", type=float, default=1.0, help="weight of D CAM losses; <= 0 drops them"
            )
            g.add_argument("--forward_adv_weight", type=float, default=1.0, help="adversarial weight of A->B")
            g.add_argument(
                "--backward_adv_weight", type=float, default=1.0, help="adversarial weight of B->A"
            )
            add_flag(g, "--adv_dir_legacy", help="fork bug E2: forward_adv_weight scales B->A")
            g.add_argument("--ema_start", type=float, default=0.5, help="EMA averaging after this fraction")
            g.add_argument("--ema_beta", type=float, default=0.9999, help="EMA decay")
            add_flag(g, "--has_blur", help="edge-blurred real images as extra fakes for D")
            add_flag(g, "--tv_loss", help="total-variation loss on the translations")
            g.add_argument("--tv_weight", type=float, default=1.0)
            add_flag(g, "--tv_loss_legacy", help="the fork's formula (bug E6)")
            g.add_argument(
                "--seg_fix_weight",
                type=float,
                default=-1.0,
                help="> 0: L1 between fake and source outside the eroded mask (needs --mask_dir)",
            )
            add_flag(g, "--hard_seg_edge", help="threshold masks at 0.5 instead of soft edges")
            for flag, text in (
                ("seg_D_mask", "background D logits set to their target"),
                ("seg_G_detach", "no adversarial gradient through the fake background"),
                ("seg_D_cam_fea_mask", "mask the D features that feed the CAM logits"),
                ("seg_D_cam_inp_mask", "extra D trunk pass on the masked image for the CAM"),
            ):
                add_flag(g, f"--{flag}", help=f"{text} (needs --mask_dir)")
        else:
            add_switch(g, "--use_ema", True, help="translate with the EMA generators (as the fork's test)")
        return parser

    @classmethod
    def preset_defaults(cls, known, is_train):
        presets = super().preset_defaults(known, is_train)
        if is_train and known.dataset_mode == "ugatit":  # --aug_prob is that mode's option; fork default 0.2
            presets["aug_prob"] = 0.2
        return presets

    @classmethod
    def validate_options(cls, opt, parser):
        super().validate_options(opt, parser)
        if opt.attention_input and opt.attention_gan < 2:
            parser.error("--attention_input needs --attention_gan >= 2")
        if opt.isTrain and cls._uses_masks(opt) and not getattr(opt, "mask_dir", ""):
            parser.error("the --seg_* options need --mask_dir (with --dataset_mode ugatit)")

    @staticmethod
    def _uses_masks(opt) -> bool:
        return (
            opt.seg_fix_weight > 0
            or opt.seg_D_mask
            or opt.seg_G_detach
            or opt.seg_D_cam_fea_mask
            or opt.seg_D_cam_inp_mask
        )

    def __init__(self, opt):
        super().__init__(opt)
        self.genA2B_ema = copy.deepcopy(self.genA2B).eval().requires_grad_(False)
        self.genB2A_ema = copy.deepcopy(self.genB2A).eval().requires_grad_(False)
        self.model_names += ["genA2B_ema", "genB2A_ema"]
        if not self.isTrain:
            return
        self.rho_clipper = RhoClipper(0.0, 1.0, adaptive_max=0.9)  # fork: AdaLIN ρ <= 0.9, LIN ρ <= 1
        self.loss_names += [
            n for n, on in (("G_seg_loss", opt.seg_fix_weight > 0), ("G_tv_loss", opt.tv_loss)) if on
        ]
        self.masks: dict[str, torch.Tensor | None] = {"A": None, "B": None}

    def generator_kwargs(self) -> dict:
        o = self.opt
        return {
            **super().generator_kwargs(),
            "use_se": o.use_se,
            "attention_gan": o.attention_gan,
            "attention_input": o.attention_input,
            "attention_input_legacy": o.attention_input_legacy,
            "use_deconv": o.use_deconv,
        }

    def discriminator_kwargs(self) -> dict:
        o = self.opt
        return {
            **super().discriminator_kwargs(),
            "sn": o.sn,
            "cam_attention": o.cam_D_attention and o.cam_D_weight > 0,
        }

    @property
    def inference_names(self) -> list[str]:
        return ["genA2B_ema", "genB2A_ema"] if getattr(self.opt, "use_ema", False) else ["genA2B", "genB2A"]

    def generators_for(self, direction: str):
        if getattr(self.opt, "use_ema", False):
            return (
                (self.genA2B_ema, self.genB2A_ema)
                if direction == "AtoB"
                else (self.genB2A_ema, self.genA2B_ema)
            )
        return super().generators_for(direction)

    # ------------------------------------------------------------------ training
    def set_input(self, batch: dict) -> None:
        super().set_input(batch)
        hard = self.opt.hard_seg_edge
        for x in ("A", "B"):
            raw = batch.get(f"{x}_mask")
            self.masks[x] = None if raw is None else soft_mask(raw, hard)
            self.masks[f"{x}_erode"] = None if raw is None else soft_mask(erode_mask(raw), hard)

    def d_eval_in_g_step(self) -> bool:
        return True  # the fork runs the G step with D in eval mode: no spectral-norm iteration there

    def discriminate(self, name, x, src, sn_groups=1):
        mask = self.masks.get(src) if src else None
        cam_input = mask * x if mask is not None and self.opt.seg_D_cam_inp_mask else None
        fea_mask = mask if self.opt.seg_D_cam_fea_mask else None
        logit, cam_logit, _ = getattr(self, name)(x, cam_input=cam_input, mask=fea_mask, sn_groups=sn_groups)
        return logit, cam_logit

    def d_step_groups(self):
        groups = super().d_step_groups()
        if groups == 2 and (self.opt.seg_D_cam_inp_mask or self.opt.seg_D_cam_fea_mask):
            return 0  # real and fake need different masks inside D: separate calls
        return groups

    def mask_logit(self, logit, src, target):
        mask = self.masks.get(src)
        if not self.opt.seg_D_mask or mask is None:
            return logit
        m = F.interpolate(mask, size=logit.shape[2:], mode="area")
        return logit * m + target * (1 - m)

    def d_terms(self):
        terms = super().d_terms()
        if self.opt.has_blur:  # edge-blurred reals count as fakes: D learns that blur is not the target style
            for name in D_NAMES:
                x = name[-1]
                logit, cam = self.discriminate(name, edge_blur(getattr(self, f"real_{x}")), x)
                terms[f"D_ad_loss_{name[3:]}"] = terms[f"D_ad_loss_{name[3:]}"] + mse(logit, 0.0)
                terms[f"D_ad_cam_loss_{name[3:]}"] = terms[f"D_ad_cam_loss_{name[3:]}"] + mse(cam, 0.0)
        return terms

    def direction_weights(self) -> tuple[float, float]:
        """Adversarial weights of the domain-A and domain-B discriminators' terms."""
        o = self.opt
        # Domain-A discriminators judge B→A, the backward direction (fork bug E2 swaps them).
        if o.adv_dir_legacy:
            return o.forward_adv_weight, o.backward_adv_weight
        return o.backward_adv_weight, o.forward_adv_weight

    def _adv(self, t: dict, prefix: str, x: str) -> torch.Tensor:
        cam_w = max(self.opt.cam_D_weight, 0.0)
        adv = t[f"{prefix}_loss_G{x}"] + t[f"{prefix}_loss_L{x}"]
        if cam_w > 0:
            adv = adv + (t[f"{prefix}_cam_loss_G{x}"] + t[f"{prefix}_cam_loss_L{x}"]) * cam_w
        return adv

    def combine_d(self, t):
        w_a, w_b = self.direction_weights()
        adv = self.opt.adv_weight
        return w_a * adv * self._adv(t, "D_ad", "A"), w_b * adv * self._adv(t, "D_ad", "B")

    def g_fakes(self):
        fakes = super().g_fakes()
        if self.opt.seg_G_detach:  # the background of a fake gets no adversarial gradient
            for dom, src in (("A", "B"), ("B", "A")):
                m = self.masks[src]
                fakes[dom] = fakes[dom] * m + fakes[dom].detach() * (1.0 - m)
        return fakes

    def combine_g(self, t):
        o = self.opt
        w_a, w_b = self.direction_weights()
        losses = []
        for x, w in (("A", w_a), ("B", w_b)):
            losses.append(
                o.adv_weight * w * self._adv(t, "G_ad", x)
                + o.cycle_weight * t[f"G_recon_loss_{x}"]
                + o.identity_weight * t[f"G_identity_loss_{x}"]
                + o.cam_weight * t[f"G_cam_loss_{x}"]
            )
        return losses[0], losses[1]

    def backward_G(self):
        total = super().backward_G()
        o, m = self.opt, self.masks
        if o.seg_fix_weight > 0:  # keep the background (outside the eroded mask) of the source image
            keep_a, keep_b = 1 - m["A_erode"], 1 - m["B_erode"]
            self.loss_G_seg_loss = o.seg_fix_weight * (
                F.l1_loss(self.fake_B2A * keep_b, self.real_B * keep_b)
                + F.l1_loss(self.fake_A2B * keep_a, self.real_A * keep_a)
            )
            total = total + self.loss_G_seg_loss
        if o.tv_loss:
            tv = legacy_tv_loss if o.tv_loss_legacy else tv_loss
            self.loss_G_tv_loss = o.tv_weight * (tv(self.fake_A2B, m["A"]) + tv(self.fake_B2A, m["B"]))
            total = total + self.loss_G_tv_loss
        self.loss_Generator_loss = total
        return total

    @torch.no_grad()
    def on_step_end(self) -> None:
        super().on_step_end()
        step, o = self.global_step + 1, self.opt  # the fork's 1-based step of the iteration just finished
        average = step > o.ema_start * o.max_steps
        for ema, net in ((self.genA2B_ema, self.genA2B), (self.genB2A_ema, self.genB2A)):
            for p_ema, p in zip(ema.parameters(), net.parameters()):
                p_ema.copy_(p.lerp(p_ema, o.ema_beta) if average else p)
            for b_ema, b in zip(ema.buffers(), net.buffers()):
                b_ema.copy_(b)
