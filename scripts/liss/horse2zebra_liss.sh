#!/usr/bin/env bash
# LiSS paper experiment: horse2zebra, liss schedule.
# rotation, jigsaw, depth, gray, then translation, with distillation towards a reference
# encoder refreshed at each switch (moving average 0.5); SSGAN rotation heads in the discriminators.
# Options from the authors' run script (the development repo of LiSS, where --model liss was 'continual'):
#   vict0rsch/continual-translation experiments/continual/cont_05_h2z_conti.sh
# Data: bash datasets/download_cyclegan_dataset.sh horse2zebra
#       bash scripts/liss/prepare_depth.sh ./datasets/horse2zebra    (MegaDepth maps, depth task)
# --liss_legacy_optim reproduces torch_optimizer's RAdam of the official code, whose shared step-size cache
# ignores most task learning rates; drop it to have torch.optim.RAdam honour every --lr_<task>.
# Test: python test.py --model liss --dataroot ./datasets/horse2zebra \
#           --name horse2zebra_liss --liss_panels depth,gray
set -e
python train.py --model liss --dataroot ./datasets/horse2zebra --name horse2zebra_liss \
    --task_schedule liss --encoder_merge_ratio 0.5 --D_rotation \
    --batch_size 5 --display_freq 2000 --init_type kaiming --lr 0.0005 \
    --lr_rotation 0.001 --lr_depth 0.001 --lr_gray 0.0005 --lr_jigsaw 0.001 --liss_legacy_optim \
    --rotation_acc_threshold 0.85 --jigsaw_acc_threshold 0.85 \
    --depth_loss_threshold 0.15 --gray_loss_threshold 0.3 \
    --n_epochs 200 --n_epochs_decay 100 "$@"
