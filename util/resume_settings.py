"""On ``--continue_train``, the command line sets the optimiser and schedule settings; the checkpoint their state.

Loading an optimiser's or scheduler's ``state_dict`` also loads its settings: the learning rate, betas and
weight decay of each parameter group, and the definition of the schedule (``LambdaLR`` stores the fields
of its factor object, e.g. ``n_epochs``). Restored as they are, a resume that extends a run
(``--n_epochs 100`` -> ``200``) would keep the old linear decay, whose factor goes negative after the old
end, and a resume with a lower ``--lr`` would silently keep the old one. The CycleGAN/CUT codebases rebuild
both from the options on resume (losing the Adam moments); here the moments, step counts and positions
come from the checkpoint and the settings from this command, so an unchanged command resumes exactly and a
changed one applies from the resumed step on, with a note saying what changed.

The position a schedule started from (``epoch_count`` of the linear decay) stays the checkpoint's: the
resumed epoch already counts from it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from torch.optim.lr_scheduler import LambdaLR

#: group settings worth a line in the note (the others, e.g. ``foreach``/``fused``, are taken silently)
REPORTED = ("lr", "betas", "eps", "weight_decay", "momentum", "alpha", "amsgrad", "nesterov", "dampening", "centered")  # fmt: skip
#: scheduler fields that record where a schedule is, not what it is: these stay the checkpoint's
PROGRESS = {
    "last_epoch", "_step_count", "_last_lr", "base_lrs", "_get_lr_called_within_step", "_is_initial",
    "verbose", "best", "num_bad_epochs", "cooldown_counter", "epoch_count", "decay_epochs",
}  # fmt: skip


@dataclass
class FreshSettings:
    """Each optimiser's group settings and each scheduler's state as this command built them."""

    groups: dict[str, list[dict]]
    schedules: dict[str, dict]


def group_settings(group: dict) -> dict:
    """A parameter group without its parameters, lists normalised to tuples (``betas`` comes back a list
    from some checkpoints)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in group.items() if k != "params"}


def snapshot(optimizers: dict, schedulers: dict) -> FreshSettings:
    """Taken before the checkpoint's states are loaded."""
    return FreshSettings(
        groups={n: [group_settings(g) for g in o.param_groups] for n, o in optimizers.items()},
        schedules={n: copy.deepcopy(s.state_dict()) for n, s in schedulers.items()},
    )


def base_key(group: dict) -> str:
    """``initial_lr`` where a schedule scales the rate (the current ``lr`` is then a decayed value)."""
    return "initial_lr" if "initial_lr" in group else "lr"


def reapply_groups(name: str, optimizer, fresh: list[dict]) -> list[tuple[str, str]]:
    """This command's settings into the loaded groups; the current rate rescaled by the base-rate ratio."""
    changes = []
    for i, (group, settings) in enumerate(zip(optimizer.param_groups, fresh)):
        where = name if len(fresh) == 1 else f"{name}[{i}]"
        key = base_key(settings)
        old, new = group.get(key), settings[key]
        if old != new:
            group["lr"] = group["lr"] * new / old if key == "initial_lr" and old else new
            group[key] = new
            changes.append((where, f"lr {old:g} -> {new:g}"))
        for k, value in settings.items():
            if k in ("lr", "initial_lr") or group_settings({k: group.get(k)}).get(k) == value:
                continue
            if k in REPORTED:
                changes.append((where, f"{k} {group.get(k)} -> {value}"))
            group[k] = value
    return changes


def schedule_definition(state: dict, fresh: dict) -> dict:
    """The fields of ``fresh`` (this command's schedule) that define it, with the loaded ``state``'s progress
    kept inside factor objects (``lr_lambdas`` entries)."""
    definition = {k: v for k, v in fresh.items() if k not in PROGRESS}
    if "lr_lambdas" in definition:
        definition["lr_lambdas"] = [
            None if new is None else {**new, **{k: v for k, v in (old or {}).items() if k in PROGRESS}}
            for new, old in zip(fresh["lr_lambdas"], state.get("lr_lambdas") or [None] * len(fresh["lr_lambdas"]))
        ]  # fmt: skip
    return definition


def reapply_schedule(name: str, scheduler, state: dict, fresh: dict) -> list[tuple[str, str]]:
    """This command's schedule definition at the loaded position (``state``, read before any scheduler was
    changed: U-GAT-IT's share one factor object); the current rates recomputed from it when the definition or a
    base rate changed (otherwise nothing is touched: an unchanged resume stays exact)."""
    definition = schedule_definition(state, fresh)
    changes = describe(name, state, definition)
    optimizer = getattr(scheduler, "optimizer", None)
    rebased = False
    if optimizer is not None and "base_lrs" in state:
        definition["base_lrs"] = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        rebased = definition["base_lrs"] != list(state["base_lrs"])
    if not changes and not rebased:
        return []
    scheduler.load_state_dict({**state, **definition})
    if optimizer is not None:
        recompute_rates(scheduler, optimizer)
    return changes


def describe(name: str, state: dict, definition: dict) -> list[tuple[str, str]]:
    """``("G", "n_epochs 100 -> 200")`` for each field that differs (inside factor objects too)."""
    changes = []
    for key, new in definition.items():
        old = state.get(key)
        if key == "lr_lambdas":
            for a, b in zip(old or [], new):
                changes += [(name, f"{f} {(a or {}).get(f)} -> {v}") for f, v in (b or {}).items()
                            if (a or {}).get(f) != v]  # fmt: skip
        elif old != new:
            changes.append((name, f"{key} {old} -> {new}"))
    return list(dict.fromkeys(changes))


def recompute_rates(scheduler, optimizer) -> None:
    """Set each group's rate to what the schedule gives at its position, where it has a closed form."""
    if isinstance(scheduler, LambdaLR):
        rates = [base * factor(scheduler.last_epoch) for base, factor in zip(scheduler.base_lrs, scheduler.lr_lambdas)]  # fmt: skip
    elif hasattr(scheduler, "_get_closed_form_lr"):  # StepLR, CosineAnnealingLR, ...
        rates = scheduler._get_closed_form_lr()
    else:  # ReduceLROnPlateau and custom schedules: the rescaled rates stand until their next update
        return
    for group, rate in zip(optimizer.param_groups, rates):
        group["lr"] = rate
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]


def reapply(optimizers: dict, schedulers: dict, fresh: FreshSettings) -> list[str]:
    """After loading a checkpoint: this command's settings back in; what changed, one entry per change with the
    optimisers it concerns (``lr 0.0002 -> 0.0001 (G, D)``)."""
    changes = []
    for name, optimizer in optimizers.items():
        changes += reapply_groups(name, optimizer, fresh.groups[name])
    loaded = {name: copy.deepcopy(s.state_dict()) for name, s in schedulers.items()}
    for name, scheduler in schedulers.items():
        found = reapply_schedule(name, scheduler, loaded[name], fresh.schedules[name])
        changes += [(who, f"schedule {what}") for who, what in found]
    owners: dict[str, list[str]] = {}
    for who, what in changes:
        owners.setdefault(what, []).append(who)
    return [f"{what} ({', '.join(who)})" for what, who in owners.items()]
