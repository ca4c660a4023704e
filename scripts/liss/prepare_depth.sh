#!/usr/bin/env bash
# MegaDepth inverse-depth maps for LiSS's depth task: writes DATAROOT/<folder>/depths/<stem>.png for every
# image of DATAROOT/{train,test,val}{A,B} (the layout --dataset_mode liss reads).
#
# As the LiSS README says, the maps are inferences of MegaDepth (Li & Snavely, CVPR 2018), following its
# demo.py: the photo resized to 512x384, the hourglass network's log depth, inverse depth exp(-log depth)
# divided by its maximum, saved as 8-bit PNG; here the map is also resized back to the photo's size.
#   code:    https://github.com/zhengqili/MegaDepth (MIT), commit 25e8b9fbc02a8922b07ed192a8902d82e370f632
#   weights: http://www.cs.cornell.edu/projects/megadepth/dataset/models/best_generalization_net_G.pth
#            (the model the MegaDepth README recommends for arbitrary photos)
# The authors' horse2zebra with depth maps (LiSS README):
#   https://drive.google.com/file/d/1vd7GrYSIJ6yV_yr4Xa3o1HV2cXe65tf7/view?usp=sharing
#
# Usage (from the repository root): bash scripts/liss/prepare_depth.sh ./datasets/horse2zebra [MEGADEPTH_DIR]
# Needs git, wget and this repository's Python environment; uses a GPU when one is visible. Existing maps are
# kept, so an interrupted run can be restarted.
set -euo pipefail

DATAROOT="${1:?usage: $0 DATAROOT [MEGADEPTH_DIR]}"
MEGADEPTH_DIR="${2:-./third_party/MegaDepth}"
MEGADEPTH_REPO="https://github.com/zhengqili/MegaDepth"
MEGADEPTH_COMMIT="25e8b9fbc02a8922b07ed192a8902d82e370f632"
WEIGHTS_URL="http://www.cs.cornell.edu/projects/megadepth/dataset/models/best_generalization_net_G.pth"
WEIGHTS="$MEGADEPTH_DIR/checkpoints/test_local/best_generalization_net_G.pth"

if [[ ! -d "$MEGADEPTH_DIR/.git" ]]; then
    git clone "$MEGADEPTH_REPO" "$MEGADEPTH_DIR"
fi
git -C "$MEGADEPTH_DIR" checkout -q "$MEGADEPTH_COMMIT"
if [[ ! -f "$WEIGHTS" ]]; then
    mkdir -p "$(dirname "$WEIGHTS")"
    wget -O "$WEIGHTS.part" "$WEIGHTS_URL"
    mv "$WEIGHTS.part" "$WEIGHTS"
fi

python - "$DATAROOT" "$MEGADEPTH_DIR" "$WEIGHTS" <<'PYTHON'
import os
import sys

import numpy as np
import torch
from PIL import Image

dataroot, megadepth_dir, weights = sys.argv[1:4]
sys.path.insert(0, megadepth_dir)
import pytorch_DIW_scratch  # noqa: E402  (MegaDepth's hourglass network, a module-level nn.Sequential)

net = pytorch_DIW_scratch.pytorch_DIW_scratch
# The file is the state_dict of a DataParallel wrapper saved by PyTorch 0.2: strip "module.", and accept the
# BatchNorm "num_batches_tracked" counters that PyTorch added later (unused in eval mode).
state = torch.load(weights, map_location="cpu", weights_only=True)
state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
missing, unexpected = net.load_state_dict(state, strict=False)
if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
    sys.exit(f"unexpected MegaDepth weights: missing {missing[:5]}, unexpected {unexpected[:5]}")
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
net = net.to(device).eval()

extensions = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
folders = [f for f in sorted(os.listdir(dataroot))
           if f.startswith(("train", "test", "val")) and os.path.isdir(os.path.join(dataroot, f))]
if not folders:
    sys.exit(f"no train*/test*/val* folders in {dataroot}")
for folder in folders:
    src = os.path.join(dataroot, folder)
    dst = os.path.join(src, "depths")
    os.makedirs(dst, exist_ok=True)
    names = [n for n in sorted(os.listdir(src)) if n.lower().endswith(extensions)]
    done = 0
    for name in names:
        out = os.path.join(dst, os.path.splitext(name)[0] + ".png")
        if os.path.exists(out):
            continue
        img = Image.open(os.path.join(src, name)).convert("RGB")
        x = np.asarray(img.resize((512, 384), Image.BILINEAR), dtype=np.float32) / 255.0
        x = torch.from_numpy(x).permute(2, 0, 1)[None].to(device)
        with torch.no_grad():
            log_depth = net(x)[0, 0].double().cpu()
        inverse = torch.exp(-log_depth)
        inverse = (inverse / inverse.max()).numpy()
        depth = Image.fromarray(np.uint8(np.clip(np.rint(inverse * 255), 0, 255)))
        depth.resize(img.size, Image.BILINEAR).save(out)
        done += 1
    print(f"{folder}: {done} new depth maps, {len(names) - done} already there")
PYTHON
