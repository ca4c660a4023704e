"""Write one of our checkpoints in the official code base's file layout, for the official tools and scripts.

The inverse of each model's ``import_official``: our network attributes keep the official module names, so
each state_dict is written as it is, only arranged as the official code saves it.

========================  ======================================================================
model                     files written to the output folder
========================  ======================================================================
cycle_gan, liss           ``<label>_net_{G_A,G_B,D_A,D_B}.pth`` (bare state_dicts; LiSS's gray
                          discriminators are not saved officially either)
cut, srunit               ``<label>_net_{G,D,F}.pth``
ugatit, ugatit_enhanced   ``<dataset>_params_<step, 7 digits>.pt``: one dict {genA2B, genB2A, disGA,
                          disGB, disLA, disLB (, the fork's genA2B_ema, genB2A_ema)}
unit                      ``gen_<step, 8 digits>.pt`` and ``dis_<...>.pt``: {'a': ..., 'b': ...}
tunit                     ``model_<epoch>.ckpt`` {epoch, C/C_EMA/D/G/G_EMA_state_dict} and a
                          ``checkpoint.txt`` naming it (what the official ``--load_model`` reads)
========================  ======================================================================

Optimiser states are not written (the official resume code expects its own parameter order), nor TUNIT's
Inception copy (official quirk K1).
"""

from __future__ import annotations

import os

import torch

from util.checkpoint import CheckpointError

#: per-network files: our attribute -> the label in ``<label>_net_<X>.pth``
PER_NETWORK_FILES = {
    "cycle_gan": {"netG_A": "G_A", "netG_B": "G_B", "netD_A": "D_A", "netD_B": "D_B"},
    "liss": {"netG_A": "G_A", "netG_B": "G_B", "netD_A": "D_A", "netD_B": "D_B"},
    "cut": {"netG": "G", "netD": "D", "netF": "F"},
    "srunit": {"netG": "G", "netD": "D", "netF": "F"},
}
TUNIT_KEYS = {"netC": "C", "netC_ema": "C_EMA", "netD": "D", "netG": "G", "netG_ema": "G_EMA"}
SUPPORTED = (*PER_NETWORK_FILES, "ugatit", "ugatit_enhanced", "unit", "tunit")


def completed_epoch(progress: dict) -> int:
    """Epochs a checkpoint has finished (it stores where to resume: the next epoch after a finished one)."""
    epoch = int(progress.get("epoch", 1))
    return epoch - 1 if progress.get("epoch_iter", 0) == 0 else epoch


def networks_of(ckpt: dict, names, source: str) -> dict[str, dict]:
    states = ckpt["networks"]
    missing = [n for n in names if n not in states]
    if missing:
        raise CheckpointError(
            f"{source}: no {', '.join(missing)} to export (it holds {', '.join(states)}); the official "
            "layout needs every network of a training checkpoint"
        )
    return {n: states[n] for n in names}


def save(obj, path: str) -> str:
    tmp = f"{path}.tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def export_official(ckpt: dict, out_dir: str, label: str, dataset: str = "", source: str = "") -> list[str]:
    """Write ``ckpt`` (one of our checkpoints) in its model's official layout; returns the files written.

    ``label``: the epoch label of the per-network files (``latest``, ``5``...); ``dataset``: U-GAT-IT's
    ``--dataset`` name in its file name.
    """
    model, progress = ckpt["model"], ckpt.get("progress", {})
    os.makedirs(out_dir, exist_ok=True)
    if model in PER_NETWORK_FILES:
        files = PER_NETWORK_FILES[model]
        states = networks_of(ckpt, files, source)
        return [save(states[n], os.path.join(out_dir, f"{label}_net_{files[n]}.pth")) for n in files]
    step = int(progress.get("global_step", 0))
    if model in ("ugatit", "ugatit_enhanced"):
        name = f"{dataset or 'dataset'}_params_{step:07d}.pt"
        return [save(dict(ckpt["networks"]), os.path.join(out_dir, name))]
    if model == "unit":
        states = networks_of(ckpt, ("gen_a", "gen_b", "dis_a", "dis_b"), source)
        return [
            save({"a": states[f"{kind}_a"], "b": states[f"{kind}_b"]}, os.path.join(out_dir, f"{kind}_{step:08d}.pt"))
            for kind in ("gen", "dis")
        ]
    if model == "tunit":
        states = networks_of(ckpt, TUNIT_KEYS, source)
        epoch = completed_epoch(progress)
        name = f"model_{epoch}.ckpt"
        payload = {"epoch": epoch, **{f"{TUNIT_KEYS[n]}_state_dict": s for n, s in states.items()}}
        path = save(payload, os.path.join(out_dir, name))
        with open(os.path.join(out_dir, "checkpoint.txt"), "a", encoding="utf-8") as f:
            f.write(name + "\n")  # the official loader reads the last line
        return [path, os.path.join(out_dir, "checkpoint.txt")]
    raise CheckpointError(
        f"{source}: --model {model} has no official checkpoint layout to export to "
        f"(supported: {', '.join(SUPPORTED)})"
    )
