#!/usr/bin/env bash
# Datasets and pretrained models of the CUT paper (taesungp/contrastive-unpaired-translation), official URLs.
# Usage (from the repository root): bash datasets/download_cut_dataset.sh NAME
#   CycleGAN datasets (horse2zebra, maps, ...)  -> handed to datasets/download_cyclegan_dataset.sh
#   grumpifycat      -> ./datasets/grumpifycat (the CUT repo's extra dataset)
#   cat2dog          -> AFHQ (StarGAN v2 release), arranged as ./datasets/afhq/cat2dog/{trainA,trainB,testA,testB}
#   cityscapes_val   -> the authors' resized Cityscapes val set for evaluating the pretrained models
#   pretrained       -> ./checkpoints/{horse2zebra,cat2dog,cityscapes}_{cut,fastcut}_pretrained/latest_net_G.pth
#   cityscapes       -> not redistributable: instructions only
set -euo pipefail

NAME="${1:-}"
fetch() {  # URL FILE: download to FILE, never leaving a partial file under that name
    if command -v wget >/dev/null 2>&1; then wget "$1" -O "$2.part"; else curl -L --fail "$1" -o "$2.part"; fi
    mv "$2.part" "$2"
}

case "$NAME" in
grumpifycat)
    mkdir -p ./datasets
    fetch "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/grumpifycat.zip" ./datasets/grumpifycat.zip
    unzip -q -o ./datasets/grumpifycat.zip -d ./datasets/ && rm ./datasets/grumpifycat.zip
    ;;
cat2dog)
    mkdir -p ./datasets
    fetch "https://www.dropbox.com/s/t9l9o3vsx2jai3z/afhq.zip?dl=0" ./datasets/afhq.zip
    unzip -q -o ./datasets/afhq.zip -d ./datasets/ && rm ./datasets/afhq.zip
    mkdir -p ./datasets/afhq/cat2dog
    # The CUT runs read datasets/afhq/cat2dog: cats are domain A, dogs domain B; AFHQ's val split is the test set.
    ln -sfn ../train/cat ./datasets/afhq/cat2dog/trainA
    ln -sfn ../train/dog ./datasets/afhq/cat2dog/trainB
    ln -sfn ../val/cat ./datasets/afhq/cat2dog/testA
    ln -sfn ../val/dog ./datasets/afhq/cat2dog/testB
    ;;
cityscapes_val)
    mkdir -p ./datasets/cityscapes
    fetch "http://efrosgans.eecs.berkeley.edu/CUT/datasets/cityscapes_val_for_CUT.tar" ./datasets/cityscapes_val.tar
    tar -xf ./datasets/cityscapes_val.tar -C ./datasets/cityscapes && rm ./datasets/cityscapes_val.tar
    ;;
pretrained)
    mkdir -p ./checkpoints
    fetch "http://efrosgans.eecs.berkeley.edu/CUT/pretrained_models.tar" ./checkpoints/cut_pretrained_models.tar
    tar -xf ./checkpoints/cut_pretrained_models.tar -C . && rm ./checkpoints/cut_pretrained_models.tar
    echo "test with: bash scripts/cut/test_pretrained.sh horse2zebra_cut"
    ;;
"")
    echo "usage: $0 NAME (a CycleGAN dataset, grumpifycat, cat2dog, cityscapes_val, pretrained)" >&2
    exit 1
    ;;
*)
    exec bash "$(dirname "$0")/download_cyclegan_dataset.sh" "$NAME"
    ;;
esac
echo "done: $NAME"
