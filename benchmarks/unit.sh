#!/usr/bin/env bash
# UNIT training-step benchmarks (run from the repository root). Prints one JSON line per configuration.
# 1) the official master architecture (dim 64, n_res 4, 3-scale D with 4 layers), 128 px crops, default fast step;
# 2) the same with the official step (--no-unit_fast_step, bit-exact with mingyuliutw/UNIT);
# 3) the paper's weight sharing (last encoder / first decoder ResBlock shared);
# 4) the official 256 px setting (slow on CPU: run it on a GPU with --gpu_ids 0);
# 5) with UNIT_OFFICIAL=/path/to/UNIT (a mingyuliutw/UNIT master checkout): side by side with the official
#    UNIT_Trainer in one process, alternating steps, plus the peak memory of each alone.
set -e
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- \
    --model unit --gpu_ids -1 --load_size 128 --crop_size 128 "$@"
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- \
    --model unit --gpu_ids -1 --load_size 128 --crop_size 128 --no-unit_fast_step "$@"
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- \
    --model unit --gpu_ids -1 --load_size 128 --crop_size 128 --share_layers 1 "$@"
if [[ " $* " == *" --gpu_ids 0"* ]]; then
    python -m benchmarks.benchmark --iters 6 --warmup 2 -- --model unit --load_size 256 --crop_size 256 "$@"
fi
if [[ -n "${UNIT_OFFICIAL:-}" ]]; then
    python -m benchmarks.compare_official_unit --official "$UNIT_OFFICIAL" --crop_size 128 --iters 4 --memory
fi
