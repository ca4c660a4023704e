#!/usr/bin/env bash
# TUNIT: LSUN car, K = 10 unsupervised clusters at 128 px.
# Data: lsun_car/images/* (the official code reads lsun-car/: either works as --dataroot); the last 10000 files are held out.
# Official command (clovaai/tunit README): python main.py --gpu 0 --dataset lsun_car --output_k 10 --data_path ../data --p_semi 0.0
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run); --dry_run and --gpu_ids also reach the evaluation.
set -e
DATA=./datasets/lsun_car
NAME=tunit_lsun_car
python train.py --model tunit --dataroot "$DATA" --name "$NAME" \
    --tunit_holdout 10000 --output_k 10 --load_size 128 --crop_size 128 --batch_size 32 --p_semi 0.0 "$@"

EVAL=()
prev=""
for arg in "$@"; do
    [[ "$arg" == "--dry_run" ]] && EVAL+=("--dry_run")
    [[ "$prev" == "--gpu_ids" ]] && EVAL+=("--gpu_ids" "$arg")
    prev="$arg"
done
# Cluster accuracy, NMI and cluster sizes on the held-out split; writes each cluster's average style.
python scripts/tunit/cluster_eval.py --dataroot "$DATA" --name "$NAME" \
    --tunit_holdout 10000 --phase val --output_k 10 --load_size 128 --crop_size 128 \
    --save_styles "./checkpoints/$NAME/cluster_styles.pt" "${EVAL[@]}"
# Translate held-out images into every cluster's average style (the paper's figures).
python test.py --model tunit --dataroot "$DATA" --name "$NAME" --input_dir "$DATA/images" --num_test 50 \
    --output_k 10 --load_size 128 --crop_size 128 --tunit_styles "./checkpoints/$NAME/cluster_styles.pt" "${EVAL[@]}"
