#!/usr/bin/env bash
# CycleGAN paper experiment: summer2winter_yosemite (resnet_9blocks G, 70x70 PatchGAN D, lsgan, pool 50, 100 + 100 epochs,
# lambda 10, identity 0.5).
# Test afterwards: python test.py --model cycle_gan --dataroot ./datasets/summer2winter_yosemite --name summer2winter_yosemite_cyclegan --phase test --no_dropout
# Data: bash datasets/download_cyclegan_dataset.sh summer2winter_yosemite
set -e
python train.py --model cycle_gan --dataroot ./datasets/summer2winter_yosemite --name summer2winter_yosemite_cyclegan --pool_size 50 --no_dropout "$@"
