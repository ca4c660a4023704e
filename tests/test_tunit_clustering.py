"""TUNIT's guiding network learns to cluster: a short unsupervised run beats chance by a wide margin."""

from __future__ import annotations

import torch

from options import TrainOptions
from util.metrics.cluster import cluster_accuracy
from util.trainer import Trainer

TINY_TUNIT = ["--output_k", "4", "--sty_dim", "16", "--tunit_g_nf", "8", "--tunit_g_nf_mlp", "32",
              "--tunit_c_widths", "4,M,8,M,16,16,M,32,32,M,32,32,M", "--tunit_d_nf", "8", "--tunit_d_max_nf", "32"]  # fmt: skip


def guiding_net_accuracy(trainer) -> float:
    dataset, net = trainer.dataset, trainer.model.netC
    items = [dataset[i] for i in range(len(dataset))]
    net.eval()
    with torch.no_grad():
        clusters = net(torch.stack([it["A"] for it in items]))["disc"].argmax(1)
    net.train()
    return cluster_accuracy(clusters.numpy(), [it["label"] for it in items])


def test_short_guiding_net_training_clusters_separable_classes(tmp_path):
    from datasets.make_synthetic import make_synthetic

    # Four classes that differ in shape and colour; 150 iterations stay in the C-only phase (IIC + MoCo).
    root = make_synthetic(str(tmp_path / "data"), layout="class_folder", size=32, n_train=24, n_test=4, seed=0,
                          n_classes=4)  # fmt: skip
    argv = ["--model", "tunit", "--dataroot", root, "--gpu_ids", "-1", "--crop_size", "32", "--load_size", "32",
            "--num_threads", "0", "--no_progress", "--display_id", "0", *TINY_TUNIT, "--batch_size", "16",
            "--max_steps", "150", "--lr", "1e-3", "--checkpoints_dir", str(tmp_path / "ck"), "--name", "cluster"]  # fmt: skip
    trainer = Trainer(TrainOptions().parse(argv, save=False))
    before = guiding_net_accuracy(trainer)
    trainer.fit()
    after = guiding_net_accuracy(trainer)
    assert before <= 0.3
    assert after >= 0.45, f"cluster accuracy {after:.2f} after training (chance 0.25)"
