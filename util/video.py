"""Video and webcam inference for any registered model (``test.py --video PATH`` / ``--camera ID``).

The enhanced U-GAT-IT fork has ``--phase video``, ``video_dir`` and ``camera``, which cannot run (they import a
``face_align`` module the fork does not ship, and its camera loop never quits). Here they are one-direction
translations with the model's ``translate`` / ``output_visual`` contract, so they work for every model:

- frames are preprocessed exactly like test images (``--preprocess``, ``--crop_size``; ``--preprocess none``
  keeps the frame size), padded to ``model.size_multiple()`` and cropped back, translated ``--batch_size`` at a
  time, and written as an H.264 mp4 with the source frame rate (audio is dropped);
- a folder of videos gives one mp4 per video, named after it;
- a webcam shows input and translation side by side until 'q' (or the window is closed).

Video needs the optional PyAV package (``pip install av``), the camera OpenCV (``pip install opencv-python``).
PyAV is used directly: ``torchvision.io.read_video`` / ``write_video`` wrap the same library but are deprecated
since torchvision 0.22 and missing from recent releases, and decoding frame by frame keeps memory flat for long
videos where ``read_video`` holds every frame at once.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from data.transforms import get_transform
from util.image_utils import tensor2im
from util.test_loop import pad_to_multiple

VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
)  # fmt: skip
#: Used when a container does not state its frame rate (e.g. some raw streams).
DEFAULT_FPS = Fraction(25)
AV_MESSAGE = "video input needs PyAV: pip install av"
CV2_MESSAGE = "camera input needs opencv-python: pip install opencv-python"


class VideoError(RuntimeError):
    """A video or camera cannot be used (missing optional package, unreadable file, no camera)."""


def require(module: str, message: str) -> Any:
    """Import an optional package, or raise :class:`VideoError` with ``message`` (and the import error)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise VideoError(f"{message} ({err})") from err


def video_output_dir(opt: Any) -> str:
    """``--video_out``, or ``results_dir/name/video_<epoch>`` when it is empty."""
    return opt.video_out or os.path.join(opt.results_dir, opt.name, f"video_{opt.epoch}")


def default_direction(model: Any, opt: Any) -> str:
    """``--test_direction`` when it names one, else the model's first direction (A->B for two-way models)."""
    if opt.test_direction != "both":
        if opt.test_direction not in model.directions:
            raise VideoError(
                f"--test_direction {opt.test_direction}: this model only runs {model.directions}"
            )
        return opt.test_direction
    return model.directions[0]


def list_videos(folder: str) -> list[str]:
    """Video files directly in ``folder`` (by extension, case-insensitive), sorted by name."""
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(VIDEO_EXTENSIONS))
    return [os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))]


class FrameTranslator:
    """Preprocess RGB frames like test images and translate them with one direction of ``model``."""

    def __init__(self, model: Any, opt: Any, direction: str) -> None:
        if direction not in model.directions:
            raise VideoError(f"direction {direction}: this model only runs {model.directions}")
        self.model = model
        self.direction = direction
        channels = opt.input_nc if direction == "AtoB" else opt.output_nc
        self.grayscale = channels == 1
        # params=None: a centred crop and no flip, which is what test images get outside training.
        self.transform = get_transform(opt, None)
        param = next(iter(model.parameters()), None)
        self.device = param.device if param is not None else torch.device("cpu")

    def preprocess(self, frame: np.ndarray, name: str = "a frame") -> torch.Tensor:
        """HxWx3 uint8 RGB -> CxHxW float tensor in [-1, 1], resized/cropped as ``--preprocess`` says."""
        img = Image.fromarray(frame)
        if self.grayscale:
            img = img.convert("L")
        return self.transform(img, path=name)

    @torch.no_grad()
    def translate(self, batch: list[torch.Tensor]) -> list[np.ndarray]:
        """Translations of equally sized preprocessed frames, as HxWx3 uint8 arrays of the frames' size."""
        real, (h, w) = pad_to_multiple(torch.stack(batch).to(self.device), self.model.size_multiple())
        visuals = self.model.translate(real, self.direction)
        visuals = {k: v[..., :h, :w] for k, v in visuals.items() if torch.is_tensor(v)}
        fake = visuals[self.model.output_visual(self.direction, visuals)]
        return [tensor2im(fake[i]) for i in range(fake.shape[0])]


def _open_input(av: Any, path: str) -> Any:
    if not os.path.isfile(path):
        raise VideoError(f"video file not found: {path}")
    try:
        container = av.open(path)
    except (OSError, av.error.FFmpegError) as err:
        raise VideoError(f"cannot open video {path}: {err}") from err
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path} has no video stream")
    return container


def _frames(av: Any, container: Any, path: str) -> Iterator[np.ndarray]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame-level threads in the decoder; frames still come out in order
    try:
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as err:
        raise VideoError(f"cannot decode {path}: {err}") from err


class _Mp4Writer:
    """H.264 (yuv420p) mp4 writer that learns the frame size from the first frame it gets."""

    def __init__(self, av: Any, path: str, fps: Fraction) -> None:
        self.av, self.path, self.fps = av, path, fps
        self.container = None
        self.stream = None
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        # yuv420p stores chroma at half resolution, so H.264 needs even sizes: odd ones get one edge row/column.
        h, w = frame.shape[:2]
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        if self.container is None:
            parent = os.path.dirname(self.path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            self.container = self.av.open(self.path, mode="w")
            codec = "libx264" if "libx264" in self.av.codecs_available else "mpeg4"
            # crf 18: visually lossless x264, so the file shows the model's output rather than codec blocks.
            options = {"crf": "18"} if codec == "libx264" else {}
            self.stream = self.container.add_stream(codec, rate=self.fps, options=options)
            self.stream.width, self.stream.height = frame.shape[1], frame.shape[0]
            self.stream.pix_fmt = "yuv420p"
        video_frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)
        self.count += 1

    def close(self) -> None:
        if self.container is None:
            return
        for packet in self.stream.encode():  # flush the encoder's delayed frames
            self.container.mux(packet)
        self.container.close()
        self.container = None


@torch.no_grad()
def translate_video(model: Any, opt: Any, src_path: str, dst_path: str, direction: str = "AtoB") -> int:
    """Translate every frame of ``src_path`` and write them to the mp4 ``dst_path``; returns the frame count.

    Frames are preprocessed like test images, batched ``opt.batch_size`` at a time, and written at the source
    frame rate (``DEFAULT_FPS`` if the container has none). Raises :class:`VideoError` without PyAV.
    """
    av = require("av", AV_MESSAGE)
    translator = FrameTranslator(model, opt, direction)
    container = _open_input(av, src_path)
    try:
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
        writer = _Mp4Writer(av, dst_path, Fraction(fps))
        batch: list[torch.Tensor] = []
        name = os.path.basename(src_path)
        frames = tqdm(
            _frames(av, container, src_path), total=stream.frames or None, desc=name, disable=opt.no_progress
        )
        try:
            for index, frame in enumerate(frames):
                batch.append(translator.preprocess(frame, name=f"{src_path} frame {index}"))
                if len(batch) == opt.batch_size:
                    for out in translator.translate(batch):
                        writer.write(out)
                    batch = []
            if batch:
                for out in translator.translate(batch):
                    writer.write(out)
        finally:
            writer.close()
    finally:
        container.close()
    if writer.count == 0:
        raise VideoError(f"{src_path} has no decodable frames")
    return writer.count


def translate_video_dir(
    model: Any, opt: Any, src_dir: str, dst_dir: str, direction: str = "AtoB"
) -> list[str]:
    """Translate every video directly in ``src_dir`` to ``dst_dir/<stem>.mp4``; returns the written paths."""
    videos = list_videos(src_dir)
    if not videos:
        raise VideoError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) in {src_dir}")
    written = []
    for src in videos:
        dst = os.path.join(dst_dir, os.path.splitext(os.path.basename(src))[0] + ".mp4")
        translate_video(model, opt, src, dst, direction)
        written.append(dst)
    return written


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two HxWx3 uint8 images in one row; ``left`` is resized to ``right``'s height if they differ."""
    if left.shape[0] != right.shape[0]:
        w = max(1, round(left.shape[1] * right.shape[0] / left.shape[0]))
        left = np.asarray(Image.fromarray(left).resize((w, right.shape[0]), Image.BICUBIC))
    return np.concatenate([left, right], axis=1)


@torch.no_grad()
def translate_camera(model: Any, opt: Any, camera_id: int, direction: str = "AtoB") -> int:
    """Show webcam ``camera_id`` and its translation side by side until 'q' is pressed or the window closes.

    Returns the number of frames shown. Raises :class:`VideoError` without OpenCV or when the camera does not
    open. The fork's camera phase compares ``waitKey`` with a value it can never return; this loop masks the key
    code to its low byte, the portable way to read it.
    """
    cv2 = require("cv2", CV2_MESSAGE)
    translator = FrameTranslator(model, opt, direction)
    capture = cv2.VideoCapture(camera_id)
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"cannot open camera {camera_id}")
    window = f"{opt.name} {direction} (q quits)"
    shown = 0
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:  # camera unplugged or stream ended
                break
            x = translator.preprocess(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), name=f"camera {camera_id}")
            (out,) = translator.translate([x])
            cv2.imshow(window, cv2.cvtColor(side_by_side(tensor2im(x), out), cv2.COLOR_RGB2BGR))
            shown += 1
            if cv2.waitKey(1) & 0xFF == ord("q"):
                break
            if cv2.getWindowProperty(window, cv2.WND_PROP_VISIBLE) < 1:  # closed with the mouse
                break
    finally:
        capture.release()
        cv2.destroyAllWindows()
    return shown


def run_from_options(model: Any, opt: Any) -> list[str]:
    """What ``test.py --video PATH`` / ``--camera ID`` does; returns the written video paths (none for a camera)."""
    if opt.video and opt.camera >= 0:
        raise VideoError("give --video or --camera, not both")
    direction = default_direction(model, opt)
    if opt.camera >= 0:
        shown = translate_camera(model, opt, opt.camera, direction)
        print(f"showed {shown} camera frames")
        return []
    out_dir = video_output_dir(opt)
    if os.path.isdir(opt.video):
        written = translate_video_dir(model, opt, opt.video, out_dir, direction)
    else:
        dst = os.path.join(out_dir, os.path.splitext(os.path.basename(opt.video))[0] + ".mp4")
        translate_video(model, opt, opt.video, dst, direction)
        written = [dst]
    print(f"wrote {len(written)} video(s) to {out_dir}")
    return written
