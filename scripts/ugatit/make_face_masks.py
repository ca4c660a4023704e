"""Face masks for the enhanced-U-GAT-IT segmentation options, made once with the BiSeNet face parser.

    python -m scripts.ugatit.make_face_masks --weights 79999_iter.pth --dataroot ./datasets/selfie2anime \
        --mask_dir ./datasets/selfie2anime_masks [--phases trainA trainB testA testB] [--parts 1,2,...,13,17] \
        [--glass_mouth_background] [--hard_edge] [--gpu_ids 0] [--batch_size 8]

(``python scripts/ugatit/make_face_masks.py ...`` works too.) Then train with
``--model ugatit_enhanced --dataset_mode ugatit --mask_dir ./datasets/selfie2anime_masks --seg_fix_weight 1 ...``.

For every image of ``<dataroot>/<phase>`` (the files ``--dataset_mode ugatit`` reads, not recursive) it writes
``<mask_dir>/<phase>/<stem>.png``, a grey (L-mode) image of the image's size: 255 where the face parser is sure
the pixel belongs to one of ``--parts``, 0 where it is sure it does not, the probability x 255 in between. This
is the path and format the dataset reads, and the model applies the fork's soft edges (or ``--hard_seg_edge``)
and its close + erode itself, so the default masks carry the raw probabilities. ``--skip_existing`` resumes an
interrupted run. A file that cannot be decoded is reported and skipped (exit status 1 at the end).

As zheng-yuwei/enhanced-UGATIT ``faceseg/FaceSegmentation.py``: the RGB image in [0, 1] is resized to
``--net_size`` (512, the checkpoint's training size) with bilinear, ``align_corners=True`` interpolation (a
non-square image is squashed), normalised with the ImageNet mean/std and parsed by BiSeNet; the main head's
logits are resized back with bicubic, ``align_corners=True`` interpolation, a softmax gives the 19 class
probabilities and the mask is the sum of the probabilities of the chosen classes (default 1-13 and 17: skin,
brows, eyes, glasses, ears, earrings, nose, mouth, lips, hair; not background, neck, necklace, cloth, hat).
``--hard_edge`` writes 255 where that sum is at least 0.5 and 0 elsewhere (the fork's ``--hard_seg_edge``
applied at mask time).

Deviations: the fork parses every training crop online; here the whole image is parsed once and its mask is
resized, cropped and flipped with it. The fork's ``--seg_fix_glass_mouth`` edits only the eroded mask of
``--seg_fix_weight`` (mouth removed; glasses reduced to their eroded probability); with one mask file per
image, ``--glass_mouth_background`` instead drops glasses (6) and mouth (11) from ``--parts``, for every use
of the mask. The weights ``79999_iter.pth`` are not shipped: see :data:`models.networks.bisenet.WEIGHTS_PAGE`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from data.base_dataset import require_subfolder  # noqa: E402
from data.image_io import DataError, list_images, load_image  # noqa: E402
from data.transforms import to_tensor  # noqa: E402
from models.networks.bisenet import FACE_PARTS, FaceParserWeightsError, load_bisenet  # noqa: E402
from util.distributed import DistInfo, select_device  # noqa: E402

PHASES = ("trainA", "trainB", "testA", "testB")
# The fork's normal_parts: every face part and hair; background, neck, necklace, cloth and hat are not translated.
DEFAULT_PARTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 17)
GLASS_MOUTH = (FACE_PARTS.index("eye_g"), FACE_PARTS.index("mouth"))  # (6, 11)
# torchvision's ImageNet statistics, which the face-parsing checkpoint was trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def parse_parts(spec: str) -> tuple[int, ...]:
    """argparse type: comma-separated class indices of :data:`FACE_PARTS`, e.g. ``1,2,17``."""
    try:
        parts = tuple(int(p) for p in spec.split(",") if p.strip())
    except ValueError:
        parts = ()
    if not parts or any(not 0 <= p < len(FACE_PARTS) for p in parts):
        names = ", ".join(f"{i} {name}" for i, name in enumerate(FACE_PARTS))
        raise argparse.ArgumentTypeError(
            f"expected comma-separated class indices out of: {names}; got {spec!r}"
        )
    return tuple(sorted(set(parts)))


def selected_parts(parts: Sequence[int], glass_mouth_background: bool) -> tuple[int, ...]:
    """The classes that count as foreground: ``parts``, without glasses and mouth if they are background."""
    drop = set(GLASS_MOUTH) if glass_mouth_background else set()
    return tuple(p for p in parts if p not in drop)


def mask_from_probs(probs: torch.Tensor, parts: Sequence[int], hard: bool = False) -> torch.Tensor:
    """(B, 1, H, W) mask in [0, 1] from class probabilities (B, C, H, W): the summed probability of ``parts``.

    ``hard``: 1 where that sum is >= 0.5, else 0 (the fork's ``--hard_seg_edge`` threshold).
    """
    mask = probs[:, list(parts)].sum(dim=1, keepdim=True).clamp_(0.0, 1.0)
    return (mask >= 0.5).to(mask.dtype) if hard else mask


def to_mask_image(mask: torch.Tensor) -> Image.Image:
    """An (H, W) or (1, H, W) mask in [0, 1] as an L-mode image, rounded to 0..255."""
    array = np.rint(mask.detach().float().cpu().numpy().reshape(mask.shape[-2:]) * 255.0)
    return Image.fromarray(array.clip(0, 255).astype(np.uint8), mode="L")


def mask_path(mask_dir: str, image_path: str) -> str:
    """Where ``--dataset_mode ugatit`` looks for the mask of ``image_path``: ``<mask_dir>/<folder>/<stem>.png``."""
    folder = os.path.basename(os.path.dirname(image_path))
    return os.path.join(mask_dir, folder, os.path.splitext(os.path.basename(image_path))[0] + ".png")


class ParserInputs(Dataset):
    """Images as BiSeNet inputs: (3, net_size, net_size) ImageNet-normalised, with their (H, W) and path."""

    def __init__(self, paths: Sequence[str], net_size: int) -> None:
        self.paths = list(paths)
        self.net_size = net_size
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, tuple[int, int], str, str]:
        """(input, (H, W), path, ""), or (None, (0, 0), path, error) for a file that cannot be decoded."""
        path = self.paths[index]
        try:
            rgb = to_tensor(load_image(path, 3), normalize=False).unsqueeze(0)
        except DataError as err:  # reported at the end, so one bad file does not stop a long run
            return None, (0, 0), path, str(err)
        size = (self.net_size, self.net_size)
        x = F.interpolate(rgb, size=size, mode="bilinear", align_corners=True)[0]
        return (x - self.mean) / self.std, tuple(rgb.shape[2:]), path, ""


def collate(items: list) -> tuple[torch.Tensor | None, list[tuple[int, int]], list[str], list[str]]:
    """The decodable images stacked, their sizes and paths, and the error messages of the others."""
    good = [item for item in items if item[0] is not None]
    errors = [item[3] for item in items if item[0] is None]
    inputs = torch.stack([item[0] for item in good]) if good else None
    return inputs, [item[1] for item in good], [item[2] for item in good], errors


@torch.no_grad()
def parse_batch(
    net: torch.nn.Module, inputs: torch.Tensor, sizes: Sequence[tuple[int, int]]
) -> list[torch.Tensor]:
    """Per image, the (1, C, H, W) class probabilities at the image's own size (H, W)."""
    logits = net(inputs, with_aux=False)
    return [
        F.interpolate(logits[i : i + 1], size=size, mode="bicubic", align_corners=True).softmax(dim=1)
        for i, size in enumerate(sizes)
    ]


def phase_images(dataroot: str, phases: Sequence[str]) -> dict[str, list[str]]:
    """The images of each phase folder; a DataError naming the folders that do exist when one is missing."""
    return {
        phase: list_images(require_subfolder(dataroot, phase, "images to parse"), what=f"{phase} images")
        for phase in phases
    }


def warn_stem_clashes(paths: Sequence[str]) -> None:
    """Images that differ only by extension share one mask file (the dataset looks masks up by stem)."""
    seen: dict[str, str] = {}
    for path in paths:
        stem = os.path.splitext(path)[0]
        if stem in seen:
            print(
                f"warning: {seen[stem]} and {path} share the mask {stem}.png; the later one wins",
                file=sys.stderr,
            )
        seen[stem] = path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--weights", required=True, help="the face-parsing checkpoint 79999_iter.pth")
    p.add_argument("--dataroot", required=True, help="dataset folder holding the phase folders (trainA, ...)")
    p.add_argument(
        "--mask_dir", required=True, help="output folder; masks go to <mask_dir>/<phase>/<stem>.png"
    )
    p.add_argument(
        "--phases",
        nargs="+",
        default=None,
        help="phase folders to parse (default: those of trainA trainB testA testB that exist)",
    )
    p.add_argument(
        "--parts",
        type=parse_parts,
        default=DEFAULT_PARTS,
        help="comma-separated classes that make the mask (default 1-13,17: face parts and hair; "
        + ", ".join(f"{i} {n}" for i, n in enumerate(FACE_PARTS))
        + ")",
    )
    p.add_argument(
        "--glass_mouth_background",
        action="store_true",
        help="leave glasses (6) and mouth (11) out of the mask (close to the fork's --seg_fix_glass_mouth)",
    )
    p.add_argument(
        "--hard_edge", action="store_true", help="write 0/255 masks (threshold 0.5) instead of soft ones"
    )
    p.add_argument("--net_size", type=int, default=512, help="BiSeNet input size (the checkpoint's: 512)")
    p.add_argument(
        "--gpu_ids", default="0", help="GPU id, or -1 for the CPU (falls back to the CPU without CUDA)"
    )
    p.add_argument("--batch_size", type=int, default=8, help="images per BiSeNet forward")
    p.add_argument("--num_workers", type=int, default=2, help="image-loading worker processes")
    p.add_argument("--skip_existing", action="store_true", help="keep masks that already exist")
    p.add_argument("--no_progress", action="store_true", help="no tqdm progress bars")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.gpu_ids = [int(g) for g in str(args.gpu_ids).split(",") if g.strip() and int(g) >= 0]
    except ValueError:
        parser.error(f"--gpu_ids: expected comma-separated integers (-1 for the CPU), got {args.gpu_ids!r}")
    for name in ("net_size", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.net_size % 32:
        parser.error("--net_size must be a multiple of 32 (BiSeNet's 1/32 feature map)")
    args.parts = selected_parts(args.parts, args.glass_mouth_background)
    if not args.parts:
        parser.error("no classes left for the mask: --glass_mouth_background removed every one of --parts")
    return args


def masks_for_phase(
    net: torch.nn.Module, paths: Sequence[str], device: torch.device, args, desc: str
) -> list[str]:
    """Write the masks of ``paths``; returns the error messages of the images that could not be decoded."""
    loader = DataLoader(
        ParserInputs(paths, args.net_size),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        collate_fn=collate,
    )
    errors: list[str] = []
    with tqdm(total=len(paths), desc=desc, unit="img", disable=args.no_progress) as bar:
        for inputs, sizes, batch_paths, batch_errors in loader:
            errors += batch_errors
            if inputs is not None:
                for probs, path in zip(parse_batch(net, inputs.to(device), sizes), batch_paths):
                    mask = mask_from_probs(probs, args.parts, args.hard_edge)
                    to_mask_image(mask).save(mask_path(args.mask_dir, path))
            bar.update(len(batch_paths) + len(batch_errors))
    return errors


def make_masks(args: argparse.Namespace) -> tuple[int, list[str]]:
    """Parse every image of the chosen phases and write its mask: (masks written, errors of unreadable files)."""
    phases = args.phases or [ph for ph in PHASES if os.path.isdir(os.path.join(args.dataroot, ph))]
    if not phases:
        raise DataError(f"--dataroot {args.dataroot} holds none of {', '.join(PHASES)} (choose --phases)")
    images = phase_images(args.dataroot, phases)  # every folder is checked before the long run starts
    net = load_bisenet(args.weights)
    device = select_device(args.gpu_ids, DistInfo())
    net.to(device)
    written, errors = 0, []
    for phase, paths in images.items():
        warn_stem_clashes(paths)
        os.makedirs(os.path.dirname(mask_path(args.mask_dir, paths[0])), exist_ok=True)
        if args.skip_existing:
            paths = [p for p in paths if not os.path.isfile(mask_path(args.mask_dir, p))]
        phase_errors = masks_for_phase(net, paths, device, args, phase)
        written += len(paths) - len(phase_errors)
        errors += phase_errors
    print(f"wrote {written} masks under {args.mask_dir} (classes {','.join(map(str, args.parts))})")
    return written, errors


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        _, errors = make_masks(args)
    except (DataError, FaceParserWeightsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    if errors:  # --dataset_mode ugatit would stop on these files too
        print(f"error: no mask for {len(errors)} unreadable image(s); fix or remove them", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
