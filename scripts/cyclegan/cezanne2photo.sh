#!/usr/bin/env bash
# CycleGAN paper experiment: cezanne2photo (resnet_9blocks G, 70x70 PatchGAN D, lsgan, pool 50, 100 + 100 epochs,
# lambda 10, identity 0.5).
# Test afterwards: python test.py --model cycle_gan --dataroot ./datasets/cezanne2photo --name cezanne2photo_cyclegan --phase test --no_dropout
# Data: bash datasets/download_cyclegan_dataset.sh cezanne2photo
set -e
python train.py --model cycle_gan --dataroot ./datasets/cezanne2photo --name cezanne2photo_cyclegan --pool_size 50 --no_dropout "$@"
