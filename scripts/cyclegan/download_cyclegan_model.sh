#!/usr/bin/env bash
# Official pretrained CycleGAN generators (one direction each), saved as checkpoints/<name>_pretrained/latest_net_G.pth.
set -e
NAMES="apple2orange orange2apple summer2winter_yosemite winter2summer_yosemite horse2zebra zebra2horse monet2photo style_monet style_cezanne style_ukiyoe style_vangogh sat2map map2sat cityscapes_photo2label cityscapes_label2photo facades_photo2label facades_label2photo iphone2dslr_flower"
NAME=${1:-}
if [ -z "$NAME" ] || ! echo " $NAMES " | grep -q " $NAME "; then
  echo "usage: $0 NAME, with NAME one of: $NAMES" >&2
  exit 2
fi
DIR=./checkpoints/${NAME}_pretrained
mkdir -p "$DIR"
URL=http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/$NAME.pth
echo "downloading $URL"
wget -N "$URL" -O "$DIR/latest_net_G.pth.part" && mv "$DIR/latest_net_G.pth.part" "$DIR/latest_net_G.pth"
