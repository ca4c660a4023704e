#!/usr/bin/env bash
# TUNIT: AFHQ cat at 256 px, K = 10 clusters inside the one species (released run afhq_cat_256).
# Data: StarGAN v2's afhq/{train,test}/{cat,dog,wild}, https://www.dropbox.com/s/t9l9o3vsx2jai3z/afhq.zip?dl=0
# Official command (clovaai/tunit README): python main.py --gpu 0 --dataset afhq_cat --output_k 10 --img_size 256 --data_path ../data --p_semi 0.0
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run); --dry_run and --gpu_ids also reach the evaluation.
set -e
DATA=./datasets/afhq
NAME=tunit_afhq_cat_256
python train.py --model tunit --dataroot "$DATA" --name "$NAME" \
    --phase train --tunit_classes cat --output_k 10 --load_size 256 --crop_size 256 --batch_size 32 --p_semi 0.0 "$@"

EVAL=()
prev=""
for arg in "$@"; do
    [[ "$arg" == "--dry_run" ]] && EVAL+=("--dry_run")
    [[ "$prev" == "--gpu_ids" ]] && EVAL+=("--gpu_ids" "$arg")
    prev="$arg"
done
# Cluster accuracy, NMI and cluster sizes on the held-out split; writes each cluster's average style.
python scripts/tunit/cluster_eval.py --dataroot "$DATA" --name "$NAME" \
    --phase test --tunit_classes cat --output_k 10 --load_size 256 --crop_size 256 \
    --save_styles "./checkpoints/$NAME/cluster_styles.pt" "${EVAL[@]}"
# Translate held-out images into every cluster's average style (the paper's figures).
python test.py --model tunit --dataroot "$DATA" --name "$NAME" --input_dir "$DATA/test/cat" --num_test 50 \
    --output_k 10 --load_size 256 --crop_size 256 --tunit_styles "./checkpoints/$NAME/cluster_styles.pt" "${EVAL[@]}"
