"""A synthetic dataset that works offline, in every folder layout the framework reads.

Both domains show the same kind of random shapes (circles, triangles, squares, crosses) on a light background.
Domain A paints them from a warm palette on a cream background with faint horizontal stripes; domain B from a
cool palette on a pale blue background with faint grain. Translating A to B means learning that colour mapping,
and :func:`domain_statistic` measures it: the mean of R - B in [-1, 1] tensor space. Measured with seed 0 at
32 px: trainA +0.42 (every image between +0.25 and +0.71), trainB -0.42 (every image between -0.72 and -0.27);
a gray image gives 0. A translator that learned the mapping moves fake_B from about +0.4 towards -0.4.

Train folders are unpaired (independent shapes). In test and val folders, ``testB/i`` shows the same shapes as
``testA/i`` with palette colour k mapped to cool colour k, so those pairs are a ground truth for evaluation.

Usage: ``python -m datasets.make_synthetic ROOT --layout unaligned --size 32 --seed 0``. Generation is
deterministic by its parameters and idempotent: a manifest records them, and a call with different parameters
replaces the files the previous call wrote (and nothing else).
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import os
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

LAYOUTS = ("unaligned", "single", "class_folder")
SHAPES = ("circle", "triangle", "square", "cross")
MANIFEST = "synthetic_manifest.json"
_VERSION = 1
_SUPERSAMPLE = 4  # shapes are drawn 4x larger and box-filtered down, for clean anti-aliased edges

# Palette k of A maps to palette k of B. Every warm colour has R > B, every cool one B > R.
WARM = ((230, 57, 41), (242, 140, 36), (236, 200, 48), (204, 72, 112))
COOL = ((41, 87, 224), (32, 168, 204), (112, 72, 214), (48, 150, 160))
_BACKGROUND = {"A": (246, 236, 216), "B": (216, 230, 246)}
_SPLIT_CODES = {"train": 0, "test": 1, "val": 2}


def domain_statistic(image: Any) -> float:
    """Mean of R - B: clearly positive for domain A, clearly negative for domain B.

    ``image``: a tensor or array in [-1, 1] tensor space, (3, H, W) or (N, 3, H, W); or a uint8 array
    (H, W, 3) / (N, H, W, 3) as read from the PNG files.
    """
    t = image.detach() if isinstance(image, torch.Tensor) else torch.from_numpy(np.array(image))
    if t.dtype == torch.uint8:
        t = t.movedim(-1, -3).to(torch.float32) / 127.5 - 1.0
    if t.dim() < 3 or t.shape[-3] != 3:
        raise ValueError(
            f"domain_statistic needs 3-channel images (..., 3, H, W), got shape {tuple(t.shape)}"
        )
    t = t.to(torch.float32)
    return float((t[..., 0, :, :] - t[..., 2, :, :]).mean())


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind == "cross":
        a = 0.35  # half arm width relative to r
        local = [(a, 1), (a, a), (1, a), (1, -a), (a, -a), (a, -1), (-a, -1), (-a, -a), (-1, -a), (-1, a)]
        local += [(-a, a), (-a, 1)]
    else:
        n = {"triangle": 3, "square": 4}[kind]
        local = [(math.cos(2 * math.pi * k / n), math.sin(2 * math.pi * k / n)) for k in range(n)]
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in local]


def _draw(canvas: ImageDraw.ImageDraw, depth: ImageDraw.ImageDraw, shape: dict, colour, near: int) -> None:
    kind, cx, cy, r, angle = shape["kind"], shape["cx"], shape["cy"], shape["r"], shape["angle"]
    for draw, fill in ((canvas, colour), (depth, near)):
        if kind == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        else:
            draw.polygon(_polygon(kind, cx, cy, r, angle), fill=fill)


def _random_shapes(rng: np.random.Generator, size: int, kinds: tuple[str, ...], count: int) -> list[dict]:
    big = size * _SUPERSAMPLE
    shapes = []
    for _ in range(count):
        r = float(rng.uniform(0.15, 0.3)) * big
        shapes.append(
            {
                "kind": kinds[int(rng.integers(len(kinds)))],
                "r": r,
                "cx": float(rng.uniform(r, big - r)),
                "cy": float(rng.uniform(r, big - r)),
                "angle": float(rng.uniform(0, 2 * math.pi)),
                "palette": int(rng.integers(len(WARM))),
                "jitter": rng.integers(-16, 17, size=3),
                "near": int(rng.integers(200, 256)),
            }
        )
    return shapes


def _render(
    size: int, shapes: list[dict], colours, background, texture: str, rng
) -> tuple[Image.Image, Image.Image]:
    """RGB image and its inverse-depth map (background far at the top, near at the bottom; shapes nearest)."""
    big = size * _SUPERSAMPLE
    img = Image.new("RGB", (big, big), background)
    ramp = np.linspace(50, 150, big, dtype=np.float64)[:, None].repeat(big, axis=1)
    depth = Image.fromarray(ramp.astype(np.uint8))
    canvas, depth_canvas = ImageDraw.Draw(img), ImageDraw.Draw(depth)
    for shape, colour in zip(shapes, colours, strict=True):
        _draw(canvas, depth_canvas, shape, colour, shape["near"])
    img = img.resize((size, size), Image.Resampling.BOX)
    depth = depth.resize((size, size), Image.Resampling.BOX)
    pixels = np.asarray(img, dtype=np.float64)
    if texture == "stripes":
        phase = rng.uniform(0, 2 * math.pi)
        pixels = pixels + 6.0 * np.sin(np.arange(size) * (2 * math.pi / 4) + phase)[:, None, None]
    else:
        pixels = pixels + rng.normal(0.0, 5.0, size=(size, size, 1))
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8)), depth


def _domain_image(size: int, shapes: list[dict], domain: str, rng) -> tuple[Image.Image, Image.Image]:
    palette = WARM if domain == "A" else COOL
    colours = [
        tuple(int(v) for v in np.clip(np.add(palette[s["palette"]], s["jitter"]), 0, 255)) for s in shapes
    ]
    texture = "stripes" if domain == "A" else "grain"
    return _render(size, shapes, colours, _BACKGROUND[domain], texture, rng)


def _write(root: str, rel: str, img: Image.Image, files: list[str]) -> None:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path)
    files.append(rel)


def _write_domain_folder(root, folder, domain, split, n, size, seed, depths, files) -> None:
    code = _SPLIT_CODES[split]
    domain_code = 0 if domain == "A" else 1
    for i in range(n):
        # Train shapes differ between domains (unpaired); test/val shapes are shared (paired ground truth).
        shape_key = [seed, code, domain_code, i] if split == "train" else [seed, code, 2, i]
        shape_rng = np.random.default_rng(shape_key)
        shapes = _random_shapes(shape_rng, size, SHAPES, int(shape_rng.integers(1, 4)))
        img, depth = _domain_image(
            size, shapes, domain, np.random.default_rng([seed, code, domain_code, i, 7])
        )
        stem = f"{domain.lower()}_{i:04d}"
        _write(root, os.path.join(folder, stem + ".png"), img, files)
        if depths:
            _write(root, os.path.join(folder, "depths", stem + ".png"), depth, files)


def _class_colour(k: int, n_classes: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(k / n_classes, 0.8, 0.9)
    return int(r * 255), int(g * 255), int(b * 255)


def _write_class_folders(root, n_train, n_test, size, seed, n_classes, files) -> None:
    width = len(str(n_classes - 1))
    for split, n in (("train", n_train), ("test", n_test)):
        for k in range(n_classes):
            name = f"{k:0{width}d}_{SHAPES[k % len(SHAPES)]}"
            for i in range(n):
                rng = np.random.default_rng([seed, _SPLIT_CODES[split], 10 + k, i])
                shapes = _random_shapes(rng, size, (SHAPES[k % len(SHAPES)],), 1)
                colour = tuple(
                    int(v) for v in np.clip(np.add(_class_colour(k, n_classes), shapes[0]["jitter"]), 0, 255)
                )
                img, _ = _render(size, shapes, [colour], (236, 236, 236), "grain", rng)
                _write(root, os.path.join(split, name, f"{i:04d}.png"), img, files)


def _generate(root: str, p: dict) -> list[str]:
    files: list[str] = []
    size, seed = p["size"], p["seed"]
    if p["layout"] == "unaligned":
        for split, n in (("train", p["n_train"]), ("test", p["n_test"]), ("val", p["n_test"])):
            for domain in "AB":
                _write_domain_folder(root, split + domain, domain, split, n, size, seed, p["depths"], files)
    elif p["layout"] == "single":
        _write_domain_folder(root, "", "A", "train", p["n_train"], size, seed, p["depths"], files)
    else:
        _write_class_folders(root, p["n_train"], p["n_test"], size, seed, p["n_classes"], files)
    return files


def read_manifest(root: str, name: str = MANIFEST) -> dict | None:
    """The manifest a generator wrote into ``root`` (None if absent or unreadable)."""
    try:
        with open(os.path.join(root, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def remove_listed(root: str, manifest: dict, name: str = MANIFEST) -> None:
    """Delete only the files a previous generation listed, then the folders they leave empty."""
    top = os.path.normpath(root)
    folders = set()
    for rel in manifest.get("files", []):
        path = os.path.normpath(os.path.join(top, rel))
        if not path.startswith(top + os.sep):
            continue  # never outside root, whatever the manifest says
        if os.path.isfile(path):
            os.remove(path)
        folders.add(os.path.dirname(path))
    for folder in sorted(folders, key=len, reverse=True):
        while folder.startswith(top + os.sep) and os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
            folder = os.path.dirname(folder)
    os.remove(os.path.join(root, name))


def make_synthetic(
    root: str,
    layout: str = "unaligned",
    size: int = 32,
    n_train: int = 64,
    n_test: int = 8,
    seed: int = 0,
    n_classes: int = 4,
    *,
    depths: bool = False,
) -> str:
    """Write the dataset under ``root`` (if not already there) and return ``root``.

    Layouts: ``unaligned`` (trainA/B with ``n_train`` images each, testA/B and valA/B with ``n_test``),
    ``single`` (``n_train`` domain-A images directly in ``root``), ``class_folder``
    (``train/<class>/`` and ``test/<class>/`` with ``n_train`` / ``n_test`` images per class; class k has its
    own shape type and hue). ``depths`` adds LiSS-style inverse-depth maps in ``<folder>/depths/<stem>.png``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    if size < 8 or n_train < 1 or n_test < 1 or n_classes < 1 or seed < 0:
        raise ValueError("need size >= 8, n_train, n_test, n_classes >= 1 and seed >= 0")
    params = {"layout": layout, "size": size, "n_train": n_train, "n_test": n_test, "seed": seed}
    params.update({"n_classes": n_classes if layout == "class_folder" else None, "depths": depths})
    root = str(root)
    old = read_manifest(root)
    if old is not None:
        unchanged = old.get("version") == _VERSION and old.get("params") == params
        if unchanged and all(os.path.isfile(os.path.join(root, rel)) for rel in old.get("files", [])):
            return root
        remove_listed(root, old)
    os.makedirs(root, exist_ok=True)
    files = _generate(root, params)
    tmp = os.path.join(root, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(
            {"generator": "datasets.make_synthetic", "version": _VERSION, "params": params, "files": files}, f
        )
    os.replace(tmp, os.path.join(root, MANIFEST))  # written last: an interrupted run regenerates
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="output folder (used as --dataroot)")
    parser.add_argument("--layout", choices=LAYOUTS, default="unaligned")
    parser.add_argument("--size", type=int, default=32, help="image width and height in pixels")
    parser.add_argument("--n_train", type=int, default=64, help="training images per domain (per class)")
    parser.add_argument("--n_test", type=int, default=8, help="test/val images per domain (per class)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n_classes", type=int, default=4, help="classes of the class_folder layout")
    parser.add_argument(
        "--depths", action=argparse.BooleanOptionalAction, default=False, help="LiSS depth maps"
    )
    args = parser.parse_args(argv)
    root = make_synthetic(
        args.root,
        args.layout,
        args.size,
        args.n_train,
        args.n_test,
        args.seed,
        args.n_classes,
        depths=args.depths,
    )
    print(f"synthetic {args.layout} dataset in {root}")


if __name__ == "__main__":
    main()
