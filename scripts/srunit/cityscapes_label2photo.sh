#!/usr/bin/env bash
# SRUNIT paper/README experiment: Cityscapes label maps -> photos with unmatched semantics statistics. Source
# (trainA: label maps) and target (trainB: photos) are the K-means-split subsets listed in the SRUNIT repo's
# examples/src_domain_paths.txt and examples/tar_domain_paths.txt; valA/valB hold the validation images.
# Options of the README command: crop preprocessing, 200 + 200 epochs, SR loss on all five NCE layers,
# reg 0.001, reg_noise 0.001, SR loss off for the first 100 epochs (--init_epochs is accepted as in the README).
# Official quirks: add --sr_noise_mode fixed --inact_freeze_G to train exactly like the official code.
# Test afterwards (README): python test.py --model srunit --dataroot ./datasets/cityscapes_srunit --name cityscapes_label2photo_srunit --epoch latest --preprocess none --phase val --output_path ./results/cityscapes_label2photo_srunit/val_fake_B
set -e
python train.py --model srunit --dataroot ./datasets/cityscapes_srunit --name cityscapes_label2photo_srunit \
    --preprocess crop --n_epochs 200 --n_epochs_decay 200 --reg_layers 0,1,2,3,4 --reg_noise 0.001 --reg 0.001 \
    --inact_epochs 100 "$@"
