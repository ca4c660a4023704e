#!/usr/bin/env bash
# TUNIT: AnimalFaces-10, fully unsupervised (K = 10, p_semi 0).
# Data: FUNIT's animal_faces extraction (one folder per ImageNet synset); the last 50 images per class are held out.
# Official command (clovaai/tunit README): python main.py --gpu 0 --dataset animal_faces --output_k 10 --data_path ../data --p_semi 0.0
# Extra arguments go to train.py (e.g. --gpu_ids 0, --dry_run); --dry_run and --gpu_ids also reach the evaluation.
set -e
source "$(dirname "$0")/_common.sh"
DATA=./datasets/animal_faces NAME=tunit_animal_faces10_unsup K=10 SIZE=128
SPLIT=(--tunit_classes animal_faces10 --tunit_holdout 50) EVAL_PHASE=val INPUT_DIR="$DATA/n02088364"
EVAL_OPTS=(--tunit_cluster_net C)
tunit_experiment --batch_size 32 --p_semi 0.0 "$@"
