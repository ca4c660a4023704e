"""Every training configuration worth checking on a new device, at its real size and at its smallest.

One table for ``benchmarks/gpu_check.py`` (real sizes: each model's defaults, batch 1 except TUNIT) and the
tests that run "every model" (``tests/tiny_models.py``: the smallest sizes each architecture accepts;
U-GAT-IT's and LiSS's discriminators need 96 px).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]  # --model and its options, at either size
    layout: str = "unaligned"  # synthetic dataset: unaligned, depths (LiSS) or class_folder (TUNIT)
    tiny: tuple[str, ...] = ()  # what the smallest run adds
    tiny_size: int = 32


_TUNIT_TINY = ("--output_k", "4", "--sty_dim", "16", "--tunit_g_nf", "8", "--tunit_g_nf_mlp", "32", "--tunit_d_nf",
               "8", "--tunit_d_max_nf", "32", "--tunit_c_widths", "4,M,8,M,16,M,16,M,16,M", "--batch_size", "2",
               "--moco_k", "8")  # fmt: skip
_TUNIT_REAL = ("--batch_size", "8")  # BatchNorm and IIC need a batch; the official 32 at 128 px is heavier
_UGATIT_TINY = ("--ch", "4", "--img_size", "96", "--iteration", "10")
_CUT_TINY = ("--netF_nc", "16", "--num_patches", "16")

CASES: dict[str, Case] = {
    "cycle_gan": Case(("--model", "cycle_gan"), tiny=("--netG", "resnet_6blocks")),
    "cut": Case(("--model", "cut"), tiny=_CUT_TINY),
    "fastcut": Case(("--model", "cut", "--CUT_mode", "FastCUT"), tiny=_CUT_TINY),
    "srunit": Case(("--model", "srunit"), tiny=_CUT_TINY),
    "liss": Case(("--model", "liss"), "depths", ("--jigsaw_size", "84"), 96),
    "ugatit_full": Case(("--model", "ugatit", "--light", "False"), tiny=_UGATIT_TINY, tiny_size=96),
    "ugatit_light": Case(("--model", "ugatit", "--light", "True"), tiny=_UGATIT_TINY, tiny_size=96),
    "ugatit_enhanced": Case(
        ("--model", "ugatit_enhanced", "--light", "True"), tiny=_UGATIT_TINY, tiny_size=96
    ),
    "unit": Case(("--model", "unit"), tiny=("--num_scales", "2")),
    "unit_nsgan": Case(("--model", "unit", "--gan_type", "nsgan"), tiny=("--num_scales", "2")),
    "tunit": Case(("--model", "tunit", *_TUNIT_REAL), "class_folder", _TUNIT_TINY),
    "tunit_gan": Case(
        ("--model", "tunit", *_TUNIT_REAL, "--tunit_gan_start", "0", "--tunit_ema_start", "0"),
        "class_folder",
        _TUNIT_TINY,
    ),  # fmt: skip
}
#: What every tiny run adds: narrow networks, no display, no workers, data in order.
TINY_COMMON = ("--ngf", "8", "--ndf", "8", "--display_id", "0", "--num_threads", "0", "--no_progress",
               "--serial_batches")  # fmt: skip


def case_args(name: str, tiny: bool) -> list[str]:
    """The train.py options of a case (without --dataroot, --gpu_ids or checkpoint folders)."""
    case = CASES[name]
    if not tiny:
        return list(case.args)
    sizes = ("--load_size", str(case.tiny_size), "--crop_size", str(case.tiny_size))
    return [*case.args, *case.tiny, *TINY_COMMON, *sizes]


def make_dataroot(root: str, name: str, tiny: bool) -> str:
    """A synthetic dataset for the case under ``root`` (made once, reused)."""
    from datasets.make_synthetic import make_synthetic

    case = CASES[name]
    size = case.tiny_size if tiny else 256
    depths = case.layout == "depths"
    layout = "unaligned" if depths else case.layout
    n_train = 2 if tiny else 8
    folder = f"{root}/{layout}_{size}{'_depths' if depths else ''}"
    return make_synthetic(folder, layout=layout, size=size, n_train=n_train, n_test=1, seed=0, depths=depths)
