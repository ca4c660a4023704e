#!/usr/bin/env bash
# Download one of the CycleGAN authors' unpaired datasets into ./datasets/NAME/{trainA,trainB,testA,testB}.
# Usage (from the repository root): bash datasets/download_cyclegan_dataset.sh horse2zebra
set -euo pipefail

NAMES=(apple2orange summer2winter_yosemite horse2zebra monet2photo cezanne2photo ukiyoe2photo vangogh2photo
       maps facades iphone2dslr_flower ae_photos mini mini_pix2pix mini_colorization cityscapes)

FILE="${1:-}"
VALID=0
for NAME in "${NAMES[@]}"; do
    [[ "$FILE" == "$NAME" ]] && VALID=1
done
if [[ $# -ne 1 || $VALID -ne 1 ]]; then
    echo "usage: $0 NAME" >&2
    echo "available datasets: ${NAMES[*]}" >&2
    exit 1
fi

if [[ "$FILE" == "cityscapes" ]]; then
    echo "Cityscapes cannot be redistributed: download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip" >&2
    echo "from https://www.cityscapes-dataset.com and arrange them as trainA/trainB/testA/testB." >&2
    exit 1
fi

URL="https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/$FILE.zip"
ZIP_FILE="./datasets/$FILE.zip"
TARGET_DIR="./datasets/$FILE"
echo "downloading [$FILE] from $URL"
mkdir -p ./datasets
trap 'rm -f "$ZIP_FILE"' EXIT  # no half-downloaded zip is left behind
if command -v wget >/dev/null 2>&1; then
    wget "$URL" -O "$ZIP_FILE"
else
    curl -L --fail "$URL" -o "$ZIP_FILE"
fi
mkdir -p "$TARGET_DIR"
unzip -q -o "$ZIP_FILE" -d ./datasets/
echo "done: $TARGET_DIR"
