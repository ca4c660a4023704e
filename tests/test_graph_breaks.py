"""``torch._dynamo.explain`` finds no graph break in any model's networks (CPU fast convolutions off, as
``--compile`` sets them): each network is traced with the inputs a real training step gave it, gradients on.

The default run covers the generators of CycleGAN, CUT, U-GAT-IT, UNIT and TUNIT (and TUNIT's D); every network
of every configuration runs with ``-m slow`` (about a minute on one core).
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from tiny_models import CASES, build, train_step

DEFAULT = {
    "cycle_gan": ("netG_A",),
    "cut": ("netG",),
    "ugatit_light": ("genA2B",),
    "unit": ("gen_a",),
    "tunit_gan": ("netG", "netD"),
}


def network_inputs(case: str, model, batch) -> dict[str, tuple[tuple, dict]]:
    """Each network's first ``forward`` arguments in a training step; an image (and a style for TUNIT's G)
    for networks a model reaches only through other methods (``encode``, ``moco``, ...)."""
    calls: dict[str, tuple[tuple, dict]] = {}

    def record(name):
        def hook(module, args, kwargs):
            calls.setdefault(name, (args, kwargs))  # returns None: the call's inputs stay as they are

        return hook

    nets = model.networks()
    hooks = [net.register_forward_pre_hook(record(n), with_kwargs=True) for n, net in nets.items()]
    train_step(model, batch, 0)
    for h in hooks:
        h.remove()
    x = batch["A"]
    for name in nets:
        if name not in calls:
            style = (torch.randn(x.shape[0], model.opt.sty_dim),) if case.startswith("tunit") and "G" in name else ()
            calls[name] = ((x, *style), {})
    return calls


def graph_breaks(case: str, names, tmp_root: str) -> dict[str, list[str]]:
    model, batch = build(case, tmp_root, "--no-fast_cpu_convs")
    inputs = network_inputs(case, model, batch)
    found = {}
    for name in names or model.networks():
        args, kwargs = inputs[name]
        torch._dynamo.reset()
        explanation = torch._dynamo.explain(getattr(model, name))(*args, **kwargs)
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
