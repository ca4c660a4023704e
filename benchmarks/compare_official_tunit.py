"""Side-by-side speed (and peak memory) of the official TUNIT iteration and ours, in one process.

    python -m benchmarks.compare_official_tunit --official PATH [--img_size 64 --batch_size 8
        --phase guiding|full --iters 4 --memory]

``PATH`` is an extracted checkout of clovaai/tunit. Nothing of it is vendored: its ``models``, ``tools`` and
``train`` packages are imported from ``PATH`` at run time under other names. The official iteration is its
own ``trainGAN_UNSUP`` called with ``iters=1`` (so each call also pays the epoch-end ``copy_norm_params``;
ours is given ``--tunit_epoch_iters 1`` to do the same), with two run-time patches that change no number:
``.cuda()`` and ``torch.cuda.synchronize`` are no-ops on a CPU run, and ``calc_iic_loss`` clamps copies of
its expanded views (clovaai/tunit#3: the in-place write fails in autograd since torch 1.5).

Both sides get the same weights (the official state_dicts load into ours with ``strict=True``), fresh
optimisers, the same batch ``(x_org, x_tf)``, the same reference permutation and the same full 1024-row MoCo
queue. ``--phase guiding`` times an iteration of the first 65k (C step only, official epoch 0); ``full`` one
of the GAN phase with G_EMA updates (C step, D step with R1, G step; official epoch 66, our step 67). The
steps are timed alternately (official, ours, ours, official, ...). ``--ours_args`` passes extra options to
our model (e.g. ``--tunit_official_step`` to time our official-order path). ``--memory`` also runs each
side alone in a fresh subprocess and reports its peak resident set (``VmHWM``; ``--mmap_threshold`` sets
glibc's ``MALLOC_MMAP_THRESHOLD_`` there). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import shlex
import sys
import types

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.side_by_side import (  # noqa: E402
    add_run_options,
    compare_alternately,
    current_rss_mb,
    measure_alone,
    official_modules,
    report,
)

SHARED_PACKAGES = ("models", "tools", "train", "util", "data", "options")
OFFICIAL_PREFIX = "_official_tunit"
NET_NAMES = {"C": "netC", "C_EMA": "netC_ema", "D": "netD", "G": "netG", "G_EMA": "netG_ema"}
PHASE_EPOCH = {"guiding": 0, "full": 66}  # official epochs: C only / GAN with G_EMA (schedule of main.py)
PHASE_STEP = {"guiding": 0, "full": 67}  # ours, one iteration per epoch: no G_EMA := G copy in the step


def load_official_tunit(path: str) -> types.SimpleNamespace:
    """Import the official network classes and ``train_unsupervised`` module from the checkout ``path``."""
    # Its packages have no __init__.py: our regular packages would win over them wherever they sit on the
    # path, so our root leaves sys.path during the import.
    saved_path = list(sys.path)
    sys.path[:] = [path] + [
        p for p in sys.path if not os.path.isfile(os.path.join(p or ".", "models", "__init__.py"))
    ]
    try:
        with official_modules(SHARED_PACKAGES, OFFICIAL_PREFIX):
            mods = {
                n: importlib.import_module(n)
                for n in ("models.generator", "models.discriminator", "models.guidingNet", "tools.ops")
            }
            mods["train"] = importlib.import_module("train.train_unsupervised")
    finally:
        sys.path[:] = saved_path
    ops = mods["tools.ops"]

    def calc_iic_loss(x_out, x_tf_out, lamb=1.0, eps=1e-10):
        # Upstream's masked clamp, on copies of the expanded marginals (the only change: clovaai/tunit#3).
        k = x_out.size(1)
        joint = ops.compute_joint(x_out, x_tf_out).clone()
        p_i = joint.sum(dim=1).view(k, 1).expand(k, k).clone()
        p_j = joint.sum(dim=0).view(1, k).expand(k, k).clone()
        for t in (joint, p_j, p_i):
            t[(t < eps).data] = eps
        return (-joint * (torch.log(joint) - lamb * torch.log(p_j) - lamb * torch.log(p_i))).sum()

    mods["train"].calc_iic_loss = calc_iic_loss
    return types.SimpleNamespace(
        Generator=mods["models.generator"].Generator,
        Discriminator=mods["models.discriminator"].Discriminator,
        GuidingNet=mods["models.guidingNet"].GuidingNet,
        train=mods["train"],
    )


class OfficialStep:
    """One official iteration: ``trainGAN_UNSUP`` over a one-batch loader with ``iters=1``."""

    def __init__(self, off, cfg, device: torch.device, batch: dict) -> None:
        s, k, sd = cfg.img_size, cfg.output_k, cfg.sty_dim
        with contextlib.redirect_stdout(io.StringIO()):  # the official constructors print
            self.nets = {
                "C": off.GuidingNet(s, {"cont": sd, "disc": k}),
                "C_EMA": off.GuidingNet(s, {"cont": sd, "disc": k}),
                "D": off.Discriminator(s, num_domains=k),
                "G": off.Generator(s, sd, use_sn=False),
                "G_EMA": off.Generator(s, sd, use_sn=False),
            }
        self.nets = {n: net.to(device) for n, net in self.nets.items()}
        self.nets["C_EMA"].load_state_dict(self.nets["C"].state_dict())
        self.opts = {  # main.py's optimisers
            "C": torch.optim.Adam(self.nets["C"].parameters(), 1e-4, weight_decay=0.001),
            "D": torch.optim.RMSprop(self.nets["D"].parameters(), 1e-4, weight_decay=0.0001),
            "G": torch.optim.RMSprop(self.nets["G"].parameters(), 1e-4, weight_decay=0.0001),
        }
        self.train, self.batch, self.epoch = off.train, batch, PHASE_EPOCH[cfg.phase]
        self.args = types.SimpleNamespace(
            iters=1, separated=65, ema_start=66, epochs=200, w_gp=10.0, w_rec=0.1, w_adv=1.0, w_vec=0.01,
            log_step=10**9, gpu=device.index or 0, distributed=False,
        )  # fmt: skip

    def __call__(self) -> None:
        b = self.batch
        loader = [((b["A"], b["A_tf"]), b["label"])]
        randperm, torch.randperm = torch.randperm, lambda n, *a, **kw: b["ref_idx"].clone()
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # tqdm's progress bar
                extra = {"logger": None, "queue": b["queue"]}
                self.train.trainGAN_UNSUP(loader, self.nets, self.opts, self.epoch, self.args, extra)
        finally:
            torch.randperm = randperm


def our_options(cfg, device: torch.device):
    from options import TrainOptions

    args = ["--model", "tunit", "--dataroot", os.devnull, "--display_id", "0",
            "--gpu_ids", str(device.index or 0) if device.type == "cuda" else "-1",
            "--crop_size", str(cfg.img_size), "--load_size", str(cfg.img_size),
            "--batch_size", str(cfg.batch_size), "--output_k", str(cfg.output_k), "--sty_dim", str(cfg.sty_dim),
            "--tunit_epoch_iters", "1", *shlex.split(cfg.ours_args)]  # fmt: skip
    return TrainOptions().parse(args, save=False)


class OurStep:
    """One iteration of ours as the trainer runs it (``util.trainer.Trainer.train_step`` without data)."""

    def __init__(self, cfg, device: torch.device, batch: dict, opt=None) -> None:
        import models
        from util.runtime import Runtime

        self.model = models.create_model(opt or our_options(cfg, device)).to(device)
        self.model.runtime = Runtime(device)
        self.model.train()
        self.model.queue.reset(batch["queue"])
        self.batch, self.step = batch, PHASE_STEP[cfg.phase]

    def __call__(self) -> None:
        m = self.model
        m.set_progress(1, self.step)
        m.set_input(self.batch)
        m.optimize_parameters()
        m.runtime.end_iteration()
        m.on_step_end()


def make_batch(cfg, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(cfg.seed)
    shape = (cfg.batch_size, 3, cfg.img_size, cfg.img_size)
    x_org, x_tf = (torch.rand(shape, generator=g) * 2 - 1 for _ in range(2))
    queue = torch.randn(1024, cfg.sty_dim, generator=g)
    batch = {"A": x_org, "A_tf": x_tf, "queue": queue, "ref_idx": torch.randperm(cfg.batch_size, generator=g)}
    batch = {k: v.to(device) for k, v in batch.items()}
    batch["label"] = torch.zeros(cfg.batch_size, dtype=torch.long)
    return batch


def patch_cuda_calls(device: torch.device) -> None:
    """On CPU, the official loop's ``.cuda(gpu)`` and ``torch.cuda.synchronize()`` become no-ops."""
    if device.type == "cpu":
        torch.Tensor.cuda = lambda self, *a, **kw: self
        torch.cuda.synchronize = lambda *a, **kw: None


def build_pair(cfg, device: torch.device, which=("official", "ours")) -> dict:
    """The steps named in ``which``; with both, ours gets the official initial weights (strict load). Alone
    (memory runs), each side builds only its own networks."""
    off = load_official_tunit(cfg.official)
    opt = our_options(cfg, device)  # imports every registered model before any memory reading
    batch = make_batch(cfg, device)
    torch.manual_seed(cfg.seed)
    steps = {"official": OfficialStep(off, cfg, device, batch)} if "official" in which else {}
    if "ours" in which:
        steps["ours"] = OurStep(cfg, device, batch, opt)
        if "official" in steps:
            for name, attr in NET_NAMES.items():
                net = getattr(steps["ours"].model, attr)
                net.load_state_dict(steps["official"].nets[name].state_dict(), strict=True)
    return steps


def compare_speed(cfg, device: torch.device) -> dict:
    return compare_alternately(build_pair(cfg, device), cfg.iters, cfg.warmup, device)


def memory_alone(which: str, cfg, device: torch.device) -> dict:
    """Peak memory of one side alone (run in its own subprocess); both codebases are imported first."""
    step = build_pair(cfg, device, which=(which,))[which]
    rss_built = current_rss_mb()  # imports of both codebases, networks, optimisers, batch
    return measure_alone(step, rss_built, cfg.warmup + cfg.mem_iters, device)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", required=True, help="extracted clovaai/tunit checkout")
    p.add_argument("--img_size", type=int, default=64)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--phase", default="full", choices=["guiding", "full"])
    p.add_argument("--output_k", type=int, default=10)
    p.add_argument("--sty_dim", type=int, default=128)
    p.add_argument("--ours_args", default="", help="extra options for our model, one string")
    add_run_options(p, iters=4, mem_iters=2)
    p.add_argument(
        "--mmap_threshold",
        type=int,
        default=0,
        help="memory runs: glibc MALLOC_MMAP_THRESHOLD_ in bytes (0: glibc's adaptive default, whose heap "
        "fragmentation depends on the allocation order; e.g. 65536 to measure the live-tensor peak)",
    )
    args = p.parse_args(argv)
    if not os.path.isfile(os.path.join(args.official, "train", "train_unsupervised.py")):
        p.error(f"--official {args.official}: not a clovaai/tunit checkout (no train/train_unsupervised.py)")
    args.official = os.path.abspath(args.official)  # the memory subprocesses run from the repository root
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = parse_args(argv)
    cfg.official = os.path.abspath(cfg.official)  # the memory subprocesses run from the repository root
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    patch_cuda_calls(device)
    keys = ("img_size", "batch_size", "phase", "output_k", "sty_dim", "ours_args")
    config = {k: getattr(cfg, k) for k in keys} | {
        "malloc_mmap_threshold": cfg.mmap_threshold or "glibc default"
    }
    env = dict(os.environ)
    if (
        cfg.mmap_threshold > 0
    ):  # glibc: blocks this large are mapped and unmapped, so RSS follows live tensors
        env["MALLOC_MMAP_THRESHOLD_"] = str(cfg.mmap_threshold)
    return report(argv, "benchmarks.compare_official_tunit", cfg, device, compare_speed, memory_alone, config,
                  env=env)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
