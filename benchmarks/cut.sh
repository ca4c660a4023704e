#!/usr/bin/env bash
# CUT / FastCUT training-step benchmarks (run from the repository root). Prints one JSON line per configuration.
# 1) CUT (G on cat(A, B), identity NCE), 128 px crops, batch 1, one CPU thread (the official code's CPU figure);
# 2) FastCUT (G on A only, flip equivariance), same setting;
# 3) with --gpu_ids 0: both at the official 256 px.
set -e
for mode in CUT FastCUT; do
    python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- \
        --model cut --CUT_mode "$mode" --gpu_ids -1 --load_size 128 --crop_size 128 "$@"
done
# 4) with CUT_OFFICIAL=<checkout of taesungp/contrastive-unpaired-translation>: side by side with the official
#    step in one process (alternating steps, same weights and batch), peak memory of each alone.
if [[ -n "${CUT_OFFICIAL:-}" ]]; then
    for mode in cut fastcut; do
        python -m benchmarks.compare_official_cut --official "$CUT_OFFICIAL" --mode "$mode" --iters 6 --memory
    done
fi
if [[ " $* " == *" --gpu_ids 0"* ]]; then
    for mode in CUT FastCUT; do
        python -m benchmarks.benchmark --iters 6 --warmup 2 -- --model cut --CUT_mode "$mode" "$@"
    done
fi
