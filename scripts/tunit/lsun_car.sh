#!/usr/bin/env bash
# TUNIT: LSUN car, K = 10 unsupervised clusters at 128 px.
# Data: lsun_car/images/* (the official code reads lsun-car/: either works as --dataroot); the last 10000 files are held out.
# Official command (clovaai/tunit README): python main.py --gpu 0 --dataset lsun_car --output_k 10 --data_path ../data --p_semi 0.0
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run); --dry_run and --gpu_ids also reach the evaluation.
set -e
source "$(dirname "$0")/_common.sh"
DATA=./datasets/lsun_car NAME=tunit_lsun_car K=10 SIZE=128
SPLIT=(--tunit_holdout 10000) EVAL_PHASE=val INPUT_DIR="$DATA/images"
tunit_experiment --batch_size 32 --p_semi 0.0 "$@"
