#!/usr/bin/env bash
# TUNIT: summer2winter, K = 2 at 256 px, batch 16; x_tf without colour jitter (the official two-domain transform).
# Data: summer2winter/{train,test}/{summer,winter} (the official run used two GPUs).
# Official command (clovaai/tunit README): python main.py --gpu 0,1 --dataset summer2winter --output_k 2 --data_path ../data --p_semi 0.0 --img_size 256 --batch_size 16 --ddp
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run); --dry_run and --gpu_ids also reach the evaluation.
set -e
source "$(dirname "$0")/_common.sh"
DATA=./datasets/summer2winter NAME=tunit_summer2winter K=2 SIZE=256
SPLIT=() EVAL_PHASE=test INPUT_DIR="$DATA/test/summer"
tunit_experiment --batch_size 16 --p_semi 0.0 --no-tunit_color_jitter "$@"
