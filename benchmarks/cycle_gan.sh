#!/usr/bin/env bash
# CycleGAN training-step benchmark (run from the repository root); one JSON line per configuration.
# 1) crop 128, batch 1, one CPU thread (the official code's CPU figure: official 8.8 s/iter);
# 2) with --gpu_ids 0 in the arguments: the official 256 px setting on the GPU.
# Side by side with the official code: python -m benchmarks.compare_official_cyclegan --official PATH
set -e
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- \
    --model cycle_gan --gpu_ids -1 --load_size 143 --crop_size 128 "$@"
if [[ " $* " == *" --gpu_ids 0"* ]]; then
    python -m benchmarks.benchmark --iters 10 --warmup 3 -- --model cycle_gan "$@"
fi
