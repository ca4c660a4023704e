#!/usr/bin/env bash
# CycleGAN paper experiment: facades (resnet_9blocks G, 70x70 PatchGAN D, lsgan, pool 50, 100 + 100 epochs,
# lambda 10, no identity loss as in the paper's label<->photo experiments).
# Test afterwards: python test.py --model cycle_gan --dataroot ./datasets/facades --name facades_cyclegan --phase test --no_dropout
# Data: bash datasets/download_cyclegan_dataset.sh facades
set -e
python train.py --model cycle_gan --dataroot ./datasets/facades --name facades_cyclegan --pool_size 50 --no_dropout --lambda_identity 0 "$@"
