#!/usr/bin/env bash
# Translate with the authors' pretrained CUT/FastCUT generators (official latest_net_G.pth files are imported).
# Usage: bash scripts/cut/test_pretrained.sh [NAME] [extra test.py options] (or NAME=... in the environment),
#   NAME one of horse2zebra_cut horse2zebra_fastcut cat2dog_cut cat2dog_fastcut cityscapes_cut cityscapes_fastcut
# First: bash datasets/download_cut_dataset.sh pretrained  (and the dataset the model was trained on).
set -e
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  NAME=$1
  shift
fi
NAME=${NAME:-horse2zebra_cut}
case "$NAME" in
  horse2zebra_*) DATA=./datasets/horse2zebra; OPTS="--phase test" ;;
  cat2dog_*) DATA=./datasets/afhq/cat2dog; OPTS="--phase test" ;;
  cityscapes_*) DATA=./datasets/cityscapes; OPTS="--phase val --direction BtoA" ;;
  *) echo "usage: $0 {horse2zebra,cat2dog,cityscapes}_{cut,fastcut} [test.py options]" >&2; exit 2 ;;
esac
MODE=CUT
[[ "$NAME" == *_fastcut ]] && MODE=FastCUT
# shellcheck disable=SC2086
python test.py --model cut --CUT_mode "$MODE" --dataroot "$DATA" --name "${NAME}_pretrained" $OPTS "$@"
