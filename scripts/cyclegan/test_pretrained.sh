#!/usr/bin/env bash
# Translate with an official pretrained CycleGAN generator:
#   NAME=horse2zebra bash scripts/cyclegan/test_pretrained.sh [test.py options]
# Downloads checkpoints/<NAME>_pretrained/latest_net_G.pth (scripts/cyclegan/download_cyclegan_model.sh) when
# missing; the dataset must be in ./datasets/<dataset> (datasets/download_cyclegan_dataset.sh).
set -e
NAME=${NAME:-horse2zebra}
DATASET=${NAME%%_*}
case " $* " in
  *" --dry_run "*) ;;
  *) [ -f "./checkpoints/${NAME}_pretrained/latest_net_G.pth" ] || bash ./scripts/cyclegan/download_cyclegan_model.sh "$NAME" ;;
esac
python test.py --model test --dataroot "./datasets/${DATASET}/testA" --name "${NAME}_pretrained" --no_dropout "$@"
