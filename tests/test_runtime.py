"""The optimiser-step runtime in one process: fp16 corner cases, --grad_accum, device choice, data loader."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

import data
import util.distributed as distributed
from options import TrainOptions
from util.distributed import DistInfo, init_distributed, launch_info, select_device
from util.runtime import IterationGradScaler, Runtime, split_batch
from util.trainer import Trainer


def fp16_runtime() -> Runtime:
    """CPU autocast fp16 with a CPU GradScaler: reproduces the GradScaler failures a CUDA fp16 run would hit."""
    return Runtime("cpu", "fp16")


def test_an_optimiser_stepped_twice_in_one_iteration_under_fp16():
    runtime = fp16_runtime()
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    for target in (2.0, 3.0):  # TUNIT: C's own loss, then the G loss that also trains C
        opt.zero_grad()
        with runtime.autocast():
            loss = ((w - target) ** 2).sum()
        runtime.backward(loss)
        assert runtime.step(opt)
    runtime.end_iteration()
    # Both steps applied, each with the unscaled gradient: 1 -> 1.2 -> 1.2 - 0.1 * 2 * (1.2 - 3) = 1.56
    assert torch.allclose(w.detach(), torch.full((3,), 1.56), atol=1e-3)


def test_an_inf_in_a_repeated_step_still_lowers_the_scale():
    scaler = IterationGradScaler("cpu", init_scale=1024.0)
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1)
    scaler.scale(torch.ones(())).item()  # creates the scale, as the first backward does
    w.grad = torch.ones(2)
    scaler.step(opt)
    w.grad = torch.tensor([float("inf"), 1.0])
    scaler.step(opt)  # skipped: inf
    scaler.update()
    assert scaler.get_scale() == 512.0
    assert torch.allclose(w.detach(), torch.full((2,), 1.0 - 0.1 / 1024))


def test_an_optimiser_without_gradients_is_skipped_under_fp16():
    runtime = fp16_runtime()
    used, unused = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt_used, opt_unused = torch.optim.Adam([used]), torch.optim.Adam([unused])
    with runtime.autocast():
        loss = (used * 2).sum()
    runtime.backward(loss)
    assert runtime.step(opt_used)
    assert not runtime.step(opt_unused)  # PyTorch's scaler: "No inf checks were recorded for this optimizer"
    runtime.end_iteration()
    assert torch.equal(unused.detach(), torch.ones(2)) and not torch.equal(used.detach(), torch.ones(2))


@pytest.mark.parametrize("extra", [["--lambda_NCE", "0", "--nce_idt", "False"]])
def test_cut_fp16_step_with_an_idle_optimiser(train_args, extra):
    """CUT with --lambda_NCE 0 gives F no gradient: the fp16 step must go on without it."""
    opt = TrainOptions().parse(train_args("--amp", "fp16", *extra, model="cut"), save=False)
    trainer = Trainer(opt)
    trainer.train_step(next(iter(trainer.loader)))
    trainer.train_step(next(iter(trainer.loader)))
    assert trainer.global_step == 2


def gradients_of_one_step(args: list[str]) -> dict[str, torch.Tensor]:
    """Every optimiser's gradients as its step sees them (Adam's first step is nearly sign(g): compare g)."""
    trainer = Trainer(TrainOptions().parse(args, save=False))
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    seen: dict[str, torch.Tensor] = {}

    def record(optimizer, *_):
        for group in optimizer.param_groups:
            seen.update({names[id(p)]: p.grad.clone() for p in group["params"] if p.grad is not None})

    for optimizer in trainer.model.optimizers.values():
        optimizer.register_step_pre_hook(record)
    trainer.train_step(next(iter(trainer.loader)))
    return seen


def test_grad_accum_2_equals_batch_2(train_args):
    """Batch 1 x 2 micro-batches = batch 2, for a model without batch statistics (instance norm, no pool).

    Float rounding alone moves single weights of these tiny instance-normalised generators by up to ~1 %
    (measured: another convolution backend, same batch), so the whole gradient vector is compared, against
    the gradient of half the batch as the scale a wrong accumulation would show.
    """
    common = ["--norm", "instance", "--pool_size", "0", "--serial_batches", "--no_flip"]
    whole = gradients_of_one_step(train_args(*common, "--batch_size", "2"))
    accum = gradients_of_one_step(train_args(*common, "--batch_size", "1", "--grad_accum", "2"))
    half = gradients_of_one_step(train_args(*common, "--batch_size", "1"))
    assert whole.keys() == accum.keys() == half.keys()

    def distance(other):
        return float(torch.cat([(whole[k] - other[k]).flatten() for k in whole]).norm())

    norm = float(torch.cat([g.flatten() for g in whole.values()]).norm())
    assert distance(half) > 0.1 * norm  # the scale: half the batch is another gradient
    assert distance(accum) < 0.01 * distance(half), (distance(accum), distance(half), norm)


def test_grad_accum_refused_where_it_would_not_equal_a_larger_batch(train_args, capsys):
    with pytest.raises(SystemExit):
        TrainOptions().parse(train_args("--grad_accum", "2", "--norm", "batch"), save=False)
    assert "--grad_accum 2 is not exact for --model cycle_gan: --norm batch" in capsys.readouterr().err


def test_split_batch_keeps_paths_and_weights_uneven_parts():
    batch = {"A": torch.arange(3).view(3, 1), "A_paths": ["a", "b", "c"], "flag": 7}
    parts = split_batch(batch, 2)
    assert [p["A_paths"] for p, _ in parts] == [["a", "b"], ["c"]]
    assert [w for _, w in parts] == pytest.approx([2 / 3, 1 / 3]) and parts[1][0]["flag"] == 7


# ---------------------------------------------------------------------------------------------- devices
@pytest.fixture
def fake_cuda(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    return chosen


@pytest.mark.parametrize("local_rank", [0, 1, 2, 3])
def test_torchrun_ranks_take_their_own_gpu(fake_cuda, monkeypatch, local_rank):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", str(local_rank))
    monkeypatch.setenv("LOCAL_RANK", str(local_rank))
    info = launch_info()
    assert select_device([0], info) == torch.device("cuda", local_rank)  # --gpu_ids defaults to 0
    assert fake_cuda == [local_rank]


def test_more_processes_than_gpus_is_one_clear_error(fake_cuda):
    with pytest.raises(ValueError, match="local rank 5 needs cuda:5, but only 4 GPUs"):
        select_device([0], DistInfo(rank=5, world_size=8, local_rank=5))


def test_process_group_gets_the_device_and_the_timeout(fake_cuda, monkeypatch):
    calls = []
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: calls.append(kw))
    monkeypatch.setattr(dist, "get_backend", lambda: "nccl")
    monkeypatch.setattr(dist, "new_group", lambda **kw: ("control", kw))
    init_distributed(DistInfo(1, 2, 1), torch.device("cuda", 1), timeout_s=42)
    assert calls[0]["backend"] == "nccl" and calls[0]["device_id"] == torch.device("cuda", 1)
    assert calls[0]["timeout"].total_seconds() == 42
    assert distributed._CONTROL["group"][1]["backend"] == "gloo"  # stop flags and barriers stay on the host
    distributed._CONTROL.update(group=None)


def test_several_gpu_ids_without_torchrun_tell_to_use_it(train_args, capsys, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    args = [a if a != "-1" else "0,1" for a in train_args()]
    with pytest.raises(SystemExit):
        TrainOptions().parse(args, save=False)
    assert "torchrun --nproc_per_node 2 train.py" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- data
def test_loader_pins_memory_for_cuda_and_keeps_workers(train_args):
    opt = TrainOptions().parse(train_args("--num_threads", "1"), save=False)
    dataset = data.create_dataset(opt)
    cpu = data.create_dataloader(dataset, opt, shuffle=True, batch_size=1)
    cuda = data.create_dataloader(dataset, opt, shuffle=True, batch_size=1, device=torch.device("cuda", 0))
    assert not cpu.pin_memory and cuda.pin_memory and cpu.persistent_workers
    opt0 = TrainOptions().parse(train_args(), save=False)  # --num_threads 0: no workers to keep
    assert not data.create_dataloader(dataset, opt0, shuffle=True, batch_size=1).persistent_workers


def test_persistent_workers_see_each_new_epoch(train_args):
    """Kept workers give, epoch after epoch, the items the main process would (random crops change per epoch)."""
    args = ["--serial_batches", "--load_size", "40"]
    loaders = []
    for threads in ("1", "0"):
        opt = TrainOptions().parse(train_args(*args, "--num_threads", threads), save=False)
        loaders.append(data.create_dataloader(data.create_dataset(opt), opt, shuffle=False, batch_size=2))
    assert loaders[0].persistent_workers
    for epoch in (1, 2, 3):
        kept, plain = (next(iter(_epoch(loader, epoch)))["A"] for loader in loaders)
        assert torch.equal(kept, plain), epoch


def _epoch(loader, epoch):
    data.set_epoch(loader, epoch)
    return loader
