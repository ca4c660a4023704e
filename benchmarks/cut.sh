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
if [[ " $* " == *" --gpu_ids 0"* ]]; then
    for mode in CUT FastCUT; do
        python -m benchmarks.benchmark --iters 6 --warmup 2 -- --model cut --CUT_mode "$mode" "$@"
    done
fi
