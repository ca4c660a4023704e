# Shared body of the TUNIT experiment scripts (sourced, not run): train, score the clusters on held-out
# images, then translate held-out images into every cluster's average style.
#
# The experiment script sets
#   DATA, NAME   dataroot and experiment name
#   K, SIZE      --output_k and the image size (--load_size = --crop_size), the same for every step
#   SPLIT        options choosing the images, for training and clustering (--tunit_classes, --tunit_holdout)
#   EVAL_PHASE   the held-out split cluster_eval.py scores (test, or val for a --tunit_holdout split)
#   EVAL_OPTS    optional further cluster_eval.py options (--tunit_cluster_net C)
#   INPUT_DIR    the folder of held-out images test.py translates
# and calls tunit_experiment with the paper's training options and "$@". Every argument goes to train.py;
# --dry_run and --gpu_ids also reach the evaluation (the other options are train.py's only).

EVAL_OPTS=()  # set before the experiment script's own settings, so a stray environment value is not used

tunit_experiment() {
    local net=(--output_k "$K" --load_size "$SIZE" --crop_size "$SIZE")
    local styles="./checkpoints/$NAME/cluster_styles.pt"
    python train.py --model tunit --dataroot "$DATA" --name "$NAME" "${SPLIT[@]}" "${net[@]}" "$@"

    local eval_args=() prev="" arg
    for arg in "$@"; do
        [[ "$arg" == "--dry_run" ]] && eval_args+=("--dry_run")
        [[ "$prev" == "--gpu_ids" ]] && eval_args+=("--gpu_ids" "$arg")
        prev="$arg"
    done
    # Cluster accuracy, NMI and cluster sizes on the held-out split; writes each cluster's average style.
    python scripts/tunit/cluster_eval.py --dataroot "$DATA" --name "$NAME" \
        "${SPLIT[@]}" --phase "$EVAL_PHASE" "${net[@]}" "${EVAL_OPTS[@]}" --save_styles "$styles" "${eval_args[@]}"
    # Translate held-out images into every cluster's average style (the paper's figures).
    python test.py --model tunit --dataroot "$DATA" --name "$NAME" --input_dir "$INPUT_DIR" --num_test 50 \
        "${net[@]}" --tunit_styles "$styles" "${eval_args[@]}"
}
