#!/usr/bin/env bash
# TUNIT training-step benchmarks (run from the repository root). Prints one JSON line per configuration.
# 1) the guiding-network phase (the first 65k official iterations: C step only), 128 px, batch 8;
# 2) a full GAN-phase iteration (C step, D step with R1, G step, EMA updates), 128 px, batch 8;
# 3) with --gpu_ids 0: the official setting, 128 px and 256 px at batch 32, GAN phase;
# 4) with TUNIT_OFFICIAL=<clovaai/tunit checkout>: side by side with the official iteration (same weights and
#    batch, alternated in one process) for both phases at 64 and 128 px, batch 8, with peak memory (each
#    side alone). The 128 px GAN speed run holds both sides in one process (each alone peaks at 6.8-7.6 GB).
# Without --dataroot the synthetic class-folder dataset is used (the step time does not depend on the images).
set -e
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- \
    --model tunit --gpu_ids -1 --load_size 128 --crop_size 128 --batch_size 8 "$@"
python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 -- \
    --model tunit --gpu_ids -1 --load_size 128 --crop_size 128 --batch_size 8 \
    --tunit_gan_start 0 --tunit_ema_start 0 "$@"
if [[ " $* " == *" --gpu_ids 0"* ]]; then
    for size in 128 256; do
        python -m benchmarks.benchmark --iters 6 --warmup 2 -- --model tunit --load_size "$size" \
            --crop_size "$size" --batch_size 32 --tunit_gan_start 0 --tunit_ema_start 0 "$@"
    done
fi
if [[ -n "$TUNIT_OFFICIAL" ]]; then
    for size in 64 128; do
        iters=$((size == 64 ? 4 : 2))  # a 128 px GAN pair takes ~3.5 CPU minutes
        for phase in guiding full; do
            python -m benchmarks.compare_official_tunit --official "$TUNIT_OFFICIAL" --img_size "$size" \
                --batch_size 8 --phase "$phase" --iters "$iters" --memory
        done
    done
fi
