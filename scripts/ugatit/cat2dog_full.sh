#!/usr/bin/env bash
# U-GAT-IT on cat2dog, the paper's model: full gamma/beta MLP, 279M-parameter generators at 256 px (about 32 GB of GPU memory, znxlwm/UGATIT-pytorch#10).
# Data: DRIT's cat2dog (HsinYingLee/DRIT, datasets/download_dataset.sh cat2dog), laid out as ./datasets/cat2dog/{trainA,trainB,testA,testB}.
# Official command: python main.py --dataset cat2dog --light False   (then --phase test)
# Paper settings = official defaults: 256 px, batch 1, Adam lr 1e-4 (betas 0.5, 0.999), weight decay 1e-4,
# 1,000,000 iterations with linear lr decay over the second half; weights adv 1, cycle 10, identity 10, CAM 1000.
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run). Test: python test.py --model ugatit
#   --dataroot ./datasets/cat2dog --name ugatit_cat2dog --light False --img_size 256 [--save_panels]
set -e
python train.py --model ugatit --dataroot ./datasets/cat2dog --name ugatit_cat2dog \
    --light False --img_size 256 --ch 64 --n_res 4 --iteration 1000000 --decay_flag True \
    --adv_weight 1 --cycle_weight 10 --identity_weight 10 --cam_weight 1000 \
    --print_freq 1000 --display_freq 1000 --save_latest_freq 100000 "$@"
