"""Index samplers: a resumable, DDP-aware epoch order and same-size batching for the test loop."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence

import numpy as np
import torch
import torch.utils.data


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit torch seed from (seed, epoch); hashed so that (seed, epoch + 1) is unrelated to (seed + 1, epoch)."""
    state = np.random.SeedSequence([int(seed) % (1 << 64), int(epoch)]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class EpochSampler(torch.utils.data.Sampler[int]):
    """Indices of one epoch for one rank, a pure function of (seed, epoch, rank, world_size, start).

    The order is ``torch.randperm`` from a generator seeded by :func:`epoch_seed` (``range(n)`` without
    shuffling), padded by wrapping around to a multiple of ``world_size`` (or cut down with ``drop_last``),
    then split as ``order[rank::world_size]``, as DistributedSampler does. Call :meth:`set_epoch` at every epoch
    start; it also resets the skip set by :meth:`set_start`.

    ``start`` counts images of the epoch's global order, not of one rank's share: after k steps of batch b on
    W processes the ranks together have read ``order[:k*b*W]``, so a resume with another batch size or number
    of processes continues with ``order[start:]`` (padded and split over the new ranks) and neither skips nor
    repeats an image.
    """

    def __init__(
        self,
        n: int,
        *,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.n = int(n)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` images of the epoch's global order (resume mid-epoch)."""
        if start < 0:
            raise ValueError(f"start must be >= 0, not {start}")
        self.start = int(start)

    def _order(self) -> list[int]:
        if self.shuffle:
            gen = torch.Generator()
            gen.manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.n, generator=gen).tolist()
        else:
            order = list(range(self.n))
        if self.drop_last:
            rest = order[self.start : self.n - self.n % self.world_size]
        else:
            rest = order[self.start :]
            if rest and len(rest) % self.world_size:  # wrap around to equal shares, as DistributedSampler
                total = -(-len(rest) // self.world_size) * self.world_size
                rest = (rest + order * (total // self.n + 1))[:total]
        return rest[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._order())

    def __len__(self) -> int:
        remaining = max(0, self.n - self.start)
        if self.drop_last:
            return max(0, self.n - self.n % self.world_size - self.start) // self.world_size
        return -(-remaining // self.world_size)


class SizeGroupedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of at most ``batch_size`` indices whose images have identical sizes.

    Indices keep their original order inside a batch, and batches come in the order of their first index,
    so with a single size this is plain sequential batching.
    """

    def __init__(self, sizes: Sequence[Hashable], batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        groups: dict[Hashable, list[int]] = {}
        for index, size in enumerate(sizes):
            groups.setdefault(tuple(size) if isinstance(size, list) else size, []).append(index)
        batches = [
            members[i : i + batch_size]
            for members in groups.values()
            for i in range(0, len(members), batch_size)
        ]
        self.batches = sorted(batches, key=lambda batch: batch[0])

    def __iter__(self) -> Iterator[list[int]]:
        return iter([list(batch) for batch in self.batches])

    def __len__(self) -> int:
        return len(self.batches)
