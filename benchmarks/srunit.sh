#!/usr/bin/env bash
# SRUNIT training-step benchmarks (run from the repository root). Prints one JSON line per configuration.
# The benchmark runs epoch 1, so --inact_epochs 0 makes the SR loss active.
# 1) SR loss active (v2), 128 px (and, last of the CPU runs, 256 px), batch 1, one CPU thread;
# 2) inactive epochs, default (plain CUT steps);
# 3) inactive epochs with the official freeze (--inact_freeze_G: D step only);
# 4) with --gpu_ids 0: the active step at the official 256 px.
set -e
common=(--model srunit --gpu_ids -1 --load_size 128 --crop_size 128)
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- "${common[@]}" --inact_epochs 0 "$@"
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- "${common[@]}" "$@"
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- "${common[@]}" --inact_freeze_G "$@"
python -m benchmarks.benchmark --threads 1 --iters 4 --warmup 1 -- --model srunit --gpu_ids -1 --load_size 256 \
    --crop_size 256 --inact_epochs 0 "$@"
# 5) with CUT_OFFICIAL and SRUNIT_OFFICIAL (checkouts of the CUT and SRUNIT repos): the active step side by
#    side with the official one in one process, peak memory of each alone.
if [[ -n "${CUT_OFFICIAL:-}" && -n "${SRUNIT_OFFICIAL:-}" ]]; then
    python -m benchmarks.compare_official_cut --official "$CUT_OFFICIAL" --srunit_official "$SRUNIT_OFFICIAL" \
        --mode srunit --iters 10 --memory --mem_iters 5
    python -m benchmarks.compare_official_cut --official "$CUT_OFFICIAL" --srunit_official "$SRUNIT_OFFICIAL" \
        --mode srunit --crop_size 256 --iters 5 --memory
fi
if [[ " $* " == *" --gpu_ids 0"* ]]; then
    python -m benchmarks.benchmark --iters 6 --warmup 2 -- --model srunit --inact_epochs 0 "$@"
fi
