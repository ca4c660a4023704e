"""Every registered training configuration at its smallest: options, a model and one real batch.

Shared by the CUDA-readiness, AMP and graph-break tests, which all run "every model" once. The sizes are the
smallest each architecture accepts (U-GAT-IT's and LiSS's discriminators need 96 px).
"""

from __future__ import annotations

import torch

import data
import models
from options import TrainOptions

_TUNIT = ["--output_k", "4", "--sty_dim", "16", "--tunit_g_nf", "8", "--tunit_g_nf_mlp", "32", "--tunit_d_nf",
          "8", "--tunit_d_max_nf", "32", "--tunit_c_widths", "4,M,8,M,16,M,16,M,16,M", "--batch_size", "2",
          "--moco_k", "8"]  # fmt: skip
_UGATIT = ["--ch", "4", "--img_size", "96", "--iteration", "10"]
_CUT = ["--netF_nc", "16", "--num_patches", "16"]

#: case name -> (dataset layout, image size, model and its tiny options)
CASES: dict[str, tuple[str, int, list[str]]] = {
    "cycle_gan": ("unaligned", 32, ["--model", "cycle_gan", "--netG", "resnet_6blocks"]),
    "cut": ("unaligned", 32, ["--model", "cut", *_CUT]),
    "fastcut": ("unaligned", 32, ["--model", "cut", "--CUT_mode", "FastCUT", *_CUT]),
    "srunit": ("unaligned", 32, ["--model", "srunit", *_CUT]),
    "liss": ("depths", 96, ["--model", "liss", "--jigsaw_size", "84"]),
    "ugatit_light": ("unaligned", 96, ["--model", "ugatit", "--light", "True", *_UGATIT]),
    "ugatit_enhanced": ("unaligned", 96, ["--model", "ugatit_enhanced", "--light", "True", *_UGATIT]),
    "unit": ("unaligned", 32, ["--model", "unit", "--num_scales", "2"]),
    "unit_nsgan": ("unaligned", 32, ["--model", "unit", "--num_scales", "2", "--gan_type", "nsgan"]),
    "tunit": ("class_folder", 32, ["--model", "tunit", *_TUNIT]),
    "tunit_gan": ("class_folder", 32, ["--model", "tunit", *_TUNIT, "--tunit_gan_start", "0",
                                        "--tunit_ema_start", "0"]),  # fmt: skip
}
COMMON = ["--gpu_ids", "-1", "--ngf", "8", "--ndf", "8", "--display_id", "0", "--num_threads", "0",
          "--no_progress", "--serial_batches"]  # fmt: skip


def dataroot(tmp_root: str, layout: str, size: int) -> str:
    from datasets.make_synthetic import make_synthetic

    depths = layout == "depths"
    layout = "unaligned" if depths else layout
    return make_synthetic(f"{tmp_root}/{layout}_{size}{'_d' if depths else ''}", layout=layout, size=size,
                          n_train=2, n_test=1, seed=0, depths=depths)  # fmt: skip


def parse(case: str, tmp_root: str, *extra: str):
    layout, size, args = CASES[case]
    root = dataroot(tmp_root, layout, size)
    sizes = ["--load_size", str(size), "--crop_size", str(size)]
    argv = [*args, "--dataroot", root, "--checkpoints_dir", f"{tmp_root}/ck", *COMMON, *sizes, *extra]
    return TrainOptions().parse(argv, save=False)


def build(case: str, tmp_root: str, *extra: str, seed: int = 0):
    """``(model, batch)``: a set-up model in train mode and its first training batch."""
    opt = parse(case, tmp_root, *extra)
    torch.manual_seed(seed)
    model = models.create_model(opt)
    model.setup()
    model.train()
    loader = data.create_dataloader(data.create_dataset(opt), opt, shuffle=False, batch_size=opt.batch_size)
    return model, next(iter(loader))


def train_step(model, batch, step: int = 0) -> None:
    """One iteration as the trainer runs it (without the trainer's logging and finiteness check)."""
    model.set_progress(1, step)
    model.set_input(batch)
    with model.runtime.autocast():
        model.optimize_parameters()
    model.runtime.end_iteration()
    model.on_step_end()
