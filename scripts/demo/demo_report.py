"""Image grid and a zebra-classifier score for the offline horse <-> zebra demo (``real_data_demo.sh``).

    python scripts/demo/demo_report.py --dataroot DATA --out results/demo_horse2zebra.png \
        --result CycleGAN=results/demo_h2z_cyclegan/test_latest/images \
        --result CUT=results/demo_h2z_cut/test_latest/images

The grid has one column per test image (evenly spaced over ``testA``/``testB``) and the rows: the input horses,
each model's horse -> zebra translation, the input zebras, and each two-way model's zebra -> horse translation.

No FID weights exist offline, so the score is a small CNN trained here on the real ``trainA`` (horse) vs
``trainB`` (zebra) images (fixed seed, about 5 s on one CPU thread), with random flips and random brightness:
without the latter it learns "darker than white = zebra" and calls any gray smear a zebra. It reports its
results on the real test images (also at half brightness), then the share of each model's translations it calls
zebra (for fake_A, lower is better). The classifier never saw a translation, but it is small and a generator can
satisfy it with texture a person would not call a zebra: read the score together with the grid.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from data.image_io import list_images  # noqa: E402
from util.image_utils import make_grid_image  # noqa: E402


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _load(path: str, size: int) -> torch.Tensor:
    """A grayscale image as a (1, size, size) tensor in [-1, 1] (results are saved as 3 equal channels)."""
    img = Image.open(path).convert("L")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1.0)[None]


def _stack(paths: list[str], size: int) -> torch.Tensor:
    return torch.stack([_load(p, size) for p in paths])


class _ZebraNet(nn.Module):
    """Two stride-2 convolutions, global average pooling, one logit (zebra)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.head = nn.Linear(2 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv3(F.relu(self.conv2(F.relu(self.conv1(x))))))
        return self.head(x.mean((2, 3)))[:, 0]


def train_classifier(
    horses: torch.Tensor, zebras: torch.Tensor, epochs: int = 20, min_gain: float = 0.35, seed: int = 0
) -> nn.Module:
    """Fit :class:`_ZebraNet` on real horses (label 0) and zebras (label 1), with random flips and brightness."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = _ZebraNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x = torch.cat([horses, zebras])
    y = torch.cat([torch.zeros(len(horses)), torch.ones(len(zebras))])
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 64):
            idx = order[i : i + 64]
            xb = x[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            # Random brightness (black stays black): a gray horse is still a horse, so the classifier has to
            # look for stripes rather than for a darker-than-white silhouette.
            gain = min_gain + (1.0 - min_gain) * torch.rand(len(idx), 1, 1, 1, generator=gen)
            xb = (xb + 1.0) * gain - 1.0
            loss = F.binary_cross_entropy_with_logits(net(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def zebra_share(net: nn.Module, images: torch.Tensor) -> float:
    """Share of ``images`` the classifier calls zebra (4 decimals)."""
    return round(float((net(images) > 0).double().mean()), 4) if len(images) else float("nan")


def _translations(folder: str, label: str) -> dict[str, str]:
    """``{input stem: path}`` of the ``<stem>_<label>.png`` files test.py wrote."""
    suffix = f"_{label}"
    found = {}
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        stem = _stem(name)
        if name.endswith(".png") and stem.endswith(suffix):
            found[stem[: -len(suffix)]] = os.path.join(folder, name)
    return found


def _labelled_grid(rows: list[tuple[str, list[torch.Tensor]]], ncols: int, scale: int) -> Image.Image:
    tiles = [t for _, row in rows for t in row]
    grid = Image.fromarray(make_grid_image([t[None] for t in tiles], nrow=ncols, padding=2))
    grid = grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST)
    font = ImageFont.load_default()
    margin = max(int(ImageDraw.Draw(grid).textlength(name, font=font)) for name, _ in rows) + 12
    out = Image.new("RGB", (grid.width + margin, grid.height), "white")
    out.paste(grid, (margin, 0))
    draw = ImageDraw.Draw(out)
    row_h = grid.height / len(rows)
    for r, (name, _) in enumerate(rows):
        draw.text((6, int(r * row_h + row_h / 2) - 6), name, fill="black", font=font)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataroot", required=True, help="the unaligned horse/zebra dataset")
    parser.add_argument("--result", action="append", default=[], help="NAME=DIR of test.py's images (repeat)")
    parser.add_argument("--out", required=True, help="grid PNG to write")
    parser.add_argument("--ncols", type=int, default=8, help="test images shown")
    parser.add_argument("--scale", type=int, default=3, help="nearest-neighbour upscaling of the grid")
    parser.add_argument("--json", default="", help="also write the scores here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    test_a = list_images(os.path.join(args.dataroot, "testA"), what="test horses")
    test_b = list_images(os.path.join(args.dataroot, "testB"), what="test zebras")
    size = Image.open(test_a[0]).size[0]
    net = train_classifier(
        _stack(list_images(os.path.join(args.dataroot, "trainA"), what="train horses"), size),
        _stack(list_images(os.path.join(args.dataroot, "trainB"), what="train zebras"), size),
    )
    scores: dict = {
        "classifier: real test horses called zebra": zebra_share(net, _stack(test_a, size)),
        "classifier: real test zebras called zebra": zebra_share(net, _stack(test_b, size)),
        "classifier: real test horses at half brightness called zebra": zebra_share(
            net, (_stack(test_a, size) + 1.0) * 0.5 - 1.0
        ),
    }

    pick_a = [test_a[i] for i in np.linspace(0, len(test_a) - 1, args.ncols).round().astype(int)]
    pick_b = [test_b[i] for i in np.linspace(0, len(test_b) - 1, args.ncols).round().astype(int)]
    rows_ab = [("horse (input)", [_load(p, size) for p in pick_a])]
    rows_ba = [("zebra (input)", [_load(p, size) for p in pick_b])]
    for spec in args.result:
        name, _, folder = spec.partition("=")
        for label, picks, rows, target in (
            ("fake_B", pick_a, rows_ab, "zebra"),
            ("fake_A", pick_b, rows_ba, "horse"),
        ):
            found = _translations(folder, label)
            if not found:
                continue
            share = zebra_share(net, _stack(list(found.values()), size))
            scores[f"{name}: {label} ({len(found)} images) called zebra"] = share
            rows.append((f"{name} -> {target}", [_load(found[_stem(p)], size) for p in picks]))
    if len(rows_ab) == 1:
        print(
            f"error: no fake_B images in {', '.join(args.result) or '(no --result given)'}", file=sys.stderr
        )
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    _labelled_grid(rows_ab + rows_ba, args.ncols, args.scale).save(args.out)
    print(f"grid: {args.out}")
    for key, value in scores.items():
        print(f"  {key}: {value:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(scores, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
