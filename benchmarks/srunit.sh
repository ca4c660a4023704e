#!/usr/bin/env bash
# SRUNIT training-step benchmarks (run from the repository root). Prints one JSON line per configuration.
# The benchmark runs epoch 1, so --inact_epochs 0 makes the SR loss active.
# 1) SR loss active (v2), 128 px, batch 1, one CPU thread;
# 2) inactive epochs, default (plain CUT steps);
# 3) inactive epochs with the official freeze (--inact_freeze_G: D step only);
# 4) with --gpu_ids 0: the active step at the official 256 px.
set -e
common=(--model srunit --gpu_ids -1 --load_size 128 --crop_size 128)
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- "${common[@]}" --inact_epochs 0 "$@"
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- "${common[@]}" "$@"
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- "${common[@]}" --inact_freeze_G "$@"
if [[ " $* " == *" --gpu_ids 0"* ]]; then
    python -m benchmarks.benchmark --iters 6 --warmup 2 -- --model srunit --inact_epochs 0 "$@"
fi
