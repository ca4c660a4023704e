"""CUT and FastCUT (Park, Efros, Zhang, Zhu, ECCV 2020), as taesungp/contrastive-unpaired-translation.

One generator G: A -> B, a PatchGAN D and the patch-embedding head F. One iteration: G translates A (and
B, for the identity NCE term), D takes one LSGAN step, then G and F take one step on
``lambda_GAN * GAN(G(A)) + PatchNCE`` where PatchNCE pulls each patch of G(A)'s encoder features towards
the patch of A at the same position and away from A's other patches. FastCUT is a preset of the same
model (``--CUT_mode FastCUT``): no identity NCE, lambda_NCE 10, flip equivariance, 150 + 50 epochs.

Deliberate deviations from the official code, each keeping its published behaviour (listed in the model's docs):
presets are read from the parsed options, not ``sys.argv`` (#14); F is built with its MLPs before training
instead of by a data-dependent dummy step (#17); PatchNCE groups negatives by the real batch (#10); patch
ids come from torch's (checkpointed) RNG or are injected (#11); F gathers patches so G's gradients stay
contiguous (#16). The decay-phase switch to load_size = crop_size (#15) is the ``cut_unaligned`` dataset.

Speed-up (``--reuse_nce_keys``, on by default): the official ``calculate_NCE_loss`` re-encodes real_A (and
real_B) for the NCE keys, although G's forward on the same images already computed those activations. The
keys are detached inside PatchNCE, so taking them from the forward pass changes no gradient path, only
float rounding (InstanceNorm statistics of a batch-2 vs a batch-1 pass, ~1e-6). ``--no-reuse_nce_keys``
restores the official recomputation. The key branch (encode and F) runs without an autograd graph: PatchNCE
detaches the keys, so nothing changes but memory.

Memory (each on by default, ``--no-<name>`` is the official behaviour): ``--split_idt_backward`` runs G on B
only after the losses of G(A) are backpropagated (the gradients accumulate: same update, half the live
activations); ``--lean_blur`` makes the antialiased blur layers keep nothing for their backward;
``--free_grads_after_step`` releases gradients after each optimiser step. Flipped steps read the query
patches at mirrored positions instead of flipping the feature maps back (exact).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import torch

from models.base_model import BaseModel
from models.cut_options import add_cut_options, option_errors, parse_layers
from models.losses import GANLoss
from models.losses.patchnce import PatchNCELoss
from models.networks import (
    build_discriminator,
    build_generator,
    init_weights,
    size_multiple,
    use_lean_blur,
)
from models.networks.heads import PatchSampleF


def mirrored_ids(ids: torch.Tensor, width: int) -> torch.Tensor:
    """Flat positions ``h * width + w`` -> ``h * width + (width - 1 - w)`` (the horizontal mirror)."""
    column = ids % width
    return ids - column + (width - 1 - column)


class CUTModel(BaseModel):
    #: PatchSampleF's L2-normalisation convention (see ``models.networks.heads.l2_normalize``).
    feature_norm = "cut"

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return add_cut_options(parser, is_train)

    @classmethod
    def preset_defaults(cls, known, is_train: bool) -> dict:
        if not is_train:
            return {}
        if known.CUT_mode.lower() == "fastcut":
            return dict(
                nce_idt=False, lambda_NCE=10.0, flip_equivariance=True, n_epochs=150, n_epochs_decay=50
            )
        return dict(nce_idt=True, lambda_NCE=1.0)

    @classmethod
    def grad_accum_blocker(cls, opt) -> str:
        if getattr(opt, "nce_includes_all_negatives_from_minibatch", False):
            return "--nce_includes_all_negatives_from_minibatch draws negatives from the whole batch"
        return super().grad_accum_blocker(opt)

    architecture_options = (*BaseModel.architecture_options, "no_antialias", "no_antialias_up")

    @classmethod
    def validate_options(cls, opt, parser):
        if not opt.netG.startswith("resnet"):
            parser.error(f"--model {opt.model} taps a ResNet generator's layers; --netG {opt.netG} has none")
        errors = option_errors(opt)
        if errors:
            parser.error(errors[0])
        if opt.isTrain and opt.nce_idt and opt.input_nc != opt.output_nc:
            parser.error("--nce_idt needs --input_nc == --output_nc (G(real_B) must be defined)")

    def __init__(self, opt):
        super().__init__(opt)
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["netG", "netF", "netD"] if self.isTrain else ["netG"]
        self.netG = build_generator(
            opt.netG,
            opt.input_nc,
            opt.output_nc,
            opt.ngf,
            opt.normG or opt.norm,
            not opt.no_dropout,
            opt.init_type,
            opt.init_gain,
            antialias=not opt.no_antialias,
            antialias_up=not opt.no_antialias_up,
        )
        self._injected: dict[str, list] = {}
        self.flipped_for_equivariance = False
        self.idt_B: torch.Tensor | None = None
        #: which training inputs ``feats_real`` holds the taps of: "A", "B" or "AB" (a batch-2 pass)
        self.feats_domains = ""
        #: G's NCE taps of its last training input, when kept
        self.feats_real: list[torch.Tensor] | None = None
        if not self.isTrain:
            return
        self.nce_layers = parse_layers(opt.nce_layers)
        self.loss_names = ["G_GAN", "D_real", "D_fake", "G", "NCE"] + (["NCE_Y"] if opt.nce_idt else [])
        self.visual_names += ["idt_B"] if opt.nce_idt else []
        # F is built now from the channel counts of G's taps (official: at the first G-loss backward).
        self.netF = init_weights(
            PatchSampleF(
                self.tap_channels(), opt.netF_nc, use_mlp=opt.netF == "mlp_sample", l2_norm=self.feature_norm
            ),
            opt.init_type,
            opt.init_gain,
        )
        self.netD = build_discriminator(
            opt.netD,
            opt.output_nc,
            opt.ndf,
            opt.n_layers_D,
            opt.normD or opt.norm,
            opt.init_type,
            opt.init_gain,
            antialias=not opt.no_antialias,
        )
        for net in (self.netG, self.netD):
            use_lean_blur(net, opt.lean_blur)
        self.criterionGAN = GANLoss(opt.gan_mode)
        self.criterionNCE = PatchNCELoss(opt.nce_T, opt.nce_includes_all_negatives_from_minibatch)
        betas = (opt.beta1, opt.beta2)
        self.optimizers["G"] = torch.optim.Adam(self.netG.parameters(), lr=opt.lr, betas=betas)
        self.optimizers["D"] = torch.optim.Adam(self.netD.parameters(), lr=opt.lr, betas=betas)
        if any(True for _ in self.netF.parameters()):  # --netF sample has nothing to train
            self.optimizers["F"] = torch.optim.Adam(self.netF.parameters(), lr=opt.lr, betas=betas)
        #: optimisers stepped by the generator loss, in the official order (G, then F)
        self.generator_optimizers = tuple(k for k in ("G", "F") if k in self.optimizers)

    def tap_channels(self) -> list[int]:
        """Channels of G's NCE taps, read from a tiny no-grad pass (works for any tapped layer)."""
        with torch.no_grad():
            probe = torch.zeros(1, self.opt.input_nc, 32, 32)
            return [f.shape[1] for f in self.netG.encode(probe, self.nce_layers)]

    def size_multiple(self) -> int:
        return size_multiple(self.opt.netG)

    # ------------------------------------------------------------------ randomness (injectable)
    def inject_draws(self, **queues: Iterable[Any]) -> None:
        """Queue values for the next random draws, consumed in call order (tests, parity with official runs).

        Kinds: ``flip`` (bool per forward), ``patch_ids`` (a list of per-layer id tensors per F sampling call);
        SRUNIT adds ``sr_choice``, ``sr_noise`` (raw randn), ``sr_magnitude`` (raw uniform) and ``sr_patch_ids``.
        An empty queue falls back to torch's global RNG, which the trainer checkpoints.
        """
        for kind, values in queues.items():
            self._injected.setdefault(kind, []).extend(values)

    def draw(self, kind: str, sample: Callable[[], Any]) -> Any:
        queue = self._injected.get(kind)
        return queue.pop(0) if queue else sample()

    # ------------------------------------------------------------------ training
    def set_input(self, batch: dict) -> None:
        # The dataset swaps folders for --direction BtoA, so A is always G's input domain.
        self.real_A, self.real_B = batch["A"], batch["B"]
        self.image_paths = batch.get("A_paths")

    def keeps_features(self) -> bool:
        """Whether G's training pass also returns its NCE taps (``self.feats_real``), for reuse as keys.

        Not on flipped steps: G then sees flip(A), and flip(G_enc(flip(A))) != G_enc(A) because the convs
        are not mirror-symmetric, so the keys of A must be encoded from the unflipped A (see ``key_features``).
        """
        return (
            self.isTrain
            and self.opt.reuse_nce_keys
            and self.opt.lambda_NCE > 0
            and not self.flipped_for_equivariance
        )

    def generate(self, real: torch.Tensor, domains: str) -> torch.Tensor:
        """G on the training input(s) of ``domains`` ("A", "B" or "AB"), flipped on flip-equivariance steps.

        One pass gives the image and, if kept, its taps (``feats_real``, of the images of ``domains``).
        """
        if self.flipped_for_equivariance:
            real = torch.flip(real, [3])  # the output stays flipped; NCE reads its features mirrored
        self.feats_domains = domains
        if not self.keeps_features():
            self.feats_real = None
            return self.netG(real)
        # Tapping G's last module yields the translation itself, so the whole net runs exactly once.
        *self.feats_real, fake = self.netG.encode(
            real, [*self.nce_layers, len(self.netG.model) - 1], stop_early=False
        )
        return fake

    #: Official CUT translates cat(A, B) in one batch-2 pass when G(B) is not deferred; SRUNIT does not.
    batched_identity_pass = True

    def identity_deferred(self) -> bool:
        """Whether G(B) waits until the losses of G(A) are backpropagated (``--split_idt_backward``).

        Only in a training step: a no-grad forward (``test()``, visuals) builds no graph to split.
        """
        return bool(
            self.isTrain and self.opt.nce_idt and self.opt.split_idt_backward and torch.is_grad_enabled()
        )

    def forward(self) -> None:
        both = (
            self.isTrain and self.opt.nce_idt and not self.identity_deferred() and self.batched_identity_pass
        )
        self.flipped_for_equivariance = bool(
            self.isTrain
            and self.opt.flip_equivariance
            and self.draw("flip", lambda: bool(torch.rand((), device="cpu") < 0.5))  # a host coin: no sync
        )
        self.idt_B = None
        if not both:
            self.fake_B = self.generate(self.real_A, "A")
            return
        # One batch-2 pass for G(A) and G(B), as officially (InstanceNorm keeps the images independent).
        fake = self.generate(torch.cat((self.real_A, self.real_B)), "AB")
        n = self.real_A.size(0)
        self.fake_B, self.idt_B = fake[:n], fake[n:]

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        return self.netD(x)

    def compute_D_loss(self) -> torch.Tensor:
        self.loss_D_fake = self.criterionGAN(self.discriminate(self.fake_B.detach()), False)
        self.loss_D_real = self.criterionGAN(self.discriminate(self.real_B), True)
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        return self.loss_D

    def key_features(self, domain: str) -> list[torch.Tensor] | None:
        """NCE keys of real_A / real_B from G's forward pass; None: encode them (official, or a flipped step).

        On a flipped step ``feats_real`` (SRUNIT keeps it for its SR loss) holds the taps of flip(A), which are
        not the keys of A: those are re-encoded from A.
        """
        if self.feats_real is None or self.flipped_for_equivariance:
            return None
        if self.feats_domains == domain:
            return list(self.feats_real)
        if self.feats_domains != "AB":
            return None
        n = self.real_A.size(0)
        return [f[:n] if domain == "A" else f[n:] for f in self.feats_real]

    def uses_identity_nce(self) -> bool:
        return bool(self.opt.nce_idt and self.opt.lambda_NCE > 0)

    def compute_G_loss(self) -> torch.Tensor:
        """lambda_GAN * GAN(G(A)) + NCE(G(A), A), with NCE(G(B), B) averaged in under ``--nce_idt``."""
        self.loss_G = self.generator_loss_A()
        if self.uses_identity_nce():
            self.loss_G = self.loss_G + self.identity_loss()
        return self.loss_G

    def generator_loss_A(self) -> torch.Tensor:
        """The terms of the G loss that depend on G(A) only (its graph can be freed after them)."""
        opt, zero = self.opt, self.real_A.new_zeros(())
        # G_GAN uses the D that was just updated, as in the official step order.
        self.loss_G_GAN = (
            self.criterionGAN(self.discriminate(self.fake_B), True, for_discriminator=False) * opt.lambda_GAN
            if opt.lambda_GAN > 0
            else zero
        )
        use_nce = opt.lambda_NCE > 0
        self.loss_NCE = self.nce_loss(self.real_A, self.fake_B, self.key_features("A")) if use_nce else zero
        # Official: (NCE + NCE_Y) / 2 with the identity term.
        return self.loss_G_GAN + self.loss_NCE * (0.5 if self.uses_identity_nce() else 1.0)

    def identity_loss(self) -> torch.Tensor:
        """NCE(G(B), B) / 2; runs G on B first when the step deferred it (``--split_idt_backward``)."""
        if self.idt_B is None:
            self.idt_B = self.generate(self.real_B, "B")
        self.loss_NCE_Y = self.nce_loss(self.real_B, self.idt_B, self.key_features("B"))
        return self.loss_NCE_Y * 0.5

    def nce_loss(
        self, src: torch.Tensor, tgt: torch.Tensor, feat_k: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """lambda_NCE * PatchNCE(G_enc(tgt), G_enc(src)), averaged over the tapped layers.

        One encode per image pair, as officially: batching G(A) and G(B) into one encode (InstanceNorm is
        per image) measured ~2 % slower on CPU at batch 1, as did one D pass on (fake_B, real_B).
        """
        feat_q = self.netG.encode(tgt, self.nce_layers)
        # PatchNCE detaches the keys, so no gradient ever flows through this branch: build no graph for it
        # (the official code does, and keeps the activations of its key encodes until the backward).
        with torch.no_grad():
            if feat_k is None:
                feat_k = self.netG.encode(src, self.nce_layers)
            feat_k_pool, ids = self.netF(feat_k, self.opt.num_patches, self.draw("patch_ids", lambda: None))
        if self.flipped_for_equivariance:
            # The queries are features of the flipped translation: official flips them back; reading them at
            # the mirrored positions takes the same values (and gradients) without copying the maps.
            ids = [mirrored_ids(i, f.shape[3]) for i, f in zip(ids, feat_q)]
        feat_q_pool, _ = self.netF(feat_q, self.opt.num_patches, ids)
        total = sum(
            self.criterionNCE(q, k, src.size(0)).mean() * self.opt.lambda_NCE
            for q, k in zip(feat_q_pool, feat_k_pool)
        )
        return total / len(self.nce_layers)

    def update_D(self) -> None:
        self.set_requires_grad(self.netD, True)
        self.backward_and_step(self.compute_D_loss(), "D", free_grads=self.opt.free_grads_after_step)
        self.set_requires_grad(self.netD, False)  # the G step must not accumulate D gradients

    def optimize_parameters(self) -> None:
        self.train_step()
        # The taps are activations of G's pass (about 30 MB at 128 px, batch 2): do not hold them until the
        # next forward, where they would sit beside the new pass's.
        self.feats_real = None

    def train_step(self) -> None:
        self.forward()
        self.update_D()
        self.update_G()

    def update_G(self) -> None:
        """One step of G and F on the G loss; in two backward passes under ``--split_idt_backward``.

        Split, the terms of G(A) are backpropagated (their graph freed) before G runs on B, and the identity
        term's gradients accumulate onto theirs: the same gradients, but the activations of only one
        translation are alive at a time (the official batch-2 pass keeps both until its single backward).
        """
        names = self.generator_optimizers
        self.zero_grad(*names)
        if not self.identity_deferred():
            self.backward_generator(self.compute_G_loss())
        else:
            loss_A = self.generator_loss_A()
            self.backward_generator(loss_A)
            loss_B = self.identity_loss()
            self.backward(loss_B)
            self.loss_G = loss_A.detach() + loss_B.detach()
        self.step(*names, free_grads=self.opt.free_grads_after_step)

    def backward_generator(self, loss: torch.Tensor) -> None:
        """Backpropagate the G loss (with G(A)'s graph still alive: SRUNIT adds its SR loss here)."""
        self.backward(loss)

    # ------------------------------------------------------------------ inference
    def translate(self, real: torch.Tensor, direction: str) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(real_A=real, fake_B=self.netG(real))
