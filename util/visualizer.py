"""Training-time logging and display: loss and metric logs, the HTML training page with its loss plot, and
the optional visdom, TensorBoard and W&B backends.

The optional backends are not imported unless asked for, and a missing package or a dead server costs one
warning line, after which that backend is off for the rest of the run.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from urllib.parse import urlparse

import numpy as np
from torch import Tensor

from util.html import HTML, TrainingPage
from util.image_utils import make_grid_image, save_image, tensor2im
from util.loss_plot import write_svg
from util.wandb_logger import WandbLogger

logger = logging.getLogger(__name__)

VISDOM_HINT = "start one with `python -m visdom.server`"
# The official page reloads every second, which refetches every image constantly; 30 s is plenty.
PAGE_REFRESH_S = 30


def _server_answers(server: str, port: int, timeout: float = 2.0) -> bool:
    """A bare TCP connect: cheap, bounded by ``timeout``, and needs no visdom client."""
    host = urlparse(server if "//" in server else "//" + server).hostname or "localhost"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def save_images(
    webpage: HTML, visuals: dict[str, Tensor], image_path: str, aspect_ratio: float = 1.0, width: int = 256
) -> list[str]:
    """Test-time helper: save the first image of each visual as ``<stem>_<label>.png`` and add one row."""
    stem = os.path.splitext(os.path.basename(image_path))[0]
    webpage.add_header(stem)
    names = [f"{stem}_{label}.png" for label in visuals]
    for name, t in zip(names, visuals.values()):
        save_image(t, os.path.join(webpage.get_image_dir(), name), aspect_ratio=aspect_ratio)
    webpage.add_images(names, list(visuals), names, width=width)
    return names


class Visualizer:
    """Logs losses/metrics to text files and shows current visuals on an HTML page, visdom and TensorBoard.

    Args:
        name: experiment name (window titles, page title).
        log_dir: experiment folder (``checkpoints/NAME``); the page is ``log_dir/web/index.html``.
        display_id: > 0 asks for visdom; windows are named after the experiment.
        display_server, display_port, display_env: where the visdom server is.
        display_ncols: visuals per row of the visdom grid; 0 shows one window per visual.
        display_winsize: image width on the HTML page.
        use_html: save visuals to ``log_dir/web/images`` and keep ``index.html`` up to date.
        web_keep_last: rows (epochs) of images the page keeps on disk, newest first; 0 keeps all.
        tensorboard: also write scalars and images to ``log_dir/tensorboard``.
        wandb_project: a W&B project name turns W&B logging on (``config``: the options to record).
        is_main_process: under DDP only rank 0 writes or displays; elsewhere every method is a no-op.
    """

    def __init__(
        self,
        name: str,
        log_dir: str,
        *,
        display_id: int = 1,
        display_server: str = "http://localhost",
        display_port: int = 8097,
        display_env: str = "main",
        display_ncols: int = 4,
        display_winsize: int = 256,
        use_html: bool = True,
        web_keep_last: int = 50,
        tensorboard: bool = False,
        wandb_project: str | None = None,
        config: dict | None = None,
        is_main_process: bool = True,
    ) -> None:
        self.name = name
        self.log_dir = log_dir
        self.web_dir = os.path.join(log_dir, "web")
        self.img_dir = os.path.join(self.web_dir, "images")
        self.loss_log = os.path.join(log_dir, "loss_log.txt")
        self.metrics_log = os.path.join(log_dir, "metrics_log.txt")
        self.display_ncols = display_ncols
        self.display_winsize = display_winsize
        self.use_html = use_html
        self.is_main = is_main_process
        self.loss_history: dict[str, tuple[list[int], list[float]]] = {}
        self.metric_history: dict[str, tuple[list[int], list[float]]] = {}
        self._loss_plot: dict = {"X": [], "Y": [], "legend": []}  # the official visdom line-plot buffer
        self._html_epoch: int | None = (
            None  # last epoch with saved images; the first call of each epoch saves
        )
        self._lr: float | None = None  # the last printed learning rate, logged with the losses to W&B
        self.loss_plot_path = os.path.join(self.web_dir, "loss_curves.svg")
        self.page = TrainingPage(
            self.web_dir,
            f"Experiment name = {name}",
            width=display_winsize,
            keep_last=web_keep_last,
            refresh=PAGE_REFRESH_S,
        )
        self.vis = None
        self.writer = None
        self.wandb: WandbLogger | None = None
        if not self.is_main:
            return
        os.makedirs(log_dir, exist_ok=True)
        with open(self.loss_log, "a", encoding="utf-8") as f:
            f.write(f"================ Training Loss ({time.strftime('%c')}) ================\n")
        if display_id > 0:
            self.vis = self._connect_visdom(display_server, display_port, display_env)
        if tensorboard:
            self.writer = self._open_tensorboard()
        if wandb_project:
            self.wandb = WandbLogger(wandb_project, name, log_dir, config or {})

    @classmethod
    def from_options(cls, opt, log_dir: str, is_main_process: bool = True) -> Visualizer:
        """The visualizer a training run with options ``opt`` asks for."""
        return cls(
            opt.name,
            log_dir,
            display_id=opt.display_id,
            display_server=opt.display_server,
            display_port=opt.display_port,
            display_env=opt.display_env,
            display_ncols=opt.display_ncols,
            display_winsize=opt.display_winsize,
            use_html=not opt.no_html,
            web_keep_last=getattr(opt, "web_keep_last", 50),
            tensorboard=opt.tensorboard,
            wandb_project=opt.wandb_project_name if getattr(opt, "use_wandb", False) else None,
            config={
                k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
                for k, v in vars(opt).items()
                if not k.startswith("_")
            },
            is_main_process=is_main_process,
        )

    # ---- optional backends ------------------------------------------------------------------------------
    @staticmethod
    def _connect_visdom(server: str, port: int, env: str):
        try:
            import visdom
        except ImportError:
            logger.warning(
                "visdom is not installed; visdom display is off (pip install visdom, then %s)", VISDOM_HINT
            )
            return None
        # Checked before building the client: the client has no connect timeout of its own.
        if _server_answers(server, port):
            try:
                # No incoming socket: we never receive events, and it would start a reconnecting thread.
                vis = visdom.Visdom(
                    server=server, port=port, env=env, raise_exceptions=True, use_incoming_socket=False
                )
                if vis.check_connection():
                    return vis
            except Exception:  # any client failure means the same thing: no display
                pass
        logger.warning(
            "no visdom server answered at %s:%d; visdom display is off for this run (%s)",
            server,
            port,
            VISDOM_HINT,
        )
        return None

    def _visdom(self, method: str, **kwargs) -> None:
        """Call ``self.vis.<method>``; the first failure (server gone) turns visdom off, with one warning."""
        if self.vis is None:
            return
        try:
            getattr(self.vis, method)(**kwargs)
        except Exception as e:  # the client raises several types for one cause: the server is unreachable
            logger.warning("visdom stopped answering (%s); visdom display is off for the rest of the run", e)
            self.vis = None

    def _open_tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.warning(
                "tensorboard=True but the tensorboard package is not installed; TensorBoard is off"
            )
            return None
        return SummaryWriter(log_dir=os.path.join(self.log_dir, "tensorboard"))

    # ---- images ---------------------------------------------------------------------------------------
    def display_current_results(
        self, visuals: dict[str, Tensor], epoch: int, step: int, save_result: bool
    ) -> None:
        """Show the visuals everywhere that is on; save them to the page when ``save_result`` or new epoch."""
        if not self.is_main or not visuals:
            return
        labels = list(visuals)
        if self.vis is not None:
            if self.display_ncols > 0:
                grid = make_grid_image(list(visuals.values()), self.display_ncols)
                caption = " | ".join(labels)
                opts = {"title": f"{self.name} images (epoch {epoch})", "caption": caption}
                self._visdom("image", img=grid.transpose(2, 0, 1), win=f"{self.name}_images", opts=opts)
            else:
                for label, t in visuals.items():
                    img = tensor2im(t).transpose(2, 0, 1)
                    self._visdom("image", img=img, win=f"{self.name}_{label}", opts={"title": label})
        if self.writer is not None:
            for label, t in visuals.items():
                self.writer.add_image(f"images/{label}", tensor2im(t), step, dataformats="HWC")
        if self.wandb is not None:
            self.wandb.log_images(step, {label: tensor2im(t) for label, t in visuals.items()})
        if self.use_html and (save_result or epoch != self._html_epoch):
            self.page.save_row(epoch, visuals)
            self._html_epoch = epoch
            self.page.write(self.loss_plot_path)

    def write_page(self, visuals: dict[str, Tensor], epoch: int) -> str | None:
        """End of an epoch or of training: this epoch's images, the loss plot and index.html, whatever the
        display frequency, so that even a short run has its page. Returns the page's path (None if off)."""
        if not (self.is_main and self.use_html):
            return None
        try:
            if visuals:
                self.page.save_row(epoch, visuals)
                self._html_epoch = epoch
            self.save_loss_plot()
            return self.page.write(self.loss_plot_path)
        except OSError as exc:  # a full disk must not stop training over a web page; checkpoints say more
            logger.warning("could not write the training page in %s: %s", self.web_dir, exc.strerror or exc)
            return None

    # ---- scalars --------------------------------------------------------------------------------------
    def print_current_losses(
        self,
        epoch: int,
        epoch_iter: int,
        losses: dict[str, float],
        t_comp: float,
        t_data: float,
        lr: float | None = None,
    ) -> str:
        """Print one line like the official ``(epoch: 3, iters: 400, time: 0.123, data: 0.002) G_A: 0.123``."""
        head = f"(epoch: {epoch}, iters: {epoch_iter}, time: {t_comp:.3f}, data: {t_data:.3f}"
        if lr is not None:
            head += f", lr: {lr:.3e}"
        message = head + ") " + " ".join(f"{k}: {float(v):.3f}" for k, v in losses.items())
        if self.is_main:
            print(message, flush=True)
            with open(self.loss_log, "a", encoding="utf-8") as f:
                f.write(message + "\n")
        self._lr = lr
        return message

    @staticmethod
    def _append(
        history: dict[str, tuple[list[int], list[float]]], step: int, values: dict[str, float]
    ) -> None:
        for k, v in values.items():
            steps, vals = history.setdefault(k, ([], []))
            steps.append(step)
            vals.append(float(v))

    def plot_current_losses(self, step: int, losses: dict[str, float]) -> None:
        """Record the losses at ``step``; plot them on visdom (one window) and TensorBoard when on."""
        if not self.is_main or not losses:
            return
        self._append(self.loss_history, step, losses)
        if self.wandb is not None:
            self.wandb.log_losses(step, losses, self._lr)
        if self.writer is not None:
            for k, v in losses.items():
                self.writer.add_scalar(f"loss/{k}", float(v), step)
        if self.vis is not None:
            plot = self._loss_plot
            if plot["legend"] != list(losses):  # a model changed its loss set (e.g. a new phase): start over
                plot.update(X=[], Y=[], legend=list(losses))
            plot["X"].append(step)
            plot["Y"].append([float(losses[k]) for k in plot["legend"]])
            x = np.stack([np.array(plot["X"])] * len(plot["legend"]), 1)
            opts = {
                "title": f"{self.name} loss over time",
                "legend": plot["legend"],
                "xlabel": "step",
                "ylabel": "loss",
            }
            self._visdom("line", X=x, Y=np.array(plot["Y"]), opts=opts, win=f"{self.name}_losses")

    def log_metrics(self, step: int, metrics: dict[str, float]) -> str:
        """Print and append evaluation metrics (FID, KID, accuracy) to metrics_log.txt and plot them."""
        message = f"(step: {step}) " + " ".join(f"{k}: {float(v):.4f}" for k, v in metrics.items())
        if not self.is_main:
            return message
        print(message, flush=True)
        with open(self.metrics_log, "a", encoding="utf-8") as f:
            f.write(message + "\n")
        self._append(self.metric_history, step, metrics)
        if self.wandb is not None:
            self.wandb.log_metrics(step, metrics)
        for k, v in metrics.items():
            if self.writer is not None:
                self.writer.add_scalar(f"metrics/{k}", float(v), step)
            steps, vals = self.metric_history[k]
            opts = {"title": f"{self.name} {k}", "xlabel": "step", "ylabel": k}
            self._visdom(
                "line", X=np.array(steps), Y=np.array(vals), opts=opts, win=f"{self.name}_metric_{k}"
            )
        return message

    def save_loss_plot(self) -> str | None:
        """Write web/loss_curves.svg (losses, and metrics below them) and link it from index.html.

        Drawn as SVG by util.loss_plot, so no plotting library is needed. Returns the path, or None when
        nothing was logged yet.
        """
        if not self.is_main or not (self.loss_history or self.metric_history):
            return None
        os.makedirs(self.web_dir, exist_ok=True)
        write_svg(self.loss_plot_path, [(self.loss_history, "loss"), (self.metric_history, "metric")])
        if self.use_html:
            self.page.write(self.loss_plot_path)
        return self.loss_plot_path

    def close(self) -> None:
        """Flush and close TensorBoard; visdom holds no socket (use_incoming_socket=False)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None
        self.vis = None
