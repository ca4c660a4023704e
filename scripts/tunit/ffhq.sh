#!/usr/bin/env bash
# TUNIT: FFHQ, K = 10 unsupervised clusters at 128 px.
# Data: ffhq/images/* (one folder); the last 7000 files are held out as officially.
# Official command (clovaai/tunit README): python main.py --gpu 0 --dataset ffhq --output_k 10 --data_path ../data --p_semi 0.0
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run); --dry_run and --gpu_ids also reach the evaluation.
set -e
source "$(dirname "$0")/_common.sh"
DATA=./datasets/ffhq NAME=tunit_ffhq K=10 SIZE=128
SPLIT=(--tunit_holdout 7000) EVAL_PHASE=val INPUT_DIR="$DATA/images"
tunit_experiment --batch_size 32 --p_semi 0.0 "$@"
