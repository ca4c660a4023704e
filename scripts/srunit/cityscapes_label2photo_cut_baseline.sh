#!/usr/bin/env bash
# The CUT baseline of the SRUNIT README table: the same run with the SR loss off (--reg 0 is plain CUT).
# Test afterwards: python test.py --model srunit --dataroot ./datasets/cityscapes_srunit --name cityscapes_label2photo_cut_baseline --preprocess none --phase val --output_path ./results/cityscapes_label2photo_cut_baseline/val_fake_B
set -e
python train.py --model srunit --dataroot ./datasets/cityscapes_srunit --name cityscapes_label2photo_cut_baseline \
    --preprocess crop --n_epochs 200 --n_epochs_decay 200 --reg 0 "$@"
