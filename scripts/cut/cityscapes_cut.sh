#!/usr/bin/env bash
# CUT paper experiment: Cityscapes labels -> photos with CUT. The dataset keeps photos in A and label maps in B
# (datasets/prepare_cityscapes_dataset.py of the CUT repo), so the run uses --direction BtoA; evaluation on val.
# Data: Cityscapes is not redistributable; see bash datasets/download_cut_dataset.sh cityscapes
# Test afterwards: python test.py --model cut --CUT_mode CUT --dataroot ./datasets/cityscapes --name cityscapes_cut --direction BtoA --phase val
set -e
python train.py --model cut --CUT_mode CUT --dataroot ./datasets/cityscapes --name cityscapes_cut --direction BtoA "$@"
