#!/usr/bin/env bash
# CUT paper experiment: horse2zebra with FastCUT (no identity NCE, lambda_NCE 10, flip equivariance,
# 150 + 50 epochs; otherwise as CUT).
# Data: bash datasets/download_cut_dataset.sh horse2zebra
# Test afterwards: python test.py --model cut --CUT_mode FastCUT --dataroot ./datasets/horse2zebra --name horse2zebra_fastcut --phase test
set -e
python train.py --model cut --CUT_mode FastCUT --dataroot ./datasets/horse2zebra --name horse2zebra_fastcut "$@"
