"""test.py --video / --camera: frame count, size, fps and content of translated videos; dependency messages."""

from __future__ import annotations

import importlib
import os
import sys
import types
from fractions import Fraction

import numpy as np
import pytest
import torch

import test as test_script
import train
from options import TestOptions
from tests.conftest import TINY, TINY_TEST
from util import video
from util.image_utils import tensor2im
from util.test_loop import Tester


def common(root: str, ckpt_dir: str) -> list[str]:
    return ["--model", "cycle_gan", "--dataroot", root, "--name", "exp", "--checkpoints_dir", ckpt_dir]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_root) -> str:
    """A tiny cycle_gan checkpoint after one step (the weights only need to be fixed, not good)."""
    ckpt_dir = str(tmp_path_factory.mktemp("ckpt"))
    assert train.main([*common(synthetic_root, ckpt_dir), *TINY, "--max_steps", "1"]) == 0
    return ckpt_dir


@pytest.fixture
def test_argv(trained, synthetic_root, tmp_path):
    def make(*extra: str) -> list[str]:
        return [
            *common(synthetic_root, trained),
            *TINY_TEST,
            "--results_dir",
            str(tmp_path / "results"),
            *extra,
        ]

    return make


def smooth_frames(n: int, h: int, w: int) -> np.ndarray:
    """Moving colour gradients: smooth, so H.264 keeps them close to the original."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for t in range(n):
        r = 127 + 100 * np.sin((x + 3 * t) / w * np.pi)
        g = 127 + 100 * np.cos((y - 2 * t) / h * np.pi)
        b = np.full_like(x, 40 + 30 * t)
        frames.append(np.stack([r, g, b], axis=-1).astype(np.uint8))
    return np.stack(frames)


def write_video(path: str, frames: np.ndarray, fps: int) -> None:
    av = pytest.importorskip("av")
    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "0"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_video(path: str) -> tuple[np.ndarray, Fraction]:
    av = pytest.importorskip("av")
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return np.stack(frames), stream.average_rate


def expected_translation(tester: Tester, frames: np.ndarray, direction: str) -> np.ndarray:
    """The network applied frame by frame with no preprocessing (32x32 frames at --crop_size 32)."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0 * 2.0 - 1.0
    with torch.no_grad():
        visuals = tester.model.translate(x, direction)
    fake = visuals["fake_B" if direction == "AtoB" else "fake_A"]
    return np.stack([tensor2im(f) for f in fake]).astype(np.float32)


def block_means(frames: np.ndarray, k: int = 4) -> np.ndarray:
    """Means of k x k pixel blocks: the untrained net's output is pixel noise, which yuv420p H.264 smooths
    (per-pixel error ~17 of 255), while block means survive encoding (error ~2)."""
    n, h, w, c = frames.shape
    return frames.astype(np.float32).reshape(n, h // k, k, w // k, k, c).mean(axis=(2, 4))


def test_video_file_keeps_frames_size_fps_and_matches_the_network(test_argv, tmp_path):
    pytest.importorskip("av")
    src = str(tmp_path / "clip.mp4")
    write_video(src, smooth_frames(6, 32, 32), fps=12)
    source_frames, _ = read_video(src)  # what the decoder hands the model
    out_dir = tmp_path / "out"
    argv = test_argv("--video", src, "--video_out", str(out_dir), "--batch_size", "4")  # 4 + a partial 2
    assert test_script.main(argv) == 0
    frames, fps = read_video(str(out_dir / "clip.mp4"))
    assert frames.shape == (6, 32, 32, 3)
    assert fps == 12
    tester = Tester(TestOptions().parse(test_argv()))
    forward = np.abs(block_means(frames) - block_means(expected_translation(tester, source_frames, "AtoB")))
    backward = np.abs(block_means(frames) - block_means(expected_translation(tester, source_frames, "BtoA")))
    assert forward.mean() < 4.0  # measured 2.0
    assert backward.mean() > 12.0  # measured 19.5: the other generator's output is not what was written


def test_full_resolution_frames_are_padded_and_cropped_back(test_argv, tmp_path):
    pytest.importorskip("av")
    src = str(tmp_path / "wide.mp4")
    write_video(src, smooth_frames(3, 26, 42), fps=25)  # neither side a multiple of 4
    argv = test_argv("--video", src, "--preprocess", "none", "--test_direction", "BtoA")
    assert test_script.main(argv) == 0
    frames, fps = read_video(str(tmp_path / "results" / "exp" / "video_latest" / "wide.mp4"))
    assert frames.shape == (3, 26, 42, 3)
    assert fps == 25


def test_video_folder_gives_one_mp4_per_video(test_argv, tmp_path):
    pytest.importorskip("av")
    src_dir = tmp_path / "videos"
    src_dir.mkdir()
    write_video(str(src_dir / "a.mp4"), smooth_frames(2, 32, 32), fps=10)
    write_video(str(src_dir / "b.MOV"), smooth_frames(4, 32, 32), fps=10)
    (src_dir / "notes.txt").write_text("not a video")
    out_dir = tmp_path / "out"
    assert test_script.main(test_argv("--video", str(src_dir), "--video_out", str(out_dir))) == 0
    assert sorted(os.listdir(out_dir)) == ["a.mp4", "b.mp4"]
    assert read_video(str(out_dir / "a.mp4"))[0].shape == (2, 32, 32, 3)
    assert read_video(str(out_dir / "b.mp4"))[0].shape == (4, 32, 32, 3)


def hide_module(monkeypatch, name: str) -> None:
    real = importlib.import_module

    def fake(module, package=None):
        if module == name:
            raise ImportError(f"No module named '{name}'")
        return real(module, package)

    monkeypatch.setattr(importlib, "import_module", fake)


def test_missing_pyav_gives_a_clear_message(test_argv, tmp_path, monkeypatch, capsys):
    hide_module(monkeypatch, "av")
    assert test_script.main(test_argv("--video", str(tmp_path / "clip.mp4"))) == 1
    assert "video input needs PyAV: pip install av" in capsys.readouterr().err
    with pytest.raises(video.VideoError, match="video input needs PyAV: pip install av"):
        video.translate_video(None, None, "clip.mp4", "out.mp4")


def test_missing_opencv_gives_a_clear_message(test_argv, monkeypatch, capsys):
    hide_module(monkeypatch, "cv2")
    assert test_script.main(test_argv("--camera", "0")) == 1
    assert "camera input needs opencv-python: pip install opencv-python" in capsys.readouterr().err
    with pytest.raises(video.VideoError, match="camera input needs opencv-python"):
        video.translate_camera(None, None, 0)


def test_bad_inputs_are_reported(test_argv, tmp_path, capsys):
    pytest.importorskip("av")
    assert test_script.main(test_argv("--video", str(tmp_path / "missing.mp4"))) == 1
    assert "video file not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert test_script.main(test_argv("--video", str(tmp_path / "empty"))) == 1
    assert "no video files" in capsys.readouterr().err
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    assert test_script.main(test_argv("--video", str(tmp_path / "junk.mp4"))) == 1
    assert "cannot open video" in capsys.readouterr().err
    assert test_script.main(test_argv("--video", "x.mp4", "--camera", "0")) == 1
    assert "not both" in capsys.readouterr().err


class FakeCapture:
    """Five 40x48 BGR frames, then end of stream."""

    def __init__(self, camera_id):
        self.camera_id = camera_id
        self.left = 5
        self.released = False

    def isOpened(self):
        return True

    def read(self):
        if self.left == 0:
            return False, None
        self.left -= 1
        return True, np.full((40, 48, 3), 60 * self.left, dtype=np.uint8)

    def release(self):
        self.released = True


def fake_cv2(quit_after: int):
    """Enough of OpenCV for the camera loop: records what is shown; 'q' (with high bits set) after N frames."""
    cv2 = types.SimpleNamespace(
        COLOR_BGR2RGB=4, COLOR_RGB2BGR=4, WND_PROP_VISIBLE=4, shown=[], destroyed=False
    )
    cv2.VideoCapture = lambda camera_id: cv2.__dict__.setdefault("capture", FakeCapture(camera_id))
    cv2.cvtColor = lambda img, code: img[..., ::-1]
    cv2.imshow = lambda name, img: cv2.shown.append(img)
    # Some GTK builds return the key code with modifier bits above the low byte (the fork's quit test missed it).
    cv2.waitKey = lambda delay: (0x100000 | ord("q")) if len(cv2.shown) == quit_after else -1
    cv2.getWindowProperty = lambda name, prop: 1.0
    cv2.destroyAllWindows = lambda: setattr(cv2, "destroyed", True)
    return cv2


def test_camera_loop_shows_input_and_output_and_quits_on_q(test_argv, monkeypatch):
    tester = Tester(TestOptions().parse(test_argv()))
    cv2 = fake_cv2(quit_after=3)
    monkeypatch.setitem(sys.modules, "cv2", cv2)
    assert video.translate_camera(tester.model, tester.opt, 1) == 3
    assert cv2.capture.camera_id == 1 and cv2.capture.released and cv2.destroyed
    # 48x40 frames resized to 32x32, input | output side by side
    assert [img.shape for img in cv2.shown] == [(32, 64, 3)] * 3
    # Without 'q' the loop ends with the stream (5 frames).
    cv2 = fake_cv2(quit_after=-1)
    monkeypatch.setitem(sys.modules, "cv2", cv2)
    assert video.translate_camera(tester.model, tester.opt, 0) == 5
