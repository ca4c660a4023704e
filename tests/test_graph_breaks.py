"""``torch._dynamo.explain`` finds no graph break in any model's networks (CPU fast convolutions off, as
``--compile`` sets them): each network is traced with the inputs a real training step gave it, gradients on.

Besides ``forward``, the methods and submodules a network lists in ``compile_methods`` (what ``--compile``
compiles: CUT's ``encode``, UNIT's ``encode``/``decode``, TUNIT's ``decode``/``cnt_encoder``/``trunk``) are
traced with the arguments the training step passed them. The default run covers the generators of CycleGAN,
CUT, U-GAT-IT, UNIT and TUNIT (and TUNIT's D and guiding trunk); every network and method of every
configuration runs with ``-m slow`` (about 1.5 minutes on one core).
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from tiny_models import CASES, build, train_step

DEFAULT = {
    "cycle_gan": ("netG_A",),
    "cut": ("netG.encode",),
    "ugatit_light": ("genA2B",),
    "unit": ("gen_a.encode", "gen_a.decode"),
    "tunit_gan": ("netG.cnt_encoder", "netG.decode", "netC.trunk", "netD"),
}


def traced_callables(model) -> dict[str, tuple]:
    """``name -> (callable, owner, attribute)`` for every network and every entry of its ``compile_methods``
    (what ``--compile`` compiles)."""
    out = {}
    for name, net in model.networks().items():
        out[name] = (net, None, None)
        for attr in getattr(net, "compile_methods", ()):
            out[f"{name}.{attr}"] = (getattr(net, attr), net, attr)
    return out


def network_inputs(case: str, model, batch) -> dict[str, tuple[tuple, dict]]:
    """Each callable's first arguments in a training step; an image (and a style for TUNIT's G) for
    networks a model reaches only through other methods (``encode``, ``moco``, ...)."""
    calls: dict[str, tuple[tuple, dict]] = {}
    targets = traced_callables(model)
    hooks = []
    for name, (fn, owner, attr) in targets.items():
        if isinstance(fn, torch.nn.Module):
            record = lambda module, args, kwargs, name=name: calls.setdefault(name, (args, kwargs)) and None  # noqa: E731
            hooks.append(fn.register_forward_pre_hook(record, with_kwargs=True))
        else:  # shadow the method for one step with a recording wrapper

            def wrapper(*args, _name=name, _fn=fn, **kwargs):
                calls.setdefault(_name, (args, kwargs))
                return _fn(*args, **kwargs)

            setattr(owner, attr, wrapper)
    train_step(model, batch, 0)
    for h in hooks:
        h.remove()
    for fn, owner, attr in targets.values():
        if owner is not None and not isinstance(fn, torch.nn.Module):
            delattr(owner, attr)
    x = batch["A"]
    for name in model.networks():
        if name not in calls:
            style = (
                (torch.randn(x.shape[0], model.opt.sty_dim),)
                if case.startswith("tunit") and "G" in name
                else ()
            )
            calls[name] = ((x, *style), {})
    return calls


def graph_breaks(case: str, names, tmp_root: str) -> dict[str, list[str]]:
    model, batch = build(case, tmp_root, "--no-fast_cpu_convs")
    inputs = network_inputs(case, model, batch)
    targets = traced_callables(model)
    found = {}
    for name in names or [n for n in targets if n in inputs]:
        args, kwargs = inputs[name]
        torch._dynamo.reset()
        explanation = torch._dynamo.explain(targets[name][0])(*args, **kwargs)
        found[name] = [str(r.reason).splitlines()[0] for r in explanation.break_reasons]
    torch._dynamo.reset()
    return found


@pytest.mark.parametrize("case", list(DEFAULT))
def test_no_graph_breaks(case, tmp_path_factory):
    found = graph_breaks(case, DEFAULT[case], str(tmp_path_factory.getbasetemp()))
    assert not any(found.values()), found


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c != "tunit"])  # tunit_gan runs the same networks
def test_no_graph_breaks_in_any_network(case, tmp_path_factory):
    found = graph_breaks(case, None, str(tmp_path_factory.getbasetemp()))
    assert not any(found.values()), found
