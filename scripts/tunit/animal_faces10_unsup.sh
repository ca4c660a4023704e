#!/usr/bin/env bash
# TUNIT: AnimalFaces-10, fully unsupervised (K = 10, p_semi 0).
# Data: FUNIT's animal_faces extraction (one folder per ImageNet synset); the last 50 images per class are held out.
# Official command (clovaai/tunit README): python main.py --gpu 0 --dataset animal_faces --output_k 10 --data_path ../data --p_semi 0.0
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run); --dry_run and --gpu_ids also reach the evaluation.
set -e
DATA=./datasets/animal_faces
NAME=tunit_animal_faces10_unsup
python train.py --model tunit --dataroot "$DATA" --name "$NAME" \
    --tunit_classes animal_faces10 --tunit_holdout 50 --output_k 10 --load_size 128 --crop_size 128 --batch_size 32 --p_semi 0.0 "$@"

EVAL=()
prev=""
for arg in "$@"; do
    [[ "$arg" == "--dry_run" ]] && EVAL+=("--dry_run")
    [[ "$prev" == "--gpu_ids" ]] && EVAL+=("--gpu_ids" "$arg")
    prev="$arg"
done
# Cluster accuracy, NMI and cluster sizes on the held-out split; writes each cluster's average style.
python scripts/tunit/cluster_eval.py --dataroot "$DATA" --name "$NAME" \
    --tunit_classes animal_faces10 --tunit_holdout 50 --phase val --output_k 10 --load_size 128 --crop_size 128 --tunit_cluster_net C \
    --save_styles "./checkpoints/$NAME/cluster_styles.pt" "${EVAL[@]}"
# Translate held-out images into every cluster's average style (the paper's figures).
python test.py --model tunit --dataroot "$DATA" --name "$NAME" --input_dir "$DATA/n02088364" --num_test 50 \
    --output_k 10 --load_size 128 --crop_size 128 --tunit_styles "./checkpoints/$NAME/cluster_styles.pt" "${EVAL[@]}"
