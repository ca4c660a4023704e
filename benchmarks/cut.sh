#!/usr/bin/env bash
# CUT / FastCUT training-step benchmarks (run from the repository root). Prints one JSON line per configuration.
# 1) CUT (G on A, then on B for the identity NCE), 128 and 256 px crops, batch 1, one CPU thread (the official
#    code's CPU figures);
# 2) FastCUT (G on A only, flip equivariance), same settings;
# 3) with --gpu_ids 0: both at the official 256 px on the GPU.
set -e
for size in 128 256; do
    for mode in CUT FastCUT; do
        python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- \
            --model cut --CUT_mode "$mode" --gpu_ids -1 --load_size "$size" --crop_size "$size" "$@"
    done
done
# 4) with CUT_OFFICIAL=<checkout of taesungp/contrastive-unpaired-translation>: side by side with the official
#    step in one process (alternating steps, same weights, batch and flips), peak memory of each alone.
if [[ -n "${CUT_OFFICIAL:-}" ]]; then
    for mode in cut fastcut; do
        python -m benchmarks.compare_official_cut --official "$CUT_OFFICIAL" --mode "$mode" --iters 10 \
            --memory --mem_iters 5
        python -m benchmarks.compare_official_cut --official "$CUT_OFFICIAL" --mode "$mode" --crop_size 256 \
            --iters 5 --memory
    done
fi
if [[ " $* " == *" --gpu_ids 0"* ]]; then
    for mode in CUT FastCUT; do
        python -m benchmarks.benchmark --iters 6 --warmup 2 -- --model cut --CUT_mode "$mode" "$@"
    done
fi
