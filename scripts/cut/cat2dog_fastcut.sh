#!/usr/bin/env bash
# CUT paper experiment: AFHQ cat -> dog with FastCUT.
# Data: bash datasets/download_cut_dataset.sh cat2dog
# Test afterwards: python test.py --model cut --CUT_mode FastCUT --dataroot ./datasets/afhq/cat2dog --name cat2dog_fastcut --phase test
set -e
python train.py --model cut --CUT_mode FastCUT --dataroot ./datasets/afhq/cat2dog --name cat2dog_fastcut "$@"
