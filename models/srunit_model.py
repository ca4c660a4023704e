"""SRUNIT (Jia et al., ICCV 2021): CUT plus a semantic-robustness (SR) loss, as SeanJia/SRUNIT.

The SR loss asks G's own encoder to see the same semantics after a small perturbation of an intermediate
feature has been decoded into an image and re-encoded. Each step one tapped layer l is drawn from
``--reg_layers``; with f = G_enc(A) at l, u a random unit vector per position and m ~ U[1e-7, reg_noise]:

    p = G_{0..l}(G_{l+1..end}(f + delta)),  d_i = ||F_l(p)_i - F_l(f)_i||,  L_reg = mean_i(d_i / m_i) / n_layers

over ``num_patches`` sampled positions i. Nothing is detached: the gradient reaches G through f, the decode
and the re-encode, and F through both embeddings (v2) or not at all (v1). Only what differs from CUT is here.

Official bugs and quirks (listed in the model's docs) and their handling; options restore the official behaviour:

* #1 in the first ``inact_epochs`` epochs the official step trains only D; its README says only the SR loss
  is off. Default: plain CUT steps then. ``--inact_freeze_G``: the official freeze.
* #2, #3 the official forward asserts on every flipped step (FastCUT mode dies) and drops real_B without
  ``nce_idt``. Fixed: flips and real_B behave exactly as in CUT.
* #4 the perturbation always has norm reg_noise while the loss divides by the sampled m. Default
  ``--sr_noise_mode sampled``: delta = m u, so d / m is the ratio of feature change to perturbation.
  ``--sr_noise_mode fixed``: official (delta = reg_noise u).
* #5 the division by len(nce_layers) although one layer is used is kept (a constant rescaling of --reg).
* #6 the anchor is F(features of A), kept by default; ``--sr_anchor output`` anchors on G_enc(G(A)).
* #7 the README's ``--init_epochs`` is accepted as an alias of ``--inact_epochs``.

Unlike CUT's batch-2 pass on cat(A, B), the official SRUNIT forward translates A and B in two passes; the
official path (``--no-split_idt_backward``) does the same (``forward``).
"""

from __future__ import annotations

import argparse

import torch

from models.cut_model import CUTModel, parse_layers
from options import add_flag


class SRUNITModel(CUTModel):
    # SRUNIT's Normalize: (x + 1e-12) / ||x + 1e-12||, for NCE and SR embeddings alike.
    feature_norm = "srunit"

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser = CUTModel.modify_commandline_options(parser, is_train)
        if is_train:
            parser.add_argument(
                "--reg_type",
                default="v2",
                choices=["v1", "v2"],
                help="v1: the SR loss updates G only; v2: G and F",
            )
            parser.add_argument(
                "--reg", type=float, default=0.001, help="weight of the SR loss (0: plain CUT)"
            )
            parser.add_argument(
                "--reg_noise", type=float, default=0.001, help="largest perturbation magnitude"
            )
            parser.add_argument(
                "--reg_layers",
                default="0,1,2,3,4",
                help="indices into --nce_layers (not layer ids) the SR loss draws from",
            )
            parser.add_argument(
                "--inact_epochs",
                "--init_epochs",
                dest="inact_epochs",
                type=int,
                default=100,
                help="epochs without the SR loss at the start of training",
            )
            parser.add_argument(
                "--D_noise", type=float, default=0.0, help="std of Gaussian noise added to D's inputs"
            )
            add_flag(
                parser,
                "--inact_freeze_G",
                help="official quirk: during inact_epochs only D trains (G and F are frozen)",
            )
            parser.add_argument(
                "--sr_noise_mode",
                default="sampled",
                choices=["sampled", "fixed"],
                help="perturbation norm: the sampled magnitude m, or always reg_noise (official)",
            )
            parser.add_argument(
                "--sr_anchor",
                default="input",
                choices=["input", "output"],
                help="compare the re-encoded perturbation with G_enc(A) (official) or G_enc(G(A))",
            )
            parser.set_defaults(save_epoch_freq=25)
        return parser

    @classmethod
    def validate_options(cls, opt, parser: argparse.ArgumentParser) -> None:
        super().validate_options(opt, parser)
        if not opt.isTrain or opt.reg <= 0:
            return
        if opt.netF != "mlp_sample":
            parser.error("--reg > 0 embeds features with F's MLPs: it needs --netF mlp_sample")
        if opt.reg_noise <= 1e-7:
            parser.error(f"--reg_noise must exceed the minimum magnitude 1e-7, got {opt.reg_noise}")
        n = len(parse_layers(opt.nce_layers))
        reg_layers = parse_layers(opt.reg_layers)
        if not reg_layers or any(not 0 <= i < n for i in reg_layers):
            parser.error(f"--reg_layers must index --nce_layers (0..{n - 1}), got {opt.reg_layers!r}")

    def __init__(self, opt):
        super().__init__(opt)
        self.sr_enabled = self.isTrain and opt.reg > 0
        if self.sr_enabled:
            self.reg_layers = parse_layers(opt.reg_layers)
            self.loss_names.append("reg")
            self.loss_reg = torch.zeros(())
        self.sr_active = False

    # ------------------------------------------------------------------ what differs from CUT
    def keeps_features(self) -> bool:
        """The SR loss perturbs the taps of G's pass (official SRUNIT forward): keep them on every step.

        CUT's ``key_features`` then reuses them as NCE keys (as the official SRUNIT does, whatever
        ``--reuse_nce_keys`` says) except on flipped steps, which re-encode A like CUT.
        """
        return self.sr_enabled or super().keeps_features()

    batched_identity_pass = False  # G(A) and G(B) in two passes, as the official forward

    def forward(self) -> None:
        """G(A) with its taps, then (when G(B) is not deferred) G(B) in a pass of its own, as officially.

        The taps of both passes are kept side by side (batch-major, as CUT's batch-2 pass keeps them), so
        the NCE keys of A and B and the SR loss's features of A read them the same way.
        """
        super().forward()
        if not (self.isTrain and self.opt.nce_idt and not self.identity_deferred()):
            return
        feats_A = self.feats_real
        self.idt_B = self.generate(self.real_B, "B")
        if feats_A is None or self.feats_real is None:
            self.feats_real, self.feats_domains = feats_A, "A"
        else:
            self.feats_real = [torch.cat(pair) for pair in zip(feats_A, self.feats_real)]
            self.feats_domains = "AB"

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        if self.opt.D_noise > 0:
            x = x + self.opt.D_noise * torch.randn_like(x)
        return self.netD(x)

    def sample_perturbation(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """delta (same shape as ``feat``) and the sampled magnitudes m ~ U[1e-7, reg_noise] (B x 1 x H x W).

        delta = s * u with u a random unit vector over channels at each position and s = m (``sampled``) or
        reg_noise (``fixed``, official). The raw randn and uniform draws are injectable.
        """
        b, _, h, w = feat.shape
        noise = self.draw("sr_noise", lambda: torch.randn_like(feat))
        unit = noise / (noise.pow(2).sum(1, keepdim=True).sqrt() + 1e-12)
        uniform = self.draw(
            "sr_magnitude", lambda: torch.rand(b, 1, h, w, device=feat.device, dtype=feat.dtype)
        )
        magnitude = 1e-7 + (self.opt.reg_noise - 1e-7) * uniform  # 1e-7: the official minimum magnitude
        scale = self.opt.reg_noise if self.opt.sr_noise_mode == "fixed" else magnitude
        return scale * unit, magnitude

    def decode_and_reencode(self, feat: torch.Tensor, layer: int) -> torch.Tensor:
        """G's modules after ``layer`` (decode to an image, Tanh included), then G's modules 0..``layer``."""
        x = feat
        for module in self.netG.model[layer + 1 :]:
            x = module(x)
        return self.netG.encode(x, [layer])[0]

    def compute_reg_loss(self) -> torch.Tensor:
        # A host draw: the choice picks Python-side which layer to tap (no device sync).
        pick = lambda: self.reg_layers[int(torch.randint(len(self.reg_layers), (), device="cpu"))]  # noqa: E731
        choice = int(self.draw("sr_choice", pick))
        layer = self.nce_layers[choice]
        feat = self.feats_real[choice][: self.real_A.size(0)]
        delta, magnitude = self.sample_perturbation(feat)
        perturbed = self.decode_and_reencode(feat + delta, layer)
        anchor = feat if self.opt.sr_anchor == "input" else self.netG.encode(self.fake_B, [layer])[0]
        (k,), ids = self.netF(
            [anchor], self.opt.num_patches, self.draw("sr_patch_ids", lambda: None), mlp_indices=[choice]
        )
        (q,), _ = self.netF([perturbed], self.opt.num_patches, ids, mlp_indices=[choice])
        # At least float32 whatever the autocast dtype: 1/m reaches 1e7 and d is small.
        dtype = torch.promote_types(q.dtype, torch.float32)
        dist = ((q.to(dtype) - k.to(dtype)).pow(2).sum(1) + 1e-12).sqrt()
        m = magnitude.flatten(1)[:, ids[0]].flatten().to(dtype)  # batch-major, like F's rows
        return (dist / m).mean() / len(self.nce_layers)  # official: / n_layers although one layer is used

    def train_step(self) -> None:
        if not self.sr_enabled:  # --reg 0: the README's CUT baseline
            return super().train_step()
        self.forward()
        self.update_D()
        self.loss_reg = self.real_A.new_zeros(())
        self.sr_active = self.epoch > self.opt.inact_epochs
        if not self.sr_active and self.opt.inact_freeze_G:  # official quirk #1: losses logged, G and F idle
            with torch.no_grad():
                self.compute_G_loss()
            return
        self.update_G()

    def backward_generator(self, loss: torch.Tensor) -> None:
        """The G loss plus, once active, reg * SR loss (G(A)'s graph is still alive: it is reused)."""
        if not self.sr_active:  # set by train_step, only when the SR loss is enabled
            return super().backward_generator(loss)
        if self.opt.reg_type == "v2":
            self.loss_reg = self.compute_reg_loss()
            return self.backward(loss + self.opt.reg * self.loss_reg)
        # v1: F's gradient comes from the G loss only
        self.backward(loss, retain_graph=True)
        self.set_requires_grad(self.netF, False)
        self.loss_reg = self.compute_reg_loss()
        self.backward(self.opt.reg * self.loss_reg)
        self.set_requires_grad(self.netF, True)
