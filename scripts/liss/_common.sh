# Shared body of the LiSS experiment scripts (sourced, not run): the authors' options for each task schedule.
# They come from the authors' run scripts, in the development repo of LiSS where --model liss was 'continual'
# (vict0rsch/continual-translation, files named below). Those scripts cover horse2zebra only; the other
# datasets use the same settings.
#
# --liss_legacy_optim reproduces torch_optimizer's RAdam of the official code, whose shared step-size cache
# ignores most task learning rates; drop it to have torch.optim.RAdam honour every --lr_<task>.

liss_experiment() {  # $1: dataroot, $2: experiment name, $3: task schedule; the rest goes to train.py
    local data=$1 name=$2 schedule=$3 opts
    shift 3
    case "$schedule" in
        liss)  # experiments/continual/cont_05_h2z_conti.sh
            opts=(--task_schedule liss --encoder_merge_ratio 0.5 --D_rotation
                --batch_size 5 --display_freq 2000 --init_type kaiming --lr 0.0005
                --lr_rotation 0.001 --lr_depth 0.001 --lr_gray 0.0005 --lr_jigsaw 0.001) ;;
        parallel)  # experiments/continual/no-rot_D/par_h2z_conti.sh
            opts=(--task_schedule parallel --batch_size 3 --display_freq 2000 --lr 0.0005) ;;
        representational)  # experiments/flow_freeze_distill/repr_h2z_ffd_freeze_mila.sh
            opts=(--task_schedule representational --repr_mode freeze
                --batch_size 5 --display_freq 2000 --init_type kaiming --lr 0.0005) ;;
        sequential)  # experiments/continual/seq_h2z_conti.sh
            opts=(--task_schedule sequential --D_rotation --batch_size 3 --display_freq 2000
                --lr_rotation 0.001 --lr_depth 0.001 --lr_gray 0.0005 --lr_jigsaw 0.001) ;;
        *) echo "liss_experiment: unknown task schedule '$schedule'" >&2; return 2 ;;
    esac
    python train.py --model liss --dataroot "$data" --name "$name" "${opts[@]}" --liss_legacy_optim \
        --rotation_acc_threshold 0.85 --jigsaw_acc_threshold 0.85 \
        --depth_loss_threshold 0.15 --gray_loss_threshold 0.3 \
        --n_epochs 200 --n_epochs_decay 100 "$@"
}
