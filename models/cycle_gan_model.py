"""CycleGAN (Zhu et al., ICCV 2017), as junyanz/pytorch-CycleGAN-and-pix2pix.

G_A: A -> B, G_B: B -> A, D_A judges B-domain images, D_B judges A-domain images. One iteration: forward
all four translations, one G step (GAN + cycle + identity, D frozen), one D step on images drawn from the
history pools. Losses are logged with the weights from before the step, as the official code does.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from models.base_model import BaseModel
from models.losses import GANLoss
from models.networks import build_discriminator, build_generator, size_multiple
from util.image_pool import ImagePool


class CycleGANModel(BaseModel):
    directions = ("AtoB", "BtoA")

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.set_defaults(no_dropout=True)  # the official default: no dropout in resnet generators
        if is_train:
            parser.add_argument("--lambda_A", type=float, default=10.0, help="weight of cycle loss A->B->A")
            parser.add_argument("--lambda_B", type=float, default=10.0, help="weight of cycle loss B->A->B")
            parser.add_argument(
                "--lambda_identity",
                type=float,
                default=0.5,
                help="identity loss weight, relative to lambda_A/lambda_B (0 disables it)",
            )
        return parser

    @classmethod
    def validate_options(cls, opt, parser):
        if opt.isTrain and opt.lambda_identity > 0 and opt.input_nc != opt.output_nc:
            parser.error("--lambda_identity > 0 needs --input_nc == --output_nc (G_A(B) must be defined)")

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"]
        visual_A = ["real_A", "fake_B", "rec_A"]
        visual_B = ["real_B", "fake_A", "rec_B"]
        if self.isTrain and opt.lambda_identity > 0:
            visual_A.append("idt_B")
            visual_B.append("idt_A")
        self.visual_names = visual_A + visual_B
        self.model_names = ["netG_A", "netG_B", "netD_A", "netD_B"] if self.isTrain else ["netG_A", "netG_B"]

        g_kwargs = dict(
            ngf=opt.ngf,
            norm=opt.norm,
            use_dropout=not opt.no_dropout,
            init_type=opt.init_type,
            init_gain=opt.init_gain,
        )
        self.netG_A = build_generator(opt.netG, opt.input_nc, opt.output_nc, **g_kwargs)
        self.netG_B = build_generator(opt.netG, opt.output_nc, opt.input_nc, **g_kwargs)
        if not self.isTrain:
            return
        d_kwargs = dict(
            ndf=opt.ndf,
            n_layers_D=opt.n_layers_D,
            norm=opt.norm,
            init_type=opt.init_type,
            init_gain=opt.init_gain,
        )
        self.netD_A = build_discriminator(opt.netD, opt.output_nc, **d_kwargs)
        self.netD_B = build_discriminator(opt.netD, opt.input_nc, **d_kwargs)
        self.fake_A_pool = ImagePool(opt.pool_size)
        self.fake_B_pool = ImagePool(opt.pool_size)
        self.criterionGAN = GANLoss(opt.gan_mode)
        self.criterionCycle = torch.nn.L1Loss()
        self.criterionIdt = torch.nn.L1Loss()
        betas = (opt.beta1, opt.beta2)
        self.optimizers["G"] = torch.optim.Adam(
            [*self.netG_A.parameters(), *self.netG_B.parameters()], lr=opt.lr, betas=betas
        )
        self.optimizers["D"] = torch.optim.Adam(
            [*self.netD_A.parameters(), *self.netD_B.parameters()], lr=opt.lr, betas=betas
        )

    def size_multiple(self) -> int:
        return size_multiple(self.opt.netG)

    # ------------------------------------------------------------------ training
    def set_input(self, batch: dict) -> None:
        # The dataset already swaps folders for --direction BtoA, so A is always G_A's input domain.
        self.real_A, self.real_B = batch["A"], batch["B"]
        self.image_paths = batch.get("A_paths")

    def forward(self) -> None:
        self.fake_B = self.netG_A(self.real_A)
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B)
        self.rec_B = self.netG_A(self.fake_A)

    def backward_G(self) -> torch.Tensor:
        opt = self.opt
        lambda_idt, lambda_A, lambda_B = opt.lambda_identity, opt.lambda_A, opt.lambda_B
        if lambda_idt > 0:
            self.idt_A = self.netG_A(self.real_B)
            self.loss_idt_A = self.criterionIdt(self.idt_A, self.real_B) * lambda_B * lambda_idt
            self.idt_B = self.netG_B(self.real_A)
            self.loss_idt_B = self.criterionIdt(self.idt_B, self.real_A) * lambda_A * lambda_idt
        else:
            self.loss_idt_A = self.loss_idt_B = torch.zeros((), device=self.real_A.device)
        self.loss_G_A = self.criterionGAN(self.netD_A(self.fake_B), True, for_discriminator=False)
        self.loss_G_B = self.criterionGAN(self.netD_B(self.fake_A), True, for_discriminator=False)
        self.loss_cycle_A = self.criterionCycle(self.rec_A, self.real_A) * lambda_A
        self.loss_cycle_B = self.criterionCycle(self.rec_B, self.real_B) * lambda_B
        return (
            self.loss_G_A
            + self.loss_G_B
            + self.loss_cycle_A
            + self.loss_cycle_B
            + self.loss_idt_A
            + self.loss_idt_B
        )

    def discriminator_loss(self, netD, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Half the sum of the real and fake terms, slowing D relative to G as the official code does."""
        loss_real = self.criterionGAN(netD(real), True)
        loss_fake = self.criterionGAN(netD(fake.detach()), False)
        return (loss_real + loss_fake) * 0.5

    def optimize_parameters(self) -> None:
        self.forward()
        self.set_requires_grad([self.netD_A, self.netD_B], False)  # D gets no gradient from the G step
        self.backward_and_step(self.backward_G(), "G")
        self.set_requires_grad([self.netD_A, self.netD_B], True)
        self.zero_grad("D")
        # Pools return the pre-update fakes or older ones: D sees a history of G's outputs.
        self.loss_D_A = self.discriminator_loss(self.netD_A, self.real_B, self.fake_B_pool.query(self.fake_B))
        self.backward(self.loss_D_A)
        self.loss_D_B = self.discriminator_loss(self.netD_B, self.real_A, self.fake_A_pool.query(self.fake_A))
        self.backward(self.loss_D_B)
        self.step("D")

    def extra_state(self) -> dict:
        if not self.isTrain:
            return {}
        return {"fake_A_pool": self.fake_A_pool.state_dict(), "fake_B_pool": self.fake_B_pool.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        if self.isTrain and state:
            self.fake_A_pool.load_state_dict(state["fake_A_pool"])
            self.fake_B_pool.load_state_dict(state["fake_B_pool"])

    # ------------------------------------------------------------------ inference
    def translate(self, real: torch.Tensor, direction: str) -> OrderedDict[str, torch.Tensor]:
        if direction == "AtoB":
            fake = self.netG_A(real)
            return OrderedDict(real_A=real, fake_B=fake, rec_A=self.netG_B(fake))
        fake = self.netG_B(real)
        return OrderedDict(real_B=real, fake_A=fake, rec_B=self.netG_A(fake))
