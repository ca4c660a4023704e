#!/usr/bin/env bash
# SRUNIT paper experiment: GTA5 frames (trainA) -> Cityscapes photos (trainB). Wide frames are resized to
# (load_size/2) x load_size before the 256 x 256 crop, the CUT/SRUNIT repos' rule for 'gta2cityscapes'
# dataroots, here the explicit --resize_half_height; load_size 512 is this script's choice (the official rule
# needs load_size >= 2 * crop_size to crop at all). SR settings as the README's defaults.
# Data: GTA5 from https://download.visinf.tu-darmstadt.de/data/from_games/ and Cityscapes leftImg8bit,
# arranged as datasets/gta2cityscapes/{trainA,trainB,valA,valB}.
# Test afterwards: python test.py --model srunit --dataroot ./datasets/gta2cityscapes --name gta2cityscapes_srunit --preprocess none --phase val --output_path ./results/gta2cityscapes_srunit/val_fake_B
set -e
python train.py --model srunit --dataroot ./datasets/gta2cityscapes --name gta2cityscapes_srunit \
    --resize_half_height --load_size 512 --crop_size 256 --n_epochs 200 --n_epochs_decay 200 \
    --reg 0.001 --reg_noise 0.001 --inact_epochs 100 "$@"
