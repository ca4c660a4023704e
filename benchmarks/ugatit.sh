#!/usr/bin/env bash
# U-GAT-IT training-step benchmarks (run from the repository root). Prints one JSON line per configuration.
# 1) official light model (ch 64, 4+4 res blocks, global D depth 7 + local D depth 5), 128 px crops, with the
#    default speed paths (fused SN / ILN / Adam, batched D step: the official maths, other float rounding);
# 2) the same on the bit-exact official computation (--no-ugatit_fused_*);
# 3) the same with --ugatit_fast_d (one SN iteration for real+fake, eval-mode D in the G step; not official);
# 4) official full model at 128 px (77.6M-parameter generators);
# 5) enhanced-U-GAT-IT as in its README (light 32, scSE, edge-blurred fakes, EMA), 128 px;
# 6) the paper's full model at 256 px (279M-parameter generators): only with a GPU (--gpu_ids 0).
# Against the official code itself (same process, alternating; needs a znxlwm/UGATIT-pytorch checkout):
#   python -m benchmarks.compare_official_ugatit --official PATH --img_size 128 --memory
set -e
B="python -m benchmarks.benchmark --threads 1 --iters 6 --warmup 2 --"
EXACT="--no-ugatit_fused_sn --no-ugatit_fused_norm --no-ugatit_fused_adam --no-fast_cpu_convs"
$B --model ugatit --gpu_ids -1 --img_size 128 --light True "$@"
$B --model ugatit --gpu_ids -1 --img_size 128 --light True $EXACT "$@"
$B --model ugatit --gpu_ids -1 --img_size 128 --light True --ugatit_fast_d "$@"
$B --model ugatit --gpu_ids -1 --img_size 128 --light False "$@"
$B --model ugatit_enhanced --gpu_ids -1 --img_size 128 --light 32 --use_se --has_blur "$@"
if [[ " $* " == *" --gpu_ids 0"* ]]; then
    python -m benchmarks.benchmark --iters 6 --warmup 2 -- --model ugatit --img_size 256 --light False "$@"
fi
