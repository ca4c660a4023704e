#!/usr/bin/env bash
# UNIT on summer2winter_yosemite at 256x256: the official configs/unit_summer2winter_yosemite256_folder.yaml
# (mingyuliutw/UNIT master, scripts/unit_demo_train_summer2winter_yosemite256.sh), written out as flags.
# Data: bash datasets/download_cyclegan_dataset.sh summer2winter_yosemite
# Extra arguments go to train.py (e.g. --gpu_ids 0, --share_layers 1 for the paper's weight sharing, --dry_run).
set -e
DATA=./datasets/summer2winter_yosemite
NAME=unit_summer2winter_yosemite256
python train.py --model unit --dataroot "$DATA" --name "$NAME" \
    --gen.dim 64 --gen.n_downsample 2 --gen.n_res 4 --gen.activ relu --gen.pad_type reflect \
    --dis.dim 64 --dis.n_layer 4 --dis.num_scales 3 --dis.norm none --dis.activ lrelu --dis.pad_type reflect \
    --dis.gan_type lsgan --gan_w 1 --recon_x_w 10 --recon_kl_w 0.01 --recon_x_cyc_w 10 --recon_kl_cyc_w 0.01 \
    --vgg_w 0 --lr 0.0001 --beta1 0.5 --beta2 0.999 --weight_decay 0.0001 --init_type kaiming \
    --lr_policy step --step_size 100000 --gamma 0.5 --max_iter 1000000 --batch_size 1 \
    --new_size 256 --crop_image_height 256 --crop_image_width 256 \
    --snapshot_save_iter 10000 --image_save_iter 10000 --image_display_iter 100 --log_iter 10 "$@"

# Translate the test images both ways at full resolution from the posterior mean (official test.py).
DRY=""
for arg in "$@"; do [[ "$arg" == "--dry_run" ]] && DRY="--dry_run"; done
python test.py --model unit --dataroot "$DATA" --name "$NAME" --preprocess none --test_direction both $DRY
