#!/usr/bin/env bash
# SRUNIT paper experiment: Google Maps, map -> aerial photo. The CycleGAN maps dataset keeps aerial photos in A
# and maps in B, hence --direction BtoA. SR settings as the README's defaults.
# Data: bash datasets/download_cut_dataset.sh maps
# Test afterwards: python test.py --model srunit --dataroot ./datasets/maps --name maps_srunit --direction BtoA --phase test
set -e
python train.py --model srunit --dataroot ./datasets/maps --name maps_srunit --direction BtoA \
    --n_epochs 200 --n_epochs_decay 200 --reg 0.001 --reg_noise 0.001 --inact_epochs 100 "$@"
