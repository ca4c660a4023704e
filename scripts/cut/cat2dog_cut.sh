#!/usr/bin/env bash
# CUT paper experiment: AFHQ cat -> dog with CUT (defaults as horse2zebra_cut.sh).
# Data: bash datasets/download_cut_dataset.sh cat2dog  (AFHQ, arranged as datasets/afhq/cat2dog/{trainA,...})
# Test afterwards: python test.py --model cut --CUT_mode CUT --dataroot ./datasets/afhq/cat2dog --name cat2dog_cut --phase test
set -e
python train.py --model cut --CUT_mode CUT --dataroot ./datasets/afhq/cat2dog --name cat2dog_cut "$@"
