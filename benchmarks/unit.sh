#!/usr/bin/env bash
# UNIT training-step benchmarks (run from the repository root). Prints one JSON line per configuration.
# 1) the official master architecture (dim 64, n_res 4, 3-scale D with 4 layers), 128 px crops;
# 2) the same with the paper's weight sharing (last encoder / first decoder ResBlock shared);
# 3) the official 256 px setting (slow on CPU: run it on a GPU with --gpu_ids 0).
set -e
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- \
    --model unit --gpu_ids -1 --load_size 128 --crop_size 128 "$@"
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- \
    --model unit --gpu_ids -1 --load_size 128 --crop_size 128 --share_layers 1 "$@"
if [[ " $* " == *" --gpu_ids 0"* ]]; then
    python -m benchmarks.benchmark --iters 6 --warmup 2 -- --model unit --load_size 256 --crop_size 256 "$@"
fi
