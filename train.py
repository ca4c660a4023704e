"""Train any registered model: ``python train.py --model cycle_gan --dataroot DATA --name EXP``.

With no ``--dataroot`` a small synthetic dataset is generated and used, so a fresh clone can train at once.
``--continue_train`` resumes exactly where the last checkpoint stopped; SIGTERM/SIGINT save and exit.
"""

import sys

from data.image_io import DataError
from options import TrainOptions
from util.checkpoint import CheckpointError
from util.trainer import NonFiniteLossError, Trainer, TrainingInterrupted


def main(argv: list[str] | None = None) -> int:
    opt = TrainOptions().parse(argv)
    try:
        trainer = Trainer(opt)
        trainer.fit()
    except TrainingInterrupted as exc:
        print(exc)
        return 0
    except (NonFiniteLossError, CheckpointError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
