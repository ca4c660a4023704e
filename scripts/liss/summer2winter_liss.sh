#!/usr/bin/env bash
# LiSS paper experiment: summer2winter_yosemite, liss schedule.
# rotation, jigsaw, depth, gray, then translation, with distillation towards a reference
# encoder refreshed at each switch (moving average 0.5); SSGAN rotation heads in the discriminators.
# Options: the authors' run script for this schedule (scripts/liss/_common.sh names it).
# Data: bash datasets/download_cyclegan_dataset.sh summer2winter_yosemite
#       bash scripts/liss/prepare_depth.sh ./datasets/summer2winter_yosemite    (MegaDepth maps, depth task)
# Test: python test.py --model liss --dataroot ./datasets/summer2winter_yosemite \
#           --name summer2winter_liss --liss_panels depth,gray
set -e
source "$(dirname "$0")/_common.sh"
liss_experiment ./datasets/summer2winter_yosemite summer2winter_liss liss "$@"
