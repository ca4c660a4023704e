"""Translate the test (or val) images with a trained model.

``python test.py --model cycle_gan --dataroot DATA --name EXP [--phase val] [--preprocess none]``
writes ``results/EXP/<phase>_<epoch>/images/`` and an ``index.html``; ``--output_path DIR`` also writes just
the translations there, named after their inputs. ``--video FILE_OR_DIR`` writes translated mp4s instead
(``--video_out``), ``--camera ID`` shows a webcam and its translation (see docs/video.md).
"""

import sys

from data.image_io import DataError
from options import TestOptions
from options.machine import apply_torch_threads
from util.checkpoint import CheckpointError
from util.metrics.evaluate import score_test_results
from util.test_loop import Tester
from util.video import VideoError, run_from_options


def main(argv: list[str] | None = None) -> int:
    opt = TestOptions().parse(argv)
    apply_torch_threads(opt)
    try:
        tester = Tester(opt)
        if opt.dry_run:
            return 0
        if opt.video or opt.camera >= 0:
            run_from_options(tester.model, opt)
        else:
            tester.run()
            if opt.compute_fid:
                score_test_results(tester)
    except (CheckpointError, DataError, VideoError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
