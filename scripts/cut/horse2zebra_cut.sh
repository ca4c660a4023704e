#!/usr/bin/env bash
# CUT paper experiment: horse2zebra with CUT (resnet_9blocks antialiased G, PatchGAN D, lsgan, lambda_GAN 1,
# lambda_NCE 1, identity NCE, 256 patches from layers 0,4,8,12,16, T 0.07, 200 + 200 epochs, batch 1).
# Data: bash datasets/download_cut_dataset.sh horse2zebra
# The paper reports the best FID over training: evaluate several epochs, not only the last.
# Test afterwards: python test.py --model cut --CUT_mode CUT --dataroot ./datasets/horse2zebra --name horse2zebra_cut --phase test
set -e
python train.py --model cut --CUT_mode CUT --dataroot ./datasets/horse2zebra --name horse2zebra_cut "$@"
