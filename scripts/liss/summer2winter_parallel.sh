#!/usr/bin/env bash
# LiSS paper experiment: summer2winter_yosemite, parallel schedule.
# the four tasks and translation from the start.
# Options from the authors' run script (the development repo of LiSS, where --model liss was 'continual'):
#   vict0rsch/continual-translation experiments/continual/no-rot_D/par_h2z_conti.sh
#   (the authors' scripts cover horse2zebra only; the same settings are used here)
# Data: bash datasets/download_cyclegan_dataset.sh summer2winter_yosemite
#       bash scripts/liss/prepare_depth.sh ./datasets/summer2winter_yosemite    (MegaDepth maps, depth task)
# --liss_legacy_optim reproduces torch_optimizer's RAdam of the official code, whose shared step-size cache
# ignores most task learning rates; drop it to have torch.optim.RAdam honour every --lr_<task>.
# Test: python test.py --model liss --dataroot ./datasets/summer2winter_yosemite \
#           --name summer2winter_parallel --liss_panels depth,gray
set -e
python train.py --model liss --dataroot ./datasets/summer2winter_yosemite --name summer2winter_parallel \
    --task_schedule parallel --batch_size 3 --display_freq 2000 --lr 0.0005 --liss_legacy_optim \
    --rotation_acc_threshold 0.85 --jigsaw_acc_threshold 0.85 \
    --depth_loss_threshold 0.15 --gray_loss_threshold 0.3 \
    --n_epochs 200 --n_epochs_decay 100 "$@"
