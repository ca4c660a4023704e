"""History of generated images for the discriminator (Shrivastava et al. 2017), as in the CycleGAN repo."""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor


class ImagePool:
    """Returns a mix of current and earlier fakes so D does not just chase the latest G.

    Per image: while fewer than ``pool_size`` are stored, store it and return it; afterwards, with p = 0.5
    (``random.uniform(0, 1) > 0.5``) return a random stored image and store the new one in its place, else return
    the new one. Draws come from Python's ``random`` module (or ``rng``) in the official order, so a seeded run
    reproduces the official choices. ``pool_size == 0`` returns the input unchanged.
    """

    def __init__(self, pool_size: int, rng: random.Random | None = None) -> None:
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.images: list[Tensor] = []
        self._rng = random if rng is None else rng

    @property
    def num_imgs(self) -> int:
        return len(self.images)

    def query(self, images: Tensor) -> Tensor:
        """Return a batch of the same size as ``images`` (detached), drawn as described above."""
        if self.pool_size == 0:
            return images
        out = []
        for image in images:
            image = image.detach().unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image)
                out.append(image)
            elif self._rng.uniform(0, 1) > 0.5:
                idx = self._rng.randint(0, self.pool_size - 1)
                # The stored image leaves the pool, so it needs no clone; .to follows device/dtype after a resume.
                out.append(self.images[idx].to(image))
                self.images[idx] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        """The stored images (on CPU, each 1xCxHxW, in pool order) for an exact resume."""
        return {"pool_size": self.pool_size, "images": [t.detach().cpu() for t in self.images]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        images = list(state["images"])
        if len(images) > self.pool_size:
            raise ValueError(f"state holds {len(images)} images but pool_size is {self.pool_size}")
        self.images = images
