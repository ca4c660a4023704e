"""Find host-device synchronisations and host-to-device copies in a training step, on any device.

On a GPU, an op whose result the host must read (``.item()``, ``bool(t)``, ``nonzero``, boolean indexing,
``unique``, ...) waits for every queued kernel, and a tensor made on the host and copied to the GPU
(``randperm(n).to(device)``, a module-level constant ``.to(weight)``) is a blocking copy from pageable memory.
A CPU run cannot time these, but it can see them. :class:`HostSyncCounter` tags every tensor of a step as a
*device* tensor (the model's parameters and buffers, the batch, and whatever is computed from them) or a *host*
tensor (made by a constructor without ``device=``, or deliberately with ``device="cpu"``, and whatever is
computed from host tensors only), as a GPU run would place them, and records

* every data-dependent op (value or output shape read by the host) on a device tensor;
* every tensor constructor called without ``device=`` (on a GPU run it lands on the host), and every
  ``torch.tensor(python data, device=...)`` / ``t.new_tensor(python data)`` (a host-to-device copy);
* every ``.to(device)`` / ``.cuda()`` of a host tensor or of a tensor from outside the step and the model
  (a module-level constant), and every ``.cpu()`` / ``.tolist()`` / ``.numpy()`` of a device tensor.

A deliberate host draw that decides Python control flow (an augmentation coin) is spelled ``device="cpu"``
and reading it is free. PyTorch's optimisers keep their step counter on the host by design; the counter
ignores what happens inside ``Optimizer.step`` (an fp16 ``GradScaler.step`` does synchronise to test for
infs: PyTorch's, outside model code).
"""

from __future__ import annotations

import collections
import traceback
from collections.abc import Iterable

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

aten = torch.ops.aten

#: Ops whose output value or shape depends on the data: the host waits for the device to read it.
DATA_DEPENDENT_OPS = {
    aten._local_scalar_dense.default,  # .item(), bool(t), float(t), int(t), if t: ...
    aten.is_nonzero.default,
    aten.equal.default,
    aten.nonzero.default,
    aten.nonzero_static.default,
    aten.masked_select.default,
    aten._unique2.default,
    aten.unique_dim.default,
    aten.unique_consecutive.default,
    aten.repeat_interleave.Tensor,
}
#: Indexing ops that synchronise only when an index is a boolean mask.
MASK_INDEX_OPS = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default}
#: Constructors that copy Python data (a host-to-device copy when given a device).
DATA_CONSTRUCTORS = {torch.tensor, torch.as_tensor, torch.asarray}
#: Tensor methods that bring a device tensor's data to the host.
HOST_READS = {torch.Tensor.cpu, torch.Tensor.tolist, torch.Tensor.numpy}
#: Moves to a device: free on a CPU run, a blocking copy on a GPU run when the tensor is on the host.
MOVES = {torch.Tensor.to, torch.Tensor.cuda}


def _tensors(tree) -> list[torch.Tensor]:
    return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]


def _has_bool_index(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(i is not None and i.dtype == torch.bool for i in indices)


def _target_device(args, kwargs):
    """The device ``t.to(...)`` asks for (``None``: a dtype-only cast)."""
    for a in [kwargs.get("device"), kwargs.get("other"), *args]:
        if isinstance(a, torch.Tensor):
            return a.device
        if isinstance(a, (str, torch.device)):
            return a
    return None


class _DispatchCounter(TorchDispatchMode):
    def __init__(self, owner: HostSyncCounter) -> None:
        super().__init__()
        self.owner = owner

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in DATA_DEPENDENT_OPS or (func in MASK_INDEX_OPS and _has_bool_index(args)):
            if not all(self.owner.is_host(t) for t in _tensors(args)):
                self.owner.record(str(func))
        return func(*args, **kwargs)


class _FunctionCounter(TorchFunctionMode):
    def __init__(self, owner: HostSyncCounter) -> None:
        super().__init__()
        self.owner = owner
        self.constructors = _device_constructors()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        owner, inputs = self.owner, _tensors((args, kwargs))
        host = False
        if func in self.constructors:
            device = kwargs.get("device")
            if device is None and not inputs:
                owner.record(f"torch.{func.__name__} without device=")
            elif func in DATA_CONSTRUCTORS and device not in (None, "cpu") and args and not inputs:
                owner.record(f"torch.{func.__name__}(host data, device=)")
            host = device is None or device == "cpu"
        elif func is torch.Tensor.new_tensor and not owner.is_host(args[0]) and len(inputs) == 1:
            owner.record("Tensor.new_tensor(host data)")
        elif func in HOST_READS and not owner.is_host(args[0]):
            owner.record(f"Tensor.{func.__name__}")
        elif func in MOVES:
            target = _target_device(args[1:], kwargs)
            if target is not None and target != "cpu" and (owner.is_host(args[0]) or owner.foreign(args[0])):
                owner.record(f"host tensor .{func.__name__}(device)")
            host = target is None and owner.is_host(args[0])
        else:
            host = bool(inputs) and all(owner.is_host(t) for t in inputs)
        out = func(*args, **kwargs)
        owner.track(out, host)
        return out


class HostSyncCounter:
    """Context manager: ``with HostSyncCounter(owned) as c: step()``; then ``c.total``, ``c.counts``, ``c.sites``.

    ``owned``: the tensors that live on the device when the step starts (the model's parameters and buffers,
    the batch). ``sites`` maps each finding to the line of the repository's code that caused it, so a failing
    test names the line to fix.
    """

    def __init__(self, owned: Iterable[torch.Tensor] = ()) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.sites: dict[str, str] = {}
        # Keyed by identity (a tensor's == is elementwise); entries vanish with their tensors.
        self._owned = WeakIdKeyDictionary({t: True for t in owned})
        self._made = WeakIdKeyDictionary()
        self._host = WeakIdKeyDictionary()
        self._in_optimizer = 0
        self._modes = (_FunctionCounter(self), _DispatchCounter(self))
        self._hooks = []

    @classmethod
    def for_model(cls, model: torch.nn.Module, batch=()) -> HostSyncCounter:
        return cls([*model.parameters(), *model.buffers(), *_tensors(batch)])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def is_host(self, t: torch.Tensor) -> bool:
        return t in self._host

    def foreign(self, t: torch.Tensor) -> bool:
        base = t._base if t._base is not None else t
        return not any(x in self._owned or x in self._made for x in (t, base))

    def track(self, out, host: bool) -> None:
        for t in _tensors(out):
            self._made[t] = True
            if host:
                self._host[t] = True

    def record(self, what: str) -> None:
        if self._in_optimizer:
            return
        self.counts[what] += 1
        self.sites.setdefault(what, _caller())

    def _enter_optimizer(self, *args) -> None:
        self._in_optimizer += 1

    def _leave_optimizer(self, *args) -> None:
        self._in_optimizer -= 1

    def __enter__(self) -> HostSyncCounter:
        self._hooks = [
            register_optimizer_step_pre_hook(self._enter_optimizer),
            register_optimizer_step_post_hook(self._leave_optimizer),
        ]
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
        for hook in self._hooks:
            hook.remove()

    def report(self) -> str:
        return "; ".join(f"{what} x{n} at {self.sites[what]}" for what, n in self.counts.items()) or "none"


def _caller() -> str:
    """The innermost stack frame outside torch and this module: the line that asked for the sync."""
    for frame in reversed(traceback.extract_stack()):
        name = frame.filename.replace("\\", "/")
        if "/torch/" not in name and not name.endswith("/host_sync.py"):
            return f"{name.rsplit('/', 2)[-2]}/{name.rsplit('/', 1)[-1]}:{frame.lineno}"
    return "?"
