#!/usr/bin/env bash
# U-GAT-IT on photo2vangogh, the light model of the official README (GAP before the MLP, 10.6M-parameter generators; fits an 11 GB GPU).
# Data: CycleGAN's vangogh2photo with the domains swapped (trainA = photos, trainB = Van Gogh), laid out as ./datasets/photo2vangogh/{trainA,trainB,testA,testB}.
# Official command: python main.py --dataset photo2vangogh --light True   (then --phase test)
# Paper settings = official defaults: 256 px, batch 1, Adam lr 1e-4 (betas 0.5, 0.999), weight decay 1e-4,
# 1,000,000 iterations with linear lr decay over the second half; weights adv 1, cycle 10, identity 10, CAM 1000.
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run). Test: python test.py --model ugatit
#   --dataroot ./datasets/photo2vangogh --name ugatit_photo2vangogh_light --light True --img_size 256 [--save_panels]
set -e
python train.py --model ugatit --dataroot ./datasets/photo2vangogh --name ugatit_photo2vangogh_light \
    --light True --img_size 256 --ch 64 --n_res 4 --iteration 1000000 --decay_flag True \
    --adv_weight 1 --cycle_weight 10 --identity_weight 10 --cam_weight 1000 \
    --print_freq 1000 --display_freq 1000 --save_latest_freq 100000 "$@"
