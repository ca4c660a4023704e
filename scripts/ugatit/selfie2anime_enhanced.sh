#!/usr/bin/env bash
# enhanced-U-GAT-IT (zheng-yuwei/enhanced-UGATIT) on selfie2anime with the settings of its README:
# --light 32 (pool the CAM features to 32x32 before the gamma/beta MLP), 384 px, scSE blocks, edge-blurred reals
# as extra fakes for D, EMA generators from half of training.
# The fork's README also removes D's CAM loss and attention ("--cam_D_weight -1 --cam_D_attention"); here that is
# --cam_D_weight -1 --no-cam_D_attention. Segmentation options need per-image masks: --mask_dir DIR (see docs/ugatit.md).
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run).
set -e
python train.py --model ugatit_enhanced --dataroot ./datasets/selfie2anime --name ugatit_enhanced_selfie2anime \
    --light 32 --img_size 384 --ch 64 --n_res 4 --iteration 1000000 --decay_flag True \
    --use_se --has_blur --ema_start 0.5 --ema_beta 0.9999 \
    --print_freq 1000 --display_freq 1000 --save_latest_freq 100000 "$@"
