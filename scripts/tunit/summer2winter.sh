#!/usr/bin/env bash
# TUNIT: summer2winter, K = 2 at 256 px, batch 16; x_tf without colour jitter (the official two-domain transform).
# Data: summer2winter/{train,test}/{summer,winter} (the official run used two GPUs).
# Official command (clovaai/tunit README): python main.py --gpu 0,1 --dataset summer2winter --output_k 2 --data_path ../data --p_semi 0.0 --img_size 256 --batch_size 16 --ddp
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run); --dry_run and --gpu_ids also reach the evaluation.
set -e
DATA=./datasets/summer2winter
NAME=tunit_summer2winter
python train.py --model tunit --dataroot "$DATA" --name "$NAME" \
    --output_k 2 --load_size 256 --crop_size 256 --batch_size 16 --p_semi 0.0 --no-tunit_color_jitter "$@"

EVAL=()
prev=""
for arg in "$@"; do
    [[ "$arg" == "--dry_run" ]] && EVAL+=("--dry_run")
    [[ "$prev" == "--gpu_ids" ]] && EVAL+=("--gpu_ids" "$arg")
    prev="$arg"
done
# Cluster accuracy, NMI and cluster sizes on the held-out split; writes each cluster's average style.
python scripts/tunit/cluster_eval.py --dataroot "$DATA" --name "$NAME" \
    --phase test --output_k 2 --load_size 256 --crop_size 256 \
    --save_styles "./checkpoints/$NAME/cluster_styles.pt" "${EVAL[@]}"
# Translate held-out images into every cluster's average style (the paper's figures).
python test.py --model tunit --dataroot "$DATA" --name "$NAME" --input_dir "$DATA/test/summer" --num_test 50 \
    --output_k 2 --load_size 256 --crop_size 256 --tunit_styles "./checkpoints/$NAME/cluster_styles.pt" "${EVAL[@]}"
