"""LiSS training machinery that is not maths: the task schedule, the learning-rate decay, the legacy RAdam,
validation metrics, and ``ScheduleMixin`` (the model's methods that drive them).

All follow vict0rsch/LiSS (``models/liss_model.py`` ``init_schedule`` / ``*_schedule`` / ``update_ref_encoder``,
``eval.py``, ``train.py``'s manual decay, and ``torch_optimizer.RAdam`` as that code used it); the stateful
objects have ``state_dict`` / ``load_state_dict`` so a resumed run continues in the same stage.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence

import torch

from data.liss_dataset import LiSSDataset
from util.trainer import crossed

SCHEDULES: tuple[str, ...] = (
    "parallel",
    "sequential",
    "liss",
    "additional",
    "representational",
    "representational-traduction",
)

#: Metric kind and comparison of each task's switching threshold (official: accuracy ``>``, loss ``<``).
THRESHOLD_KIND: dict[str, str] = {"rotation": "acc", "jigsaw": "acc", "depth": "loss", "gray": "loss"}


class TaskSchedule:
    """Which parts of the LiSS objective are on (``on[k]`` for identity, translation and each task).

    ``update(metrics)`` applies one validation's metrics (``test_G_{A,B}_{task}_{acc,loss}``) and returns the
    event the model acts on: ``"switch"`` (a sequential hand-over; the ``liss`` schedule then refreshes its
    reference encoders), ``"handover"`` (representational schedules: tasks off, translation on, freezing), or
    None. A task passes when both domains pass its threshold.

    - parallel: everything on, always.
    - sequential / liss: the first task alone; when the active task passes it stops and the next starts; after
      the last task, identity + translation. At most one switch per validation, never back.
    - additional: like sequential, but finished tasks keep training (README: rotation, then rotation + depth,
      ..., then everything + translation). The official code switches the next task *off* instead, so only
      the first task ever trains (known official bug 2); this is the documented behaviour.
    - representational: all tasks, no translation; when all pass at one validation, tasks stop and
      identity + translation start.
    - representational-traduction (undocumented officially): everything on, but decoders and D_A/D_B frozen
      until all tasks pass, then as representational.
    """

    def __init__(self, kind: str, tasks: Sequence[str], thresholds: dict[str, float]) -> None:
        if kind not in SCHEDULES:
            raise ValueError(f"unknown task schedule {kind!r}; valid: {', '.join(SCHEDULES)}")
        self.kind, self.tasks, self.thresholds = kind, tuple(tasks), dict(thresholds)
        everything = kind in ("parallel", "representational-traduction")
        self.on: dict[str, bool] = {k: everything for k in ("identity", "translation", *self.tasks)}
        if kind == "representational":
            self.on.update(dict.fromkeys(self.tasks, True))
        elif kind in ("sequential", "liss", "additional"):
            self._start(0)
        self.repr_is_frozen = False

    def _start(self, index: int) -> None:
        """Turn on task ``index`` or, past the last task, identity and translation."""
        if index < len(self.tasks):
            self.on[self.tasks[index]] = True
        else:
            self.on["identity"] = self.on["translation"] = True

    def passes(self, task: str, metrics: dict[str, float]) -> bool:
        kind, threshold = THRESHOLD_KIND[task], self.thresholds[task]
        values = [metrics[f"test_G_{d}_{task}_{kind}"] for d in "AB"]
        return all(v > threshold for v in values) if kind == "acc" else all(v < threshold for v in values)

    def update(self, metrics: dict[str, float]) -> str | None:
        if self.kind == "parallel":
            return None
        if self.kind in ("sequential", "liss", "additional"):
            if self.on["translation"]:
                return None
            active = [i for i, t in enumerate(self.tasks) if self.on[t]]
            # sequential/liss have one active task; additional advances on its newest one.
            if active and self.passes(self.tasks[active[-1]], metrics):
                if self.kind != "additional":
                    self.on[self.tasks[active[-1]]] = False
                self._start(active[-1] + 1)
                return "switch"
            return None
        if self.repr_is_frozen or not all(self.passes(t, metrics) for t in self.tasks):
            return None
        self.on.update(dict.fromkeys(self.tasks, False))
        self.on["identity"] = self.on["translation"] = True
        self.repr_is_frozen = True
        return "handover"

    def state_dict(self) -> dict:
        return {"kind": self.kind, "on": dict(self.on), "repr_is_frozen": self.repr_is_frozen}

    def load_state_dict(self, state: dict) -> None:
        if state["kind"] != self.kind or set(state["on"]) != set(self.on):
            raise ValueError(
                f"checkpoint schedule {state['kind']} over {sorted(state['on'])} does not match "
                f"--task_schedule {self.kind} over {sorted(self.on)}"
            )
        self.on = dict(state["on"])
        self.repr_is_frozen = bool(state["repr_is_frozen"])


class TranslationLinearDecay:
    """The official manual decay: it counts only epochs that end with translation on.

    After each epoch: if ``epoch > n_epochs`` and translation is on, ``d += 1``; then every group of every
    optimizer gets ``lr = initial_lr * (1 - d / (n_epochs_decay + 1))``; training stops after the epoch where
    ``d > n_epochs_decay``. Sequential schedules therefore train for as long as their task stages take, plus
    the decay. (``--lr_policy`` is not used, as in the official ``train.py``.)
    """

    def __init__(self, optimizers: Iterable[torch.optim.Optimizer], n_epochs: int, n_epochs_decay: int,
                 epoch_count: int = 1) -> None:  # fmt: skip
        self.optimizers = list(optimizers)
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.n_epochs, self.n_epochs_decay = n_epochs, n_epochs_decay
        self.decay_epochs = 0
        self.last_epoch = epoch_count - 1

    def epoch_end(self, epoch: int, translation_on: bool) -> None:
        self.last_epoch = epoch
        if epoch > self.n_epochs and translation_on:
            self.decay_epochs += 1
        if self.decay_epochs > 0:
            factor = max(0.0, 1.0 - self.decay_epochs / (self.n_epochs_decay + 1))
            for optimizer in self.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = group["initial_lr"] * factor

    def total_epochs(self, translation_on: bool) -> int:
        """The last epoch as far as it is known now (it moves while translation has not started)."""
        if self.decay_epochs > self.n_epochs_decay:
            return self.last_epoch
        current = self.last_epoch + 1
        if translation_on:
            return max(current, self.n_epochs + 1) + self.n_epochs_decay - self.decay_epochs
        return max(current, self.n_epochs + 1) + self.n_epochs_decay

    def state_dict(self) -> dict:
        return {"decay_epochs": self.decay_epochs, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.decay_epochs, self.last_epoch = int(state["decay_epochs"]), int(state["last_epoch"])


class LegacyRAdam(torch.optim.Optimizer):
    """RAdam as ``torch_optimizer.RAdam`` computes it, including its shared step-size cache (known official bug 1).

    The cache (10 slots keyed by ``step % 10``, holding ``(step, N_sma, step_size)``) is shared by every
    parameter group with the same betas, so a parameter reuses the step size, learning rate included, that
    the first parameter reaching the same step computed. When all heads train from the start, the task groups'
    own learning rates are thus ignored. ``torch.optim.RAdam`` is the same algorithm without the cache; use
    this class only to reproduce runs of the official code. Rectification: ``N_sma >= 5`` (torch: ``> 5``).
    The cache is not checkpointed: after a resume the first parameter at each step refills it.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:  # fmt: skip
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self._cache: dict[tuple[float, float], list[list]] = {}

    def _step_size(self, group: dict, step: int) -> tuple[float, float]:
        beta1, beta2 = group["betas"]
        slot = self._cache.setdefault((beta1, beta2), [[None, None, None] for _ in range(10)])[step % 10]
        if slot[0] == step:
            return slot[1], slot[2]
        beta2_t = beta2**step
        n_sma_max = 2 / (1 - beta2) - 1
        n_sma = n_sma_max - 2 * step * beta2_t / (1 - beta2_t)
        size = group["lr"] / (1 - beta1**step)
        if n_sma >= 5:
            rect = (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma * n_sma_max / (n_sma_max - 2)
            size *= math.sqrt((1 - beta2_t) * rect)
        slot[:] = [step, n_sma, size]
        return n_sma, size

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                exp_avg.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["step"] += 1
                n_sma, size = self._step_size(group, state["step"])
                if group["weight_decay"] != 0:
                    p.add_(p, alpha=-group["weight_decay"] * group["lr"])
                if n_sma >= 5:
                    p.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(group["eps"]), value=-size)
                else:
                    p.add_(exp_avg, alpha=-size)
        return loss


@torch.no_grad()
def task_metrics(model, loader: Iterable[dict], device: torch.device) -> dict[str, float]:
    """The official eval.py metrics of every task of a LiSS ``model`` over ``loader``.

    ``test_G_{A,B}_{task}_loss``: the task's training loss (gray includes its 0.1 GAN term), averaged over
    batches; ``test_G_{A,B}_{rotation,jigsaw}_acc``: argmax accuracy over all samples. Translation is not run
    (the official eval computes it for images only). Uses ``model.set_input``/``forward``/``task_loss``.
    """
    keys = [(X, t) for t in model.tasks for X in "AB"]
    losses = {k: [] for k in keys}
    correct, count = dict.fromkeys(keys, 0), dict.fromkeys(keys, 0)
    for batch in loader:
        model.set_input({k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()})
        model.forward(dict.fromkeys(model.tasks, True))
        for X, task in keys:
            losses[X, task].append(float(model.task_loss(task, X)))
            if THRESHOLD_KIND[task] == "acc":
                pred = getattr(model, f"{task}_pred_{X}").argmax(1)
                correct[X, task] += int((pred == getattr(model, f"{task}_target_{X}")).sum())
                count[X, task] += pred.numel()
    metrics = {f"test_G_{X}_{t}_loss": sum(v) / len(v) for (X, t), v in losses.items() if v}
    metrics.update({f"test_G_{X}_{t}_acc": correct[X, t] / n for (X, t), n in count.items() if n})
    return metrics


class ScheduleMixin:
    """The schedule's side of ``LiSSModel``: validation, stage changes, reference encoders, lr decay, state.

    Methods of the model (they read its networks, options and schedule), kept here so that the model file
    shows the maths of one iteration.
    """

    def _apply_freezing(self) -> None:
        """requires_grad as the schedule stage says (also re-applied after a resume)."""
        kind, frozen = self.schedule.kind, self.schedule.repr_is_frozen
        decoders = [self.netG_A.decoder, self.netG_B.decoder]
        if kind == "representational-traduction" and not frozen:
            self.set_requires_grad(decoders, False)
        if kind.startswith("representational") and frozen:
            encoders = [self.netG_A.encoder, self.netG_B.encoder] if self.opt.repr_mode == "freeze" else []
            heads = [getattr(g, t) for g in (self.netG_A, self.netG_B) for t in self.tasks]
            self.set_requires_grad(encoders + heads, False)
            self.set_requires_grad(decoders, True)

    def update_ref_encoder(self) -> None:
        """ref <- copy of the encoder the first time, then a * encoder + (1 - a) * ref (state_dict-wise)."""
        a = self.opt.encoder_merge_ratio
        for X in "AB":
            encoder, ref = getattr(self, f"netG_{X}").encoder, getattr(self, f"ref_encoder_{X}")
            if ref is None:
                ref = copy.deepcopy(encoder)
            else:
                old = ref.state_dict()
                ref.load_state_dict({k: a * v + (1 - a) * old[k] for k, v in encoder.state_dict().items()})
            self.set_requires_grad(ref, False)
            setattr(self, f"ref_encoder_{X}", ref)

    def on_validation(self, metrics: dict[str, float]) -> None:
        event = self.schedule.update(metrics)
        if event is not None:
            stage = ", ".join(k for k, v in self.schedule.on.items() if v)
            print(
                f"LiSS {self.schedule.kind} schedule: {event} after step {self.global_step + 1}; on: {stage}"
            )
        if event == "switch" and self.schedule.kind == "liss":
            self.update_ref_encoder()
        if event == "handover":
            self._apply_freezing()
            if self.opt.repr_mode == "distillation":
                self.update_ref_encoder()

    def on_step_end(self) -> None:
        """Validate after the first iteration and every --display_freq images (official cadence)."""
        step = self.global_step + 1
        if step == 1 or crossed(step, self.opt.batch_size, self.opt.display_freq):
            self.val_metrics = self.validate()
            self.on_validation(self.val_metrics)

    def validation_loader(self) -> torch.utils.data.DataLoader:
        if self._val_loader is None:
            opt = self.opt.replace(phase=self.opt.liss_val_phase, serial_batches=True)
            dataset = LiSSDataset(opt)
            self._val_loader = torch.utils.data.DataLoader(
                dataset, opt.batch_size, num_workers=opt.num_threads
            )
        self._val_loader.dataset.set_epoch(self.n_validations)  # new random crops/views each time, replayable
        return self._val_loader

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Task metrics on the validation split with every task on (official eval.py, training transforms).

        The training batch, outputs and losses are restored afterwards, so logs still show the training step.
        """
        saved = {k: v for k, v in vars(self).items() if torch.is_tensor(v)}
        with self.runtime.autocast():
            metrics = task_metrics(self, self.validation_loader(), next(self.netG_A.parameters()).device)
        vars(self).update(saved)
        self.n_validations += 1
        shown = " ".join(f"{k[7:]}={v:.4f}" for k, v in sorted(metrics.items()))
        print(f"LiSS validation {self.n_validations} after step {self.global_step + 1}: {shown}")
        return metrics

    # ------------------------------------------------------------------ schedules, state, visuals
    def setup(self, verbose: bool = False) -> None:
        # Not BaseModel.setup: its --lr_policy schedulers would already change the lr at construction.
        if self.isTrain:
            opt = self.opt
            decay = TranslationLinearDecay(
                self.optimizers.values(), opt.n_epochs, opt.n_epochs_decay, opt.epoch_count
            )
            self.schedulers = {"lr": decay}
        self.print_networks(verbose)

    def on_epoch_end(self, metric: float | None = None) -> None:
        self.schedulers["lr"].epoch_end(self.epoch, self.schedule.on["translation"])

    def total_epochs(self) -> int:
        if not self.isTrain or "lr" not in self.schedulers:
            return super().total_epochs()
        return self.schedulers["lr"].total_epochs(self.schedule.on["translation"])

    def extra_state(self) -> dict:
        if not self.isTrain:
            return {}
        state = super().extra_state()
        state.update(schedule=self.schedule.state_dict(), n_validations=self.n_validations)
        for X in "AB":
            ref = getattr(self, f"ref_encoder_{X}")
            state[f"ref_encoder_{X}"] = None if ref is None else ref.state_dict()
        return state

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        if not self.isTrain or not state:
            return
        self.schedule.load_state_dict(state["schedule"])
        self.n_validations = int(state["n_validations"])
        for X in "AB":
            if state[f"ref_encoder_{X}"] is not None:
                ref = copy.deepcopy(getattr(self, f"netG_{X}").encoder)
                ref.load_state_dict(state[f"ref_encoder_{X}"])
                self.set_requires_grad(ref, False)
                setattr(self, f"ref_encoder_{X}", ref)
        self._apply_freezing()
