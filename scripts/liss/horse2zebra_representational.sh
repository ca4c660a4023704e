#!/usr/bin/env bash
# LiSS paper experiment: horse2zebra, representational schedule.
# the four tasks until all pass their thresholds, then translation on the
# frozen encoders (--repr_mode flow / distillation for the ablations).
# Options from the authors' run script (the development repo of LiSS, where --model liss was 'continual'):
#   vict0rsch/continual-translation experiments/flow_freeze_distill/repr_h2z_ffd_freeze_mila.sh
# Data: bash datasets/download_cyclegan_dataset.sh horse2zebra
#       bash scripts/liss/prepare_depth.sh ./datasets/horse2zebra    (MegaDepth maps, depth task)
# --liss_legacy_optim reproduces torch_optimizer's RAdam of the official code, whose shared step-size cache
# ignores most task learning rates; drop it to have torch.optim.RAdam honour every --lr_<task>.
# Test: python test.py --model liss --dataroot ./datasets/horse2zebra \
#           --name horse2zebra_representational --liss_panels depth,gray
set -e
python train.py --model liss --dataroot ./datasets/horse2zebra --name horse2zebra_representational \
    --task_schedule representational --repr_mode freeze \
    --batch_size 5 --display_freq 2000 --init_type kaiming --lr 0.0005 --liss_legacy_optim \
    --rotation_acc_threshold 0.85 --jigsaw_acc_threshold 0.85 \
    --depth_loss_threshold 0.15 --gray_loss_threshold 0.3 \
    --n_epochs 200 --n_epochs_decay 100 "$@"
