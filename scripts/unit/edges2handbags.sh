#!/usr/bin/env bash
# UNIT on edges2handbags (edges -> photos) at 256x256: the official configs/unit_edges2handbags_folder.yaml
# (mingyuliutw/UNIT master, scripts/unit_demo_train_edges2handbags.sh), written out as flags.
# Data: the pix2pix edges2handbags.tar.gz (https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/edges2handbags.tar.gz)
# extracted to ./datasets/edges2handbags/{train,val}/; each 512x256 image is an (edges | photo) pair. As the official
# demo script, the left halves become domain A (trainA, testA from val) and the right halves domain B, so
# A and B hold the same objects but are sampled unpaired.
# Extra arguments go to train.py (e.g. --gpu_ids 0, --share_layers 1 for the paper's weight sharing, --dry_run).
set -e
split_pairs() {  # $1: folder of side-by-side pairs, $2: output prefix (train or test)
    python - "$1" "$2" <<'PY'
import os, sys
from PIL import Image
src, prefix = sys.argv[1], sys.argv[2]
root = os.path.dirname(src.rstrip("/"))
for side in "AB":
    os.makedirs(os.path.join(root, prefix + side), exist_ok=True)
for name in sorted(os.listdir(src)):
    img = Image.open(os.path.join(src, name)).convert("RGB")
    w, h = img.size
    img.crop((0, 0, w // 2, h)).save(os.path.join(root, prefix + "A", name), quality=100)
    img.crop((w // 2, 0, w, h)).save(os.path.join(root, prefix + "B", name), quality=100)
PY
}
DATA=./datasets/edges2handbags
NAME=unit_edges2handbags
if [[ -d "$DATA/train" && ! -d "$DATA/trainA" ]]; then
    split_pairs "$DATA/train" train
    split_pairs "$DATA/val" test
fi
python train.py --model unit --dataroot "$DATA" --name "$NAME" \
    --gen.dim 64 --gen.n_downsample 2 --gen.n_res 4 --gen.activ relu --gen.pad_type reflect \
    --dis.dim 64 --dis.n_layer 4 --dis.num_scales 3 --dis.norm none --dis.activ lrelu --dis.pad_type reflect \
    --dis.gan_type lsgan --gan_w 1 --recon_x_w 10 --recon_kl_w 0.01 --recon_x_cyc_w 10 --recon_kl_cyc_w 0.01 \
    --vgg_w 0 --lr 0.0001 --beta1 0.5 --beta2 0.999 --weight_decay 0.0001 --init_type kaiming \
    --lr_policy step --step_size 100000 --gamma 0.5 --max_iter 1000000 --batch_size 1 \
    --new_size 256 --crop_image_height 256 --crop_image_width 256 \
    --snapshot_save_iter 10000 --image_save_iter 10000 --image_display_iter 500 --log_iter 10 "$@"

# Translate the test images both ways at full resolution from the posterior mean (official test.py).
DRY=""
for arg in "$@"; do [[ "$arg" == "--dry_run" ]] && DRY="--dry_run"; done
python test.py --model unit --dataroot "$DATA" --name "$NAME" --preprocess none --test_direction both $DRY
