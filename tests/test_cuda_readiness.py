"""No host-device synchronisation and no host-to-device copy inside any model's training step.

A CPU run cannot time a GPU stall, but ``util.host_sync.HostSyncCounter`` sees what would cause one (see its
docstring). Every configuration of ``tests/tiny_models.py`` runs one warm-up step, then one counted step.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_models import CASES, build, parse, train_step

import models
from models.losses.ugatit import ellipse_kernel, erode_mask
from models.networks.heads import sample_patch_ids
from util.host_sync import HostSyncCounter

#: Known, deliberate synchronisations per case, with the reason (docs/gpu.md lists them).
ALLOWED = {
    # --liss_reuse_encodings checks on the batch that the unrotated view is the image and the gray image is one
    # luma channel repeated (torch.equal, 2 per domain) before skipping an encoder pass; --no-liss_reuse_encodings
    # has none.
    "liss": {"aten.equal.default"},
}


def counted_step(model, batch) -> HostSyncCounter:
    train_step(model, batch, 0)  # lazy state (queues, optimiser moments) is made on the first step
    with HostSyncCounter.for_model(model, batch) as counter:
        train_step(model, batch, 1)
    return counter


def test_counter_sees_each_kind_of_synchronisation():
    x = torch.randn(6, requires_grad=True)
    constant = torch.ones(3)  # a module-level constant: not the model's, not made in the step
    with HostSyncCounter([x]) as c:
        float(x.sum())
        _ = x[x > 0]
        torch.nonzero(x)
        torch.randperm(4).to(x.device)
        constant.to(x)
        torch.tensor([1.0, 2.0], device=x.device)
        x.new_tensor([4])
        x.detach().cpu()
    assert set(c.counts) == {
        "aten._local_scalar_dense.default",
        "aten.index.Tensor",
        "aten.nonzero.default",
        "torch.randperm without device=",
        "host tensor .to(device)",
        "torch.tensor(host data, device=)",
        "Tensor.new_tensor(host data)",
        "Tensor.cpu",
    }, c.report()


def test_counter_accepts_device_work_host_coins_and_optimiser_internals():
    w = torch.nn.Parameter(torch.randn(4))
    opt = torch.optim.Adam([w])
    with HostSyncCounter([w]) as c:
        y = torch.where(w > 0, w, 0.0) + torch.randperm(4, device=w.device)
        if bool(torch.rand((), device="cpu") < 2):  # a deliberate host draw
            y = y * torch.ones((), device=w.device)
        y.sum().backward()
        opt.step()  # Adam reads its host-side step counter
    assert c.total == 0, c.report()


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=[pytest.mark.slow] if c == "ugatit_full" else []) for c in CASES]
)  # U-GAT-IT full has light's layers but the MLP's input: -m slow
def test_training_step_has_no_host_sync(case, tmp_path_factory):
    extra = ["--D_rotation"] if case == "liss" else []  # covers the rotation-order draw too
    model, batch = build(case, str(tmp_path_factory.getbasetemp()), "--no-fast_cpu_convs", *extra)
    counter = counted_step(model, batch)
    unexpected = set(counter.counts) - ALLOWED.get(case, set())
    assert not unexpected, counter.report()


def test_enhanced_ugatit_mask_options_have_no_host_sync(tmp_path_factory):
    flags = ["--has_blur", "--tv_loss", "--seg_fix_weight", "5", "--seg_D_mask", "--seg_G_detach",
             "--seg_D_cam_fea_mask", "--seg_D_cam_inp_mask", "--attention_gan", "2", "--mask_dir", "unused"]  # fmt: skip
    model = models.create_model(
        parse("ugatit_enhanced", str(tmp_path_factory.getbasetemp()), *flags, "--no-fast_cpu_convs")
    )
    model.setup()
    batch = {"A": torch.rand(1, 3, 96, 96) * 2 - 1, "B": torch.rand(1, 3, 96, 96) * 2 - 1}
    mask = torch.zeros_like(batch["A"][:, :1])
    mask[..., 20:70, 25:75] = 1
    batch = {**batch, "A_mask": mask, "B_mask": mask.flip(-1)}
    counter = counted_step(model, batch)
    assert counter.total == 0, counter.report()


def test_mask_morphology_equals_the_boolean_index_form():
    """erode_mask replaced a boolean index by neutral fills: same values."""

    def morph(mask, kernel, dilate):  # the previous form
        k, fill = kernel.shape[-1], float("-inf") if dilate else float("inf")
        patches = F.unfold(F.pad(mask, (k // 2,) * 4, value=fill), k)[:, kernel.flatten() > 0]
        return (patches.amax(1) if dilate else patches.amin(1)).view_as(mask)

    mask = (torch.rand(2, 1, 24, 24, generator=torch.Generator().manual_seed(0)) > 0.4).float()
    kernel = ellipse_kernel(5)
    expected = morph(morph(morph(mask, kernel, True), kernel, False), kernel, False)
    assert torch.equal(erode_mask(mask), expected)


def test_patch_ids_drawn_on_the_device_keep_cpu_runs_identical():
    torch.manual_seed(3)
    ids = sample_patch_ids(100, 10, None, torch.device("cpu"))
    torch.manual_seed(3)
    assert torch.equal(ids, torch.randperm(100)[:10])  # what the CPU-then-copy form drew
    g = torch.Generator().manual_seed(5)
    assert torch.equal(
        sample_patch_ids(100, 10, g, "cpu"), torch.randperm(100, generator=g.manual_seed(5))[:10]
    )


def _convs(model):
    return [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def test_compile_compiles_each_network_in_place_without_the_cpu_fast_path(tmp_path_factory, capsys):
    from models.networks.fast_conv import FastCPUConv2d

    root = str(tmp_path_factory.getbasetemp())
    plain = models.create_model(parse("cycle_gan", root))
    assert any(isinstance(m, FastCPUConv2d) for m in plain.modules())  # the default swaps them in
    model = models.create_model(parse("cycle_gan", root, "--compile"))
    assert "--compile: the CPU fast convolutions are off" in capsys.readouterr().out
    assert not any(isinstance(m, FastCPUConv2d) for m in model.modules())
    for name, net in model.networks().items():
        assert net._compiled_call_impl is not None, name
        assert list(net.state_dict()) == list(getattr(plain, name).state_dict()), (
            name
        )  # checkpoints unchanged
    cut = models.create_model(parse("cut", root, "--compile"))
    encode = cut.netG.encode  # CUT trains G through encode: compiled too, bound to this network
    assert encode.__self__ is cut.netG and encode.__func__ is not type(cut.netG).encode


def test_channels_last_converts_the_networks_and_computes_the_same_step(tmp_path_factory):
    root = str(tmp_path_factory.getbasetemp())
    base, batch = build("cut", root, "--no-fast_cpu_convs")
    fast, _ = build("cut", root, "--channels_last")
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in _convs(fast))
    assert not any(type(c).__name__ == "FastCPUConv2d" for c in _convs(fast))
    for model in (base, fast):
        torch.manual_seed(1)  # the same patch draws
        train_step(model, batch, 0)
    for key, value in base.get_current_losses().items():
        torch.testing.assert_close(fast.get_current_losses()[key], value, rtol=1e-4, atol=1e-5)


def test_tf32_is_off_unless_asked(tmp_path_factory):
    root = str(tmp_path_factory.getbasetemp())
    try:
        models.create_model(parse("cut", root, "--tf32"))
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        models.create_model(parse("cut", root))
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False


@pytest.mark.slow
def test_compiled_training_step_runs(tmp_path_factory):
    """A real torch.compile (inductor) step: ~2-3 minutes of compilation on one CPU core."""
    model, batch = build("cycle_gan", str(tmp_path_factory.getbasetemp()), "--compile")
    for step in range(2):
        train_step(model, batch, step)
    assert all(torch.isfinite(v) for v in model.get_current_losses().values())


@pytest.mark.slow
@pytest.mark.parametrize("case", ["cut", "unit", "tunit_gan"])
def test_compiled_methods_give_the_eager_step(case, tmp_path_factory, monkeypatch):
    """--compile's graphs (dynamo with its eager backend: the capture, not inductor's code generation) give
    the same losses as the eager step, ``compile_methods`` included (CUT's encode, UNIT's encode/decode,
    TUNIT's decode, cnt_encoder and trunk)."""
    import functools

    compile_fn, module_compile = torch.compile, torch.nn.Module.compile
    monkeypatch.setattr(torch, "compile", functools.partial(compile_fn, backend="eager"))
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self: module_compile(self, backend="eager"))
    losses = []
    for flag in ("--no-fast_cpu_convs", "--compile"):
        model, batch = build(case, str(tmp_path_factory.getbasetemp()), flag)
        torch.manual_seed(5)
        for step in range(2):
            train_step(model, batch, step)
        losses.append(model.get_current_losses())
    for key, value in losses[0].items():
        torch.testing.assert_close(losses[1][key], value, rtol=1e-5, atol=1e-6)
