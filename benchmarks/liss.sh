#!/usr/bin/env bash
# LiSS training-step benchmarks (run from the repository root). Prints one JSON line per configuration.
# LiSS reads MegaDepth maps beside the images, so a synthetic dataset with depth maps is made first. The first
# (warm-up) step also runs the schedule's first validation on its test split.
# 1) parallel schedule (translation + rotation, jigsaw, depth, gray every step), 128 px, batch 1, one CPU thread
#    (jigsaw window 111 px: the 2x2 classifier map that 128-px rotation crops give);
# 2) the same with SSGAN rotation heads in the discriminators (--D_rotation);
# 3) the first stage of the sequential / liss schedules (encoders + rotation heads only);
# 4) with --gpu_ids 0: the parallel and liss-paper settings at the official 256 px, batch 5;
# 5) with LISS_OFFICIAL=<extracted vict0rsch/LiSS checkout>: our step against the official one, side by side in
#    one process (128 px rotation + gray, then all tasks at 256 px with few iterations), peak memory of each.
set -e
root=./datasets/synthetic_liss_128
python -m datasets.make_synthetic "$root" --size 128 --n_train 4 --n_test 2 --depths
common=(--model liss --dataroot "$root" --gpu_ids -1 --load_size 128 --crop_size 128 --jigsaw_size 111)
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- "${common[@]}" "$@"
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- "${common[@]}" --D_rotation "$@"
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- "${common[@]}" --task_schedule sequential "$@"
if [[ " $* " == *" --gpu_ids 0"* ]]; then
    root256=./datasets/synthetic_liss_256
    python -m datasets.make_synthetic "$root256" --size 256 --n_train 10 --n_test 5 --depths
    python -m benchmarks.benchmark --iters 6 --warmup 2 -- --model liss --dataroot "$root256" --batch_size 5 "$@"
    python -m benchmarks.benchmark --iters 6 --warmup 2 -- --model liss --dataroot "$root256" --batch_size 5 \
        --D_rotation "$@"
fi
if [[ -n "${LISS_OFFICIAL:-}" ]]; then
    python -m benchmarks.compare_official_liss --official "$LISS_OFFICIAL" --crop_size 128 \
        --auxiliary_tasks rotation,gray --iters 4 --memory
    python -m benchmarks.compare_official_liss --official "$LISS_OFFICIAL" --crop_size 256 --iters 2 \
        --mem_iters 1 --memory
fi
