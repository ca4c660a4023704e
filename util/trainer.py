"""The one training loop every model runs through.

The trainer owns devices, mixed precision, multi-process training, checkpoints, logging and the schedule;
a model only sees ``set_input`` / ``optimize_parameters`` and its hooks. Resuming is exact: the data order
(a pure function of seed, epoch and index), the position inside the epoch, optimisers, schedulers, model
state (image pools, queues, ...) and every RNG state come back from the checkpoint.
"""

from __future__ import annotations

import os
import signal
import time

import torch
from tqdm import tqdm

import data
import models
from data.batch_checks import check_size_multiple
from util import checkpoint as ckpt_io
from util.distributed import (
    DistInfo,
    agree_any,
    barrier,
    cleanup,
    init_distributed,
    launch_info,
    main_process_prints,
    prepare_replicas,
    select_device,
    share_from_main,
)
from util.metrics.evaluate import PeriodicEvaluator
from util.nonfinite import LossWatch, NonFiniteLossError
from util.runtime import Runtime, split_batch
from util.schedulers import without_order_warning
from util.trainer_checkpoints import CheckpointingMixin
from util.visualizer import Visualizer


class TrainingInterrupted(Exception):
    """SIGTERM/SIGINT arrived; a checkpoint was written and training stopped cleanly."""


class TrainingAborted(KeyboardInterrupt):
    """A second SIGTERM/SIGINT: stop at once; the message says whether the checkpoint save finished."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


__all__ = ["NonFiniteLossError", "Trainer", "TrainingAborted", "TrainingInterrupted"]


def crossed(step: int, per_step: int, freq: int) -> bool:
    """True when a counter advancing by ``per_step`` passed a multiple of ``freq`` on this step."""
    return freq > 0 and (step * per_step) // freq > ((step - 1) * per_step) // freq


def move_to(batch, device: torch.device):
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and batch and torch.is_tensor(batch[0]):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


class Trainer(CheckpointingMixin):
    def __init__(self, opt):
        self.opt = opt
        self.dist: DistInfo = launch_info()
        self.device = select_device(opt.gpu_ids, self.dist, explicit=opt.was_given("gpu_ids"))
        init_distributed(self.dist, self.device, opt.dist_timeout)
        if self.device.type == "cuda":
            # Fixed-size crops let cuDNN pick the fastest kernels once (as the official code does).
            torch.backends.cudnn.benchmark = opt.preprocess != "scale_width"
        self.expr_dir = os.path.join(opt.checkpoints_dir, opt.name)
        ckpt_io.seed_everything(opt.seed)
        self.dataset = self.loader = None
        if opt.dry_run and not os.path.isdir(opt.dataroot):
            print(f"dry run: --dataroot {opt.dataroot} does not exist; the data was not built")
        else:
            self.dataset = data.create_dataset(opt)
            self.loader = data.create_dataloader(
                self.dataset,
                opt,
                shuffle=not opt.serial_batches,
                batch_size=opt.batch_size * opt.grad_accum,  # split into --grad_accum micro-batches
                rank=self.dist.rank,
                world_size=self.dist.world_size,
                device=self.device,
            )
            if self.dist.is_main:
                name, items, batches = type(self.dataset).__name__, len(self.dataset), len(self.loader)
                print(f"dataset [{name}]: {items} items, {batches} batches/epoch")
        self.model = models.create_model(opt).to(self.device)
        self.min_size = type(self.model).min_image_size(opt)  # images keeping their shape are checked per batch
        prepare_replicas(self.model, opt, self.dist)  # SyncBatchNorm, rank 0's weights everywhere
        self.model.runtime = Runtime.for_training(opt, self.device, self.dist.enabled, self.model)
        with main_process_prints(self.dist):  # the network summary once per run
            self.model.setup(verbose=opt.verbose)
        # Per-process randomness (noise, pools) differs between ranks, but is reproducible.
        ckpt_io.seed_everything(opt.seed + self.dist.rank)
        self.epoch, self.epoch_iter, self.global_step = opt.epoch_count, 0, 0
        self.epoch_images = 0  # position in the epoch's global image order (resumes across batch/world sizes)
        self.loss_watch = LossWatch(self.device)
        self.stop_requested, self.pid = False, os.getpid()
        self.visualizer = None
        self.evaluator = None
        if opt.eval_freq > 0:  # a fresh run's best.pth is judged against its own evaluations only
            self.evaluator = PeriodicEvaluator(opt, self.expr_dir, resume=opt.continue_train)
        if opt.dry_run:
            return
        # Checks first: a refused resume must leave the folder untouched (no loss_log.txt header either).
        if opt.continue_train:
            self.resume(ckpt_io.checkpoint_path(self.expr_dir, opt.epoch))
        elif opt.pretrained_name:
            self.load_pretrained(opt.pretrained_name)
        self.describe_schedule()
        self.visualizer = Visualizer.from_options(opt, self.expr_dir, is_main_process=self.dist.is_main)

    def describe_schedule(self) -> None:
        """One line for step-counted schedules: what a step is, and what several processes change."""
        max_steps = self.model.max_steps()
        if max_steps is None or not self.dist.is_main:
            return
        world, batch = self.dist.world_size, self.opt.batch_size * self.opt.grad_accum
        print(
            f"schedule: {max_steps} steps of {world} process(es) x {batch} image(s) = {world * batch} images "
            f"per step; the schedule counts steps, so N processes see N times the images of one"
        )

    # ------------------------------------------------------------------ loop
    def finished(self) -> bool:
        max_steps = self.model.max_steps()
        if max_steps is not None:
            return self.global_step >= max_steps
        return self.epoch > self.model.total_epochs()

    def fit(self) -> None:
        if self.opt.dry_run:
            return
        previous = self.install_signal_handlers()
        try:
            if self.finished():
                print(f"training of {self.opt.name} is already complete (step {self.global_step})")
            while not self.finished():
                self.run_epoch()
        finally:  # the stop handler stays until the end: a second Ctrl-C in here exits quietly too
            if self.stop_requested:
                self.stop_workers()
            self.close_visualizer()
            cleanup(self.dist)
            signal.signal(signal.SIGTERM, previous[0])
            signal.signal(signal.SIGINT, previous[1])

    def stop_workers(self) -> None:
        """End the loader's persistent worker processes now rather than when the loader is collected."""
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
            self.loader._iterator = None

    def close_visualizer(self) -> None:
        """Loss plot and display shut down; a failure here (a full disk) must not hide why training ended."""
        if self.visualizer is None:
            return
        try:
            self.visualizer.save_loss_plot()
            self.visualizer.close()
        except OSError as exc:
            print(f"warning: could not write the loss plot in {self.expr_dir}: {exc.strerror or exc}")

    def run_epoch(self) -> None:
        epoch, opt = self.epoch, self.opt
        data.set_epoch(self.loader, epoch, start=self.epoch_images)
        t_epoch = t_data_start = time.time()
        bar = tqdm(
            self.loader,
            desc=f"epoch {epoch}",
            initial=self.epoch_iter,
            total=self.epoch_iter + len(self.loader),
            disable=opt.no_progress or not self.dist.is_main,
            leave=False,
            dynamic_ncols=True,
        )
        for batch in bar:
            t_data = time.time() - t_data_start
            t_comp = self.train_step(batch)
            self.after_step(t_comp, t_data)
            if agree_any(self.stop_requested, self.dist):  # a signal to any rank stops all, at the same step
                self.save("latest")
                raise TrainingInterrupted(
                    f"interrupted at epoch {epoch}, iteration {self.epoch_iter}; saved "
                    f"{ckpt_io.checkpoint_path(self.expr_dir, 'latest')}; resume with --continue_train"
                )
            if self.finished():
                self.save("latest")
                self.visualizer.write_page(self.model.get_current_visuals(), epoch)
                self.report(f"end of training: step {self.global_step} / {self.model.max_steps()}", t_epoch)
                return
            t_data_start = time.time()
        bar.close()
        with without_order_warning():  # an epoch resumed at its end had no optimiser step
            self.model.on_epoch_end()
        self.epoch, self.epoch_iter, self.epoch_images = epoch + 1, 0, 0
        labels = ["latest"] + (
            [epoch] if opt.save_epoch_freq > 0 and epoch % opt.save_epoch_freq == 0 else []
        )
        self.save(*labels)
        self.visualizer.write_page(self.model.get_current_visuals(), epoch)  # the page, whatever display_freq
        steps = self.model.max_steps()  # iteration-based models: the step count is the length
        length = f"/ {self.model.total_epochs()}" if steps is None else f"(step {self.global_step} / {steps})"
        self.report(f"end of epoch {epoch} {length}", t_epoch)

    def report(self, what: str, t_start: float) -> None:
        if self.dist.is_main:
            lr = self.model.current_lr()
            print(f"{what} \t time taken: {time.time() - t_start:.1f} s\t learning rate {lr:.7f}")

    def train_step(self, batch) -> float:
        t0 = time.time()
        model = self.model
        model.set_progress(self.epoch, self.global_step)
        check_size_multiple(batch, model.size_multiple(), self.opt, self.min_size)  # shapes only: no device work
        parts = split_batch(batch, self.opt.grad_accum) if self.opt.grad_accum > 1 else [(batch, 1.0)]
        for i, (micro, share) in enumerate(parts):
            model.runtime.begin_micro_batch(i, len(parts), share)
            model.set_input(move_to(micro, self.device))
            with model.runtime.autocast():
                model.optimize_parameters()
        model.runtime.end_iteration()
        model.on_step_end()
        self.epoch_iter += 1
        self.global_step += 1
        self.epoch_images += self.opt.batch_size * self.opt.grad_accum * self.dist.world_size
        self.loss_watch.observe(model.get_current_losses(), self.global_step)  # on the device, no sync
        return time.time() - t0

    def check_finite(self, all_reduce: bool | None = None) -> None:
        """Read the device-side non-finite flag (print steps, saves); all ranks together under torchrun."""
        try:
            self.loss_watch.raise_if_bad(self.dist.enabled if all_reduce is None else all_reduce)
        except NonFiniteLossError as exc:
            raise NonFiniteLossError(
                f"{exc} (epoch {self.epoch}); training stopped; {self.on_disk()}. "
                f"Try a lower --lr, --amp none, or check the input data."
            ) from None

    def after_step(self, t_comp: float, t_data: float) -> None:
        opt, step = self.opt, self.global_step
        images_per_step = opt.batch_size * opt.grad_accum * self.dist.world_size
        if crossed(step, images_per_step, opt.save_latest_freq):  # every rank: the save is collective
            if self.dist.is_main:
                print(f"saving the latest model (epoch {self.epoch}, total steps {step})")
            self.save("latest", *([f"iter_{step}"] if opt.save_by_iter else []))
        if crossed(step, images_per_step, opt.print_freq):
            self.check_finite()  # every rank: the one host read of the loss flag (all-reduced under torchrun)
        if self.evaluator is not None and self.evaluator.due(step):  # rank 0 evaluates, the others wait
            improved = self.dist.is_main and self.evaluator.evaluate(
                self.model, self.epoch, step, self.device, self.visualizer
            )
            barrier(self.dist, "rank 0 evaluated")
            if share_from_main(improved, self.dist, "rank 0 evaluated"):
                self.save("best")  # collective, as 'latest': every rank's pools, queue and RNG are kept
        if not self.dist.is_main:
            return
        if crossed(step, images_per_step, opt.print_freq):
            losses = {k: float(v) for k, v in self.model.get_current_losses().items()}
            self.visualizer.print_current_losses(
                self.epoch,
                self.epoch_iter,
                losses,
                t_comp / opt.batch_size,
                t_data,
                lr=self.model.current_lr(),
            )
            self.visualizer.plot_current_losses(step, losses)
        if crossed(step, images_per_step, opt.display_freq):
            save_html = crossed(step, images_per_step, opt.update_html_freq) or step == 1
            self.visualizer.display_current_results(
                self.model.get_current_visuals(), self.epoch, step, save_html
            )

    # ------------------------------------------------------------------ signals
    def install_signal_handlers(self):
        def request_stop(signum, frame):
            if os.getpid() != self.pid:  # a forked DataLoader worker: the main process decides
                return
            if self.stop_requested:  # a second signal: stop now, saying what the first one's save became
                raise TrainingAborted(signum, f"stopped by a second signal {signum}; {self.save_outcome()}")
            print(f"\nreceived signal {signum}: saving a checkpoint after this iteration, then stopping")
            self.stop_requested = True

        return signal.signal(signal.SIGTERM, request_stop), signal.signal(signal.SIGINT, request_stop)
