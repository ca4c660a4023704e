"""Mixed precision: every model steps finitely under --amp bf16 / fp16 (CPU autocast), float32 is kept where
precision matters (unit vectors, PatchNCE logits, BCE, spectral-norm power iteration) and bf16 flows through
U-GAT-IT's ILN / AdaILN and fused spectral norm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_models import CASES, build, train_step
from torch.utils._python_dispatch import TorchDispatchMode

from models.losses.patchnce import patch_nce_loss
from models.losses.unit import dis_loss, gen_adv_loss
from models.networks.adaptive_norms import ILN, AdaILN
from models.networks.heads import l2_normalize
from models.networks.ugatit import Discriminator
from util.runtime import Runtime

BF16 = torch.autocast("cpu", dtype=torch.bfloat16)
#: Left to ``-m slow`` to keep the default run short: LiSS's 96 px fp16 steps (CPU fp16 kernels are slow,
#: ~12 s on one core), U-GAT-IT full (light has the same layers but the MLP's input), and fp16 runs whose
#: layers another fp16 case already covers (CycleGAN/FastCUT/UNIT-lsgan by CUT/SRUNIT/UNIT-nsgan).
SLOW = {("liss", "fp16"), ("ugatit_full", "bf16"), ("ugatit_full", "fp16"), ("ugatit_enhanced", "fp16"),
        ("cycle_gan", "fp16"), ("fastcut", "fp16"), ("unit", "fp16")}  # fmt: skip


@pytest.mark.parametrize(
    "case,amp",
    [
        pytest.param(c, a, marks=[pytest.mark.slow] if (c, a) in SLOW else [])
        for a in ("bf16", "fp16")
        for c in CASES
    ],
)
def test_amp_steps_are_finite(case, amp, tmp_path_factory):
    model, batch = build(case, str(tmp_path_factory.getbasetemp()), "--amp", amp, "--no-fast_cpu_convs")
    model.runtime = Runtime("cpu", amp)  # what the trainer installs
    for step in range(2):
        train_step(model, batch, step)
        bad = [k for k, v in model.get_current_losses().items() if not torch.isfinite(v).all()]
        assert not bad, f"step {step}: non-finite {bad}"


def test_l2_normalize_keeps_unit_norm_for_small_fp16_features():
    """fp16 squares of ~1e-4 features underflow: the norm came out 0 and the rows huge (CUT NaN at step 1)."""
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(0)) * 1e-4
    for mode in ("cut", "srunit"):
        out = l2_normalize(x.half(), mode)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out.norm(dim=1), torch.ones(8), rtol=1e-3, atol=1e-3)


def test_patchnce_runs_in_fp32_under_autocast():
    g = torch.Generator().manual_seed(1)
    q, k = (l2_normalize(torch.randn(32, 16, generator=g)).bfloat16() for _ in range(2))
    with BF16:
        loss = patch_nce_loss(q, k, batch_size=2)
    assert loss.dtype == torch.float32
    assert torch.equal(loss, patch_nce_loss(q.float(), k.float(), batch_size=2))


class _BCEWatch(TorchDispatchMode):
    """Records whether autocast was on at each binary_cross_entropy (CUDA autocast refuses that op)."""

    def __init__(self):
        super().__init__()
        self.autocast_states = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket is torch.ops.aten.binary_cross_entropy:
            self.autocast_states.append(torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda"))
        return func(*args, **(kwargs or {}))


def test_unit_nsgan_bce_is_the_official_value_outside_autocast():
    g = torch.Generator().manual_seed(2)
    fake = [torch.randn(1, 1, 4, 4, generator=g) * 30 for _ in range(2)]  # some saturate: BCE's -100 clamp
    real = [torch.randn(1, 1, 4, 4, generator=g) * 30 for _ in range(2)]

    def official_d(f, r):
        bce = F.binary_cross_entropy
        return sum(torch.mean(bce(torch.sigmoid(a), torch.zeros_like(a)) + bce(torch.sigmoid(b), torch.ones_like(b)))
                   for a, b in zip(f, r))  # fmt: skip

    official_g = sum(torch.mean(F.binary_cross_entropy(torch.sigmoid(a), torch.ones_like(a))) for a in fake)
    assert torch.equal(dis_loss(fake, real, "nsgan"), official_d(fake, real))
    assert torch.equal(gen_adv_loss(fake, "nsgan"), official_g)
    low = [t.bfloat16() for t in fake], [t.bfloat16() for t in real]
    with _BCEWatch() as watch, BF16:
        d_loss, g_loss = dis_loss(*low, "nsgan"), gen_adv_loss(low[0], "nsgan")
    assert watch.autocast_states and not any(watch.autocast_states)
    assert d_loss.dtype == g_loss.dtype == torch.float32
    assert torch.equal(d_loss, official_d([t.float() for t in low[0]], [t.float() for t in low[1]]))


@pytest.mark.parametrize("fused", [False, True])
def test_iln_and_adailn_return_bf16_with_fp32_statistics(fused):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 8, 6, 6, generator=g) * 5 + 3
    gamma, beta = torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g)
    ada, iln = AdaILN(8, fused=fused), ILN(8, fused=fused)
    with torch.no_grad():
        iln.rho.fill_(0.3)
    for run in (lambda t: ada(t, gamma, beta), iln):
        out = run(x.bfloat16())
        assert out.dtype == torch.bfloat16
        # Statistics in fp32 of the bf16 input: only the output's bf16 rounding differs.
        torch.testing.assert_close(out.float(), run(x.bfloat16().float()), rtol=1e-2, atol=1e-2)
        assert run(x).dtype == torch.float32


def test_fused_spectral_norm_flows_bf16_and_iterates_in_fp32():
    torch.manual_seed(4)
    d = Discriminator(input_nc=3, ndf=4, n_layers=5, fused_sn=True)
    twin = Discriminator(input_nc=3, ndf=4, n_layers=5, fused_sn=True)
    twin.load_state_dict(d.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with BF16:
        logit, cam_logit, _ = d(x)
    twin(x)
    assert logit.dtype == cam_logit.dtype == torch.bfloat16
    for (name, buf), twin_buf in zip(d.named_buffers(), twin.buffers()):
        assert buf.dtype == torch.float32, name
        assert torch.equal(buf, twin_buf), name  # the power iteration ran in fp32 on the fp32 weights
