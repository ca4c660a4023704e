#!/usr/bin/env bash
# UNIT on summer2winter_yosemite at 256x256: the official configs/unit_summer2winter_yosemite256_folder.yaml
# (mingyuliutw/UNIT master, scripts/unit_demo_train_summer2winter_yosemite256.sh), written out as flags.
# Data: bash datasets/download_cyclegan_dataset.sh summer2winter_yosemite
# Extra arguments go to train.py (e.g. --gpu_ids 0, --share_layers 1 for the paper's weight sharing, --dry_run).
set -e
source "$(dirname "$0")/_common.sh"
DATA=./datasets/summer2winter_yosemite
NAME=unit_summer2winter_yosemite256
unit_experiment --image_display_iter 100 "$@"
