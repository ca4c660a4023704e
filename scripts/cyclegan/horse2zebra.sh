#!/usr/bin/env bash
# CycleGAN paper experiment: horse2zebra (resnet_9blocks G, 70x70 PatchGAN D, lsgan, pool 50, 100 + 100 epochs,
# lambda 10, identity 0.5).
# Test afterwards: python test.py --model cycle_gan --dataroot ./datasets/horse2zebra --name horse2zebra_cyclegan --phase test --no_dropout
# Data: bash datasets/download_cyclegan_dataset.sh horse2zebra
set -e
python train.py --model cycle_gan --dataroot ./datasets/horse2zebra --name horse2zebra_cyclegan --pool_size 50 --no_dropout "$@"
