"""Translate the test (or val) images with a trained model.

``python test.py --model cycle_gan --dataroot DATA --name EXP [--phase val] [--preprocess none]``
writes ``results/EXP/<phase>_<epoch>/images/`` and an ``index.html``; ``--output_path DIR`` also writes just
the translations there, named after their inputs (inputs whose names differ only by extension keep it:
``a_png.png``, ``a_jpg.png``; a folder that inputs are read from is refused). An unreadable input is skipped with
one warning, and the exit status is 1. ``--video FILE_OR_DIR`` writes translated mp4s instead
(``--video_out``), ``--camera ID`` shows a webcam and its translation (see docs/video.md).
"""

import os
import sys

from data.image_io import DataError
from options import TestOptions
from options.machine import apply_torch_threads
from util.checkpoint import CheckpointError
from util.metrics.evaluate import score_test_results
from util.metrics.fid import FIDWeightsError, load_extractor
from util.output_dirs import output_dir_error
from util.test_inputs import output_path_error
from util.test_loop import Tester
from util.video import VideoError, run_from_options, video_output_dir


def output_dir_errors(opt) -> list[str]:
    """Problems of the folders this run writes into, by the option that names them (a file given as a folder)."""
    if opt.camera >= 0:  # a window, no files
        return []
    if opt.video:
        given = ("--video_out", opt.video_out) if opt.video_out else ("--results_dir", opt.results_dir)
        found = [output_dir_error(*given, video_output_dir(opt))]
    else:
        web_dir = os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}")
        found = [output_dir_error("--results_dir", opt.results_dir, web_dir)]
        if opt.output_path:
            found.append(output_dir_error("--output_path", opt.output_path) or output_path_error(opt))
    return [e for e in found if e]


def main(argv: list[str] | None = None) -> int:
    options = TestOptions()
    opt = options.parse(argv, save=False)
    errors = output_dir_errors(opt)
    if errors:  # before the model is built or the options are recorded: nothing is written
        print(f"error: {errors[0]}", file=sys.stderr)
        return 2
    options.save(opt)
    apply_torch_threads(opt)
    try:
        tester = Tester(opt)
        if opt.dry_run:
            return 0
        if opt.video or opt.camera >= 0:
            run_from_options(tester.model, opt)
        else:
            if opt.compute_fid:  # a bad weights file fails now, not after every image is translated
                load_extractor(opt.fid_weights, opt.fid_dims, tester.device, opt.fid_batch_size)
            tester.run()
            if opt.compute_fid:
                score_test_results(tester)
            if tester.skipped:  # the others were translated; the status tells a script that some were not
                print(f"error: {len(tester.skipped)} of {len(tester.inputs)} input images could not be read and were "
                      "skipped (one warning each above)", file=sys.stderr)  # fmt: skip
                return 1
    except FIDWeightsError as exc:  # asked for a score with a file that cannot give one: a usage error
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (CheckpointError, DataError, VideoError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
