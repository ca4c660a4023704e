"""Finding and decoding image files, with errors that name the file or folder at fault.

Real dataset folders mix grayscale, palette, RGBA, CMYK, 16-bit and float images and the odd truncated download.
``PIL.Image.convert('RGB')`` alone mishandles several of them, so every mode is converted explicitly here:

- 8-bit 'RGB' and 'L' files are only ``convert``-ed, so their pixels are exactly the official CycleGAN code's
  (``Image.open(path).convert('RGB')``).
- 16-bit and float one-channel images ('I;16*', 'I', 'F'): ``convert`` clips them at 255, so a 16-bit value of
  40000 would be pure white. They are scaled to 8 bits instead: 'I;16*' by its full range (x / 257); 'I' the same
  when every value fits 0..65535 (16-bit PNG/PGM data); 'F' by 255 when it holds [0, 1] data, as is when it
  holds [0, 255] data. Anything else (negative or larger values) is min-max stretched per image, with a warning
  printed once per process, since its scale is unknown.
- Transparent images ('RGBA', 'LA', 'PA', 'P' with a transparent entry) are composited over white. Here we
  deliberately differ from the official code, which drops alpha and shows whatever colour the editor stored
  under transparent pixels (often black, sometimes leftovers).
- '1', palette, 'CMYK' (Adobe's inverted CMYK JPEGs included), 'YCbCr' and 'LAB' go through ``convert('RGB')``.
- The EXIF Orientation tag is applied (training, test.py and demo.py alike), so phone photos are used upright,
  as viewers show them. The official code applies it only to TIFF files (Pillow does that on load).

Listing skips macOS resource forks (``._photo.jpg``): they carry an image extension but hold no image, and
datasets copied from a Mac are full of them.
"""

from __future__ import annotations

import os
import struct

import numpy as np
from PIL import Image

IMG_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)

# Errors PIL raises for files it cannot identify or decode (truncated data, broken chunks, bad headers).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)

# EXIF orientation tag and the transpose that shows each orientation upright (EXIF 2.3, tag 0x0112).
_EXIF_ORIENTATION = 0x0112
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class DataError(ValueError):
    """A dataset problem the user must fix (missing folder, undecodable file, image too small...).

    A DataLoader worker's DataError reaches the main process rebuilt from a message that wraps the original in
    "Caught DataError in DataLoader worker process N" and the worker's traceback; only the original message is
    kept, so an error reads the same with and without workers.
    """

    def __init__(self, message: object = "", *args: object) -> None:
        text = str(message)
        if "in DataLoader worker process" in text and "DataError: " in text:
            message = text[text.rindex("DataError: ") + len("DataError: ") :].strip()
        super().__init__(message, *args)


def is_image_file(name: str) -> bool:
    """True when ``name`` (a file name or path) ends with one of :data:`IMG_EXTENSIONS`, in any case, and is
    not a macOS resource fork (see :func:`is_resource_fork`)."""
    return name.lower().endswith(IMG_EXTENSIONS) and not is_resource_fork(name)


def is_resource_fork(name: str) -> bool:
    """True for macOS AppleDouble files (``._photo.jpg``): copies from a Mac to other disks or zip files hold
    one beside every image, with the image's extension but no image in it, so reading one would stop training."""
    return os.path.basename(name).startswith("._")


def _warn_resource_forks(folder: str, paths: list[str]) -> None:
    """One warning per listed folder naming how many resource forks it skips (none: no warning)."""
    forks = sum(1 for path in paths if is_resource_fork(path))
    if forks:
        print(f"warning: skipped {forks} macOS resource-fork file(s) ('._*', not images) in {folder}")


def read_image_list(list_file: str, root: str = "", *, what: str = "images") -> list[str]:
    """Image paths named by a text file, one per line, in the file's order (UNIT's ``data_list_*`` mode).

    Relative lines are resolved against ``root`` (default: the list file's folder); blank lines and lines
    starting with ``#`` are skipped. Every listed file must exist and look like an image, so a stale list fails
    at start-up with the offending lines instead of mid-epoch.
    """
    if not os.path.isfile(list_file):
        raise DataError(f"list file of {what} not found: {list_file}")
    base = root or os.path.dirname(os.path.abspath(list_file))
    if root and not os.path.isdir(root):
        raise DataError(f"root folder for the list {list_file} not found: {root}")
    with open(list_file, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    entries = [(n, line) for n, line in enumerate(lines, 1) if line and not line.startswith("#")]
    if not entries:
        raise DataError(f"list file {list_file} names no {what}")
    paths = [(n, line if os.path.isabs(line) else os.path.join(base, line)) for n, line in entries]
    bad = [f"line {n}: {path}" for n, path in paths if not (is_image_file(path) and os.path.isfile(path))]
    if bad:
        shown = "; ".join(bad[:5]) + (f"; ... ({len(bad)} in all)" if len(bad) > 5 else "")
        raise DataError(f"list file {list_file} names missing or non-image files ({what}): {shown}")
    return [path for _, path in paths]


def list_images(folder: str, *, recursive: bool = False, what: str = "images") -> list[str]:
    """Sorted paths of the image files in ``folder``.

    Not recursive by default: LiSS keeps depth maps in ``<folder>/depths/``, which must not be read as images.
    ``what`` describes the expected content in error messages (e.g. "domain A training images").
    """
    if not os.path.exists(folder):
        raise DataError(f"folder of {what} not found: {folder}")
    if not os.path.isdir(folder):
        raise DataError(f"expected a folder of {what}, but {folder} is not a directory")
    if recursive:
        found = [os.path.join(dirpath, name) for dirpath, names in _walk_once(folder) for name in names]
    else:
        found = [os.path.join(folder, name) for name in os.listdir(folder)]
        found = [path for path in found if path.lower().endswith(IMG_EXTENSIONS) and os.path.isfile(path)]
    _warn_resource_forks(folder, found)
    paths = [path for path in found if not is_resource_fork(path)]
    if not paths:
        where = "or its subfolders " if recursive else ""
        raise DataError(
            f"no {what} found in {folder} {where}(looked for files ending in {', '.join(IMG_EXTENSIONS)})"
        )
    return sorted(paths)


def _walk_once(folder: str):
    """``os.walk`` following folder links, each real folder once; a link back up (a loop) is skipped with a warning.

    A link to an enclosing folder would otherwise be walked until the path length limit (one class counted
    dozens of times) or pull in the images of sibling folders.
    """
    seen = {os.path.realpath(folder)}
    for dirpath, dirnames, names in os.walk(folder, followlinks=True):
        here, kept = os.path.realpath(dirpath), []
        for name in sorted(dirnames):
            real = os.path.realpath(os.path.join(dirpath, name))
            if real in seen or os.path.commonpath([real, here]) == real:
                print(f"warning: {os.path.join(dirpath, name)} leads back to {real} (a link loop); skipped")
                continue
            seen.add(real)
            kept.append(name)
        dirnames[:] = kept
        yield dirpath, [name for name in names if name.lower().endswith(IMG_EXTENSIONS)]


def _over_white(img: Image.Image) -> Image.Image:
    """Composite an image with alpha over a white background and return it as RGB.

    Dropping alpha (what ``convert('RGB')`` does) exposes the colour stored under transparent pixels, which is
    arbitrary (black, or leftovers from the editor) and differs between encoders of the same picture. White is how
    such images (icons, sketches, cut-out objects) are shown on a page, and makes the result well defined.
    """
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_8bit(array: np.ndarray, full_scale: float) -> Image.Image:
    """Scale ``array`` from [0, full_scale] to an 8-bit 'L' image, rounding rather than truncating."""
    scaled = np.clip(np.rint(array.astype(np.float64) * (255.0 / full_scale)), 0, 255)
    return Image.fromarray(scaled.astype(np.uint8))


# Set once the min-max warning is printed: one line per process, not one per image of a float dataset.
_MINMAX_WARNED: list[bool] = [False]


def _minmax_to_8bit(array: np.ndarray, mode: str, source: str) -> Image.Image:
    """Stretch [min, max] to [0, 255]; the data have no known scale, so the brightness of each image is lost
    (the user is told once, with the first file, and may rescale the files)."""
    lo, hi = float(array.min()), float(array.max())
    if not _MINMAX_WARNED[0]:
        _MINMAX_WARNED[0] = True
        print(
            f"warning: {source or 'an image'} is a '{mode}' image with values in [{lo:g}, {hi:g}], which has no "
            "known 8-bit scale; such images are min-max stretched, each on its own (reported once)"
        )
    if hi <= lo:
        return Image.fromarray(np.zeros(array.shape, np.uint8))
    return _to_8bit(array - lo, hi - lo)


def _high_depth_to_l(img: Image.Image, source: str) -> Image.Image:
    """One-channel 16-bit, 32-bit integer and float images to 8-bit 'L'.

    - 'I;16*': the file's bit depth defines the range, so 65535 maps to 255 (x / 257).
    - 'I' (32-bit integer): older Pillow versions decode 16-bit PNGs to this mode, so values within [0, 65535]
      are read as 16-bit data; anything outside that range has no defined scale and is min-max stretched.
    - 'F' (float): [0, 1] data are scaled by 255, [0, 255] data kept, any other range is min-max stretched;
      NaN and infinities become 0.
    """
    array = np.asarray(img)
    if img.mode.startswith("I;16"):
        return _to_8bit(array, 65535.0)
    if img.mode == "I":
        if array.min() >= 0 and array.max() <= 65535:
            return _to_8bit(array, 65535.0)
        return _minmax_to_8bit(array, img.mode, source)
    array = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(array.min()), float(array.max())
    if lo >= 0.0 and hi <= 1.0:
        return _to_8bit(array, 1.0)
    if lo >= 0.0 and hi <= 255.0:
        return _to_8bit(array, 255.0)
    return _minmax_to_8bit(array, img.mode, source)


def to_channels(img: Image.Image, channels: int, source: str = "") -> Image.Image:
    """A decoded image of any mode as 'L' (``channels == 1``) or 'RGB', by the rules of the module docstring.

    Shared by the datasets and demo.py's uploads, so a file looks the same in training, test.py and the demo.
    ``source`` (the file) is named in the one-time warning about images without a known scale.
    """
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        img = _high_depth_to_l(img, source)
    elif mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in img.info):
        img = _over_white(img)
    elif mode not in ("L", "RGB"):
        # '1', 'P' without transparency, 'CMYK' (Pillow undoes Adobe's inverted CMYK JPEGs), 'YCbCr', ...
        img = img.convert("RGB")
    return img.convert("L" if channels == 1 else "RGB")


def _orientation(img: Image.Image) -> int:
    """EXIF orientation still to apply, read from the header only (1: none).

    Pillow's PNG reader decodes the whole file to look for an eXIf chunk stored after the pixels; such chunks
    are ignored so that :func:`image_size` stays a header read and agrees with :func:`load_image`.
    Pillow's TIFF reader applies the tag itself (its size is already upright at open, its pixels on load), so
    turning a TIFF again would show it upside down or sideways.
    """
    if img.format == "TIFF" or (img.format == "PNG" and "exif" not in img.info):
        return 1
    orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    return orientation if orientation in _EXIF_TRANSPOSE else 1


def load_image(path: str, channels: int) -> Image.Image:
    """Decode ``path`` fully and return it as mode 'L' (``channels == 1``) or 'RGB' (``channels == 3``).

    The full decode (``.load()``) happens here, so a truncated file fails now with its name instead of
    deep inside a worker process; ``ImageFile.LOAD_TRUNCATED_IMAGES`` is deliberately left alone.
    The EXIF orientation is applied, so phone photos are used the way viewers show them.
    """
    if channels not in (1, 3):
        raise DataError(f"images can be loaded with 1 or 3 channels, not {channels} (file {path})")
    try:
        with Image.open(path) as img:
            orientation = _orientation(img)
            img.load()
            if orientation != 1:
                img = img.transpose(_EXIF_TRANSPOSE[orientation])
            return to_channels(img, channels, path)
    except DataError:
        raise
    except FileNotFoundError as err:
        raise DataError(f"image file not found: {path}") from err
    except _DECODE_ERRORS as err:
        raise DataError(f"cannot decode image file {path} (truncated or corrupt?): {err}") from err


def image_size(path: str) -> tuple[int, int]:
    """(width, height) of ``path`` as :func:`load_image` returns it, from the header only (no pixel decode)."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            if _orientation(img) in (5, 6, 7, 8):  # quarter turns swap width and height
                w, h = h, w
            return w, h
    except FileNotFoundError as err:
        raise DataError(f"image file not found: {path}") from err
    except _DECODE_ERRORS as err:
        raise DataError(f"cannot read the header of image file {path}: {err}") from err
