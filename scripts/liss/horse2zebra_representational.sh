#!/usr/bin/env bash
# LiSS paper experiment: horse2zebra, representational schedule.
# the four tasks until all pass their thresholds, then translation on the
# frozen encoders (--repr_mode flow / distillation for the ablations).
# Options: the authors' run script for this schedule (scripts/liss/_common.sh names it).
# Data: bash datasets/download_cyclegan_dataset.sh horse2zebra
#       bash scripts/liss/prepare_depth.sh ./datasets/horse2zebra    (MegaDepth maps, depth task)
# Test: python test.py --model liss --dataroot ./datasets/horse2zebra \
#           --name horse2zebra_representational --liss_panels depth,gray
set -e
source "$(dirname "$0")/_common.sh"
liss_experiment ./datasets/horse2zebra horse2zebra_representational representational "$@"
