# Shared body of the UNIT experiment scripts (sourced, not run). The experiment script sets DATA and NAME and
# calls unit_experiment with its own options and "$@".

# The options every official configs/unit_*_folder.yaml of mingyuliutw/UNIT shares, written out as flags.
UNIT_CONFIG=(
    --gen.dim 64 --gen.n_downsample 2 --gen.n_res 4 --gen.activ relu --gen.pad_type reflect
    --dis.dim 64 --dis.n_layer 4 --dis.num_scales 3 --dis.norm none --dis.activ lrelu --dis.pad_type reflect
    --dis.gan_type lsgan --gan_w 1 --recon_x_w 10 --recon_kl_w 0.01 --recon_x_cyc_w 10 --recon_kl_cyc_w 0.01
    --vgg_w 0 --lr 0.0001 --beta1 0.5 --beta2 0.999 --weight_decay 0.0001 --init_type kaiming
    --lr_policy step --step_size 100000 --gamma 0.5 --max_iter 1000000 --batch_size 1
    --new_size 256 --crop_image_height 256 --crop_image_width 256
    --snapshot_save_iter 10000 --image_save_iter 10000 --log_iter 10
)

# Train with the official config and the given options, then translate the test images both ways at full
# resolution from the posterior mean (official test.py). Only --dry_run also reaches test.py.
unit_experiment() {
    python train.py --model unit --dataroot "$DATA" --name "$NAME" "${UNIT_CONFIG[@]}" "$@"

    local dry="" arg
    for arg in "$@"; do [[ "$arg" == "--dry_run" ]] && dry="--dry_run"; done
    python test.py --model unit --dataroot "$DATA" --name "$NAME" \
        --preprocess none --test_direction both $dry
}

# The pix2pix edges2* datasets hold (edges | photo) pairs side by side in train/ and val/. As the official
# demo scripts, the left halves become domain A (trainA, testA from val) and the right halves domain B, so
# A and B hold the same objects but are sampled unpaired. Done once: when $1/train exists and $1/trainA not.
split_edges_dataset() {  # $1: the dataroot
    if [[ -d "$1/train" && ! -d "$1/trainA" ]]; then
        split_pairs "$1/train" train
        split_pairs "$1/val" test
    fi
}

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
