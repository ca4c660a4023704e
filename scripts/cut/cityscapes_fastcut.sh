#!/usr/bin/env bash
# CUT paper experiment: Cityscapes labels -> photos with FastCUT (--direction BtoA, evaluation on val).
# Data: see bash datasets/download_cut_dataset.sh cityscapes
# Test afterwards: python test.py --model cut --CUT_mode FastCUT --dataroot ./datasets/cityscapes --name cityscapes_fastcut --direction BtoA --phase val
set -e
python train.py --model cut --CUT_mode FastCUT --dataroot ./datasets/cityscapes --name cityscapes_fastcut --direction BtoA "$@"
