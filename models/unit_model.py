"""UNIT (Liu, Breuel & Kautz, NIPS 2017) as the ``UNIT_Trainer`` of mingyuliutw/UNIT master.

Two VAEs share a latent space: E_a(x_a) = h_a is the mean of N(h_a, I), z_a = h_a + n_a decodes to x_a (G_a) and
to its translation x_ab (G_b). One iteration is a D step then a G step (the G step sees the updated D):

- D: LSGAN (or nsgan) on x_ba / x_a and x_ab / x_b, summed over scales, weighted by ``gan_w``.
- G: ``gan_w`` adversarial + ``recon_x_w`` L1(x_aa, x_a) + ``recon_kl_w`` mean(h_a^2) + ``recon_x_cyc_w``
  L1(x_aba, x_a) + ``recon_kl_cyc_w`` mean(h_ab^2) (+ b terms, + ``vgg_w`` perceptual).

By default (``--unit_fast_step``) one G forward serves both steps and the decoders upsample by sub-pixel convs
(docs/unit.md, "Speed"); ``--no-unit_fast_step`` is the official step, bit for bit. Options carry the official
config key names (``models/unit_options.py``) and ``--config file.yaml`` reads an official config. Official ``gen_%08d.pt`` / ``dis_%08d.pt`` (+ ``optimizer.pt``) files load as they are.
Deviations from the official code, each harmless to the maths, are listed in docs/unit.md.
"""

from __future__ import annotations

import glob
import os
from collections import OrderedDict

import torch

from models.base_model import BaseModel
from models.losses.unit import PerceptualLoss, dis_loss, gen_adv_loss, kl_loss, recon_loss
from models.networks.unit import (
    MsImageDis,
    VAEGen,
    share_blocks,
    unique_parameters,
    weights_init,
)
from models.unit_options import add_unit_options, option_errors, preset_from_config, shared_blocks
from util.checkpoint import CheckpointError, clean_state_dict, load_file


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


LOSS_NAMES = """dis_a dis_b dis_total gen_adv_a gen_adv_b gen_recon_x_a gen_recon_x_b gen_recon_kl_a gen_recon_kl_b
gen_cyc_x_a gen_cyc_x_b gen_recon_kl_cyc_aba gen_recon_kl_cyc_bab gen_total"""  # the official attribute names


class UNITModel(BaseModel):
    directions = ("AtoB", "BtoA")
    length_option = "--max_iter"
    architecture_options = (*BaseModel.architecture_options, "n_downsample", "n_res", "gen_activ", "gen_pad_type",
                            "share_layers", "unit_shared_enc_blocks", "unit_shared_dec_blocks")  # fmt: skip

    @classmethod
    def training_size_multiple(cls, opt) -> int:
        return 1  # validate_options asks for multiples of 2**n_downsample with UNIT's own message

    @classmethod
    def min_image_size(cls, opt) -> int:
        """Testing: two multiples of 2**n_downsample (the bottleneck InstanceNorm needs 2x2); training: every
        scale of the multi-scale D keeps >= 2 px before its last strided conv (64 px for the official D)."""
        size = 2 ** (opt.n_downsample + 1)
        return max(size, 2 ** (opt.n_layer + opt.num_scales - 1)) if opt.isTrain else size

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return add_unit_options(parser, is_train)

    @classmethod
    def preset_defaults(cls, known, is_train):
        return preset_from_config(known, is_train)

    @classmethod
    def validate_options(cls, opt, parser):
        errors = option_errors(opt)
        if errors:
            parser.error(errors[0])

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = LOSS_NAMES.split()
        self.visual_names = ["real_A", "rec_A", "fake_B", "cyc_A", "real_B", "rec_B", "fake_A", "cyc_B"]
        self.model_names = ["gen_a", "gen_b", "dis_a", "dis_b"] if self.isTrain else ["gen_a", "gen_b"]
        # Noise n of the posterior samples z = h + n, n ~ N(0, I); tests replace it to inject the official draws.
        self.noise_fn = torch.randn_like
        self.sample_generator: torch.Generator | None = None
        g = dict(dim=opt.ngf, n_downsample=opt.n_downsample, n_res=opt.n_res, activ=opt.gen_activ,
                 pad_type=opt.gen_pad_type)  # fmt: skip
        self.gen_a = VAEGen(input_dim=opt.input_nc, **g)
        self.gen_b = VAEGen(input_dim=opt.output_nc, **g)
        share_blocks(self.gen_a, self.gen_b, *shared_blocks(opt))
        init = weights_init("gaussian" if opt.init_type == "normal" else opt.init_type)
        if not self.isTrain:
            self.gen_a.apply(init)
            self.gen_b.apply(init)
            return
        d = dict(dim=opt.ndf, n_layer=opt.n_layer, num_scales=opt.num_scales, norm=opt.dis_norm,
                 activ=opt.dis_activ, pad_type=opt.dis_pad_type)  # fmt: skip
        self.dis_a = MsImageDis(input_dim=opt.input_nc, **d)
        self.dis_b = MsImageDis(input_dim=opt.output_nc, **d)
        # Official order: `init` on every network, then both Ds again with N(0, 0.02).
        for net in (self.gen_a, self.gen_b, self.dis_a, self.dis_b):
            net.apply(init)
        self.dis_a.apply(weights_init("gaussian"))
        self.dis_b.apply(weights_init("gaussian"))
        self.gen_a.dec.use_fast_ops(opt.unit_fast_step)
        self.gen_b.dec.use_fast_ops(opt.unit_fast_step)
        self.perceptual = PerceptualLoss.from_file(opt.vgg_weights) if opt.vgg_w > 0 else None
        if self.perceptual is not None:
            self.loss_names[-1:-1] = ["gen_vgg_a", "gen_vgg_b"]
        adam = dict(lr=opt.lr, betas=(opt.beta1, opt.beta2), weight_decay=opt.weight_decay)
        # Fast step: multi-tensor Adam (3x faster on CPU, where torch picks the per-tensor loop; float rounding
        # differs); the official step keeps torch's default.
        adam["foreach"] = True if opt.unit_fast_step else None
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
        official = opt.official_checkpoint if self.isTrain else ""
        iteration = self.load_official(official) if official else 0
        if self.isTrain and opt.lr_policy == "step":
            self.schedulers = {n: torch.optim.lr_scheduler.StepLR(o, opt.step_size, opt.gamma)
                               for n, o in self.optimizers.items()}  # fmt: skip
            for name, sched in self.schedulers.items():  # continue an official run at its learning rate
                sched.last_epoch = iteration
                for group in self.optimizers[name].param_groups:
                    group["lr"] = group["initial_lr"] * opt.gamma ** (iteration // opt.step_size)
                sched._last_lr = [group["lr"] for group in self.optimizers[name].param_groups]
        self.print_networks(verbose)
        if any(shared_blocks(opt)):
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

    def optimize_parameters(self) -> None:
        if not self.opt.unit_fast_step:  # official: the D step makes its own translations
            self.update_D()
            self.update_G()
            return
        # One G forward (h, noise, reconstructions, translations) serves both steps: D trains on these
        # translations (the official draws fresh noise for the same, not yet updated, generators), then the G
        # step adds the cycle and the adversarial terms with the updated D. The cycle graph is built only after
        # the D step, so the peak memory stays that of the G step.
        self.translate_pair()
        self.update_D(self.fake_A.detach(), self.fake_B.detach())
        self.update_G(translated=True)

    def update_D(self, fake_A: torch.Tensor | None = None, fake_B: torch.Tensor | None = None) -> None:
        """D step on the given translations, or (official) on fresh ones with new noise."""
        opt = self.opt
        if fake_A is None:
            with torch.no_grad():  # the official detaches the fakes; no graph is needed to make them
                h_a = self.gen_a.encode(self.real_A)
                z_a = h_a + self.noise_fn(h_a)
                h_b = self.gen_b.encode(self.real_B)
                z_b = h_b + self.noise_fn(h_b)
                fake_A, fake_B = self.gen_a.decode(z_b), self.gen_b.decode(z_a)
        self.loss_dis_a = dis_loss(self.dis_a(fake_A), self.dis_a(self.real_A), opt.gan_type)
        self.loss_dis_b = dis_loss(self.dis_b(fake_B), self.dis_b(self.real_B), opt.gan_type)
        self.loss_dis_total = opt.gan_w * self.loss_dis_a + opt.gan_w * self.loss_dis_b
        self.backward_and_step(self.loss_dis_total, "D", free_grads=True)  # not kept through the G step

    def translate_pair(self) -> None:
        """First half of the G step: latents h, posterior samples z = h + n, reconstructions, translations."""
        # Operations are created in the official order and h + n is formed once per use as there: autograd then
        # accumulates gradients in the same order, so results match the official code bit for bit.
        self.h_a = self.gen_a.encode(self.real_A)
        n_a = self.noise_fn(self.h_a)
        self.h_b = self.gen_b.encode(self.real_B)
        n_b = self.noise_fn(self.h_b)
        self.rec_A, self.rec_B = self.gen_a.decode(self.h_a + n_a), self.gen_b.decode(self.h_b + n_b)
        # One noisy z per domain feeds both the reconstruction and the translation (official).
        self.fake_A, self.fake_B = self.gen_a.decode(self.h_b + n_b), self.gen_b.decode(self.h_a + n_a)

    def update_G(self, translated: bool = False) -> None:
        """G step; ``translated``: :meth:`translate_pair` already ran for this iteration (fast step)."""
        opt = self.opt
        # D gets no gradient here; the official lets it accumulate and clears it in the next D step (same updates).
        self.set_requires_grad([self.dis_a, self.dis_b], False)
        if not translated:
            self.translate_pair()
        h_a, h_b = self.h_a, self.h_b
        h_b_recon = self.gen_a.encode(self.fake_A)
        n_b_recon = self.noise_fn(h_b_recon) if opt.recon_x_cyc_w > 0 else None  # official draw order
        h_a_recon = self.gen_b.encode(self.fake_B)
        if opt.recon_x_cyc_w > 0:  # the official crashes (L1 of None) when recon_x_cyc_w is 0
            self.cyc_A = self.gen_a.decode(h_a_recon + self.noise_fn(h_a_recon))
            self.cyc_B = self.gen_b.decode(h_b_recon + n_b_recon)
        else:
            self.cyc_A = self.cyc_B = None
        self.loss_gen_recon_x_a = recon_loss(self.rec_A, self.real_A)
        self.loss_gen_recon_x_b = recon_loss(self.rec_B, self.real_B)
        self.loss_gen_recon_kl_a, self.loss_gen_recon_kl_b = kl_loss(h_a), kl_loss(h_b)
        zero = self.real_A.new_zeros(())
        self.loss_gen_cyc_x_a = recon_loss(self.cyc_A, self.real_A) if self.cyc_A is not None else zero
        self.loss_gen_cyc_x_b = recon_loss(self.cyc_B, self.real_B) if self.cyc_B is not None else zero
        self.loss_gen_recon_kl_cyc_aba = kl_loss(h_a_recon)
        self.loss_gen_recon_kl_cyc_bab = kl_loss(h_b_recon)
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
        self.backward_and_step(self.loss_gen_total, "G", free_grads=True)  # not kept through the next D step
        self.set_requires_grad([self.dis_a, self.dis_b], True)
        del self.h_a, self.h_b  # their graph is spent; do not keep the latents until the next iteration

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
    def official_files_hint(self, epoch: str) -> str:
        return "gen_XXXXXXXX.pt with keys 'a' and 'b' (or --official_checkpoint PATH)"

    def import_official(self, expr_dir: str, epoch: str, names: list[str]) -> bool:
        path = self.opt.official_checkpoint or find_official(expr_dir, "gen", str(epoch))
        if not path or not os.path.isfile(path):
            return False
        self.load_official(path, with_dis=False)
        return True

    def load_official(self, path: str, with_dis: bool = True) -> int:
        """Load an official ``gen_%08d.pt`` ({'a', 'b'}) and, when training, ``dis_%08d.pt`` and ``optimizer.pt``
        beside it. Returns the iteration parsed from the file name (0 if none)."""
        gen_path = find_official(path, "gen") if os.path.isdir(path) else path
        if gen_path is None or not os.path.isfile(gen_path):
            raise CheckpointError(f"no official gen_XXXXXXXX.pt at {path}")
        self._load_pair(gen_path, self.gen_a, self.gen_b)
        if not (with_dis and self.isTrain):
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
        # clean_state_dict drops the InstanceNorm running stats of torch-0.3 files (the official converter's job).
        states = {k: clean_state_dict(state[k], net.state_dict()) for k, net in (("a", net_a), ("b", net_b))}
        for key, net in (("a", net_a), ("b", net_b)):
            try:
                net.load_state_dict(states[key], strict=True)
            except RuntimeError as exc:
                raise CheckpointError(
                    f"{path}['{key}'] does not fit (--gen.dim/--n_res/...?): {str(exc).splitlines()[0]}"
                ) from exc
        ptr_b = {k: v.data_ptr() for k, v in net_b.state_dict().items()}
        shared = [k for k, v in net_a.state_dict().items() if v.data_ptr() == ptr_b[k]]
        if any(not torch.equal(states["a"][k], states["b"][k]) for k in shared):
            raise CheckpointError(
                f"{path} was trained without shared blocks; drop --unit_shared_*/--share_layers"
            )
