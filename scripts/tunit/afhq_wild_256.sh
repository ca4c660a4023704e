#!/usr/bin/env bash
# TUNIT: AFHQ wild at 256 px, K = 10 clusters inside the one species (released run afhq_wild_256).
# Data: StarGAN v2's afhq/{train,test}/{cat,dog,wild}, https://www.dropbox.com/s/t9l9o3vsx2jai3z/afhq.zip?dl=0
# Official command (clovaai/tunit README): python main.py --gpu 0 --dataset afhq_wild --output_k 10 --img_size 256 --data_path ../data --p_semi 0.0
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run); --dry_run and --gpu_ids also reach the evaluation.
set -e
source "$(dirname "$0")/_common.sh"
DATA=./datasets/afhq NAME=tunit_afhq_wild_256 K=10 SIZE=256
SPLIT=(--tunit_classes wild) EVAL_PHASE=test INPUT_DIR="$DATA/test/wild"
tunit_experiment --phase train --batch_size 32 --p_semi 0.0 "$@"
