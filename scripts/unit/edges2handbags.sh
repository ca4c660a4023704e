#!/usr/bin/env bash
# UNIT on edges2handbags (edges -> photos) at 256x256: the official configs/unit_edges2handbags_folder.yaml
# (mingyuliutw/UNIT master, scripts/unit_demo_train_edges2handbags.sh), written out as flags.
# Data: the pix2pix edges2handbags.tar.gz (https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/edges2handbags.tar.gz)
# extracted to ./datasets/edges2handbags/{train,val}/; each 512x256 image is an (edges | photo) pair,
# split into trainA/testA (edges) and trainB/testB (photos) on the first run.
# Extra arguments go to train.py (e.g. --gpu_ids 0, --share_layers 1 for the paper's weight sharing, --dry_run).
set -e
source "$(dirname "$0")/_common.sh"
DATA=./datasets/edges2handbags
NAME=unit_edges2handbags
split_edges_dataset "$DATA"
unit_experiment --image_display_iter 500 "$@"
