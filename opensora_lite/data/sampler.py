"""Deterministic, resumable batch order shared by one process or many.

The sample stream is the concatenation of seeded permutations of the dataset (epoch 0, 1, ...).
Global step ``s`` takes stream positions ``[s * G, (s + 1) * G)`` (``G`` = global batch) and rank ``r``
takes its contiguous slice. So the order depends only on (seed, step), never on the number of
processes: one process with batch G sees exactly the samples that N processes see together,
resuming at step s needs nothing but s, and a dataset smaller than a batch still fills batches.

Each index carries the epoch of its stream position (:class:`EpochIndex`), so a dataset that draws per
epoch (random clip starts) gets new draws every epoch, in DataLoader workers too, and a resumed run gets
the draws an uninterrupted one got.
"""
import torch
from torch.utils.data import Sampler

from ..errors import ConfigError, DataError


class EpochIndex(int):
    """A dataset index (an int) that also says which epoch of the sample stream asked for it."""

    def __new__(cls, index: int, epoch: int):
        obj = super().__new__(cls, index)
        obj.epoch = epoch
        return obj

    def __reduce__(self):  # DataLoader workers receive indices pickled
        return EpochIndex, (int(self), self.epoch)


class GlobalBatchSampler(Sampler):
    def __init__(self, dataset_len: int, global_batch: int, rank: int = 0, world_size: int = 1,
                 seed: int = 0, start_step: int = 0, num_steps: int = 0, shuffle: bool = True):
        if dataset_len < 1:
            raise DataError("the dataset is empty: no clip to train on")
        if global_batch % world_size:
            raise ConfigError(f"global batch {global_batch} is not divisible by {world_size} processes")
        self.n, self.global_batch, self.local_batch = dataset_len, global_batch, global_batch // world_size
        self.rank, self.seed, self.shuffle = rank, seed, shuffle
        self.start_step, self.num_steps = start_step, num_steps
        self._epoch, self._perm = -1, None

    def _order(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._perm = torch.randperm(self.n, generator=gen) if self.shuffle else torch.arange(self.n)
            self._epoch = epoch
        return self._perm

    def batch_indices(self, step: int) -> list[EpochIndex]:
        """Dataset indices of this rank's part of global step ``step``, each with its epoch."""
        first = step * self.global_batch + self.rank * self.local_batch
        out = []
        for pos in range(first, first + self.local_batch):
            epoch, offset = divmod(pos, self.n)
            out.append(EpochIndex(int(self._order(epoch)[offset]), epoch))
        return out

    def epoch_of(self, step: int) -> float:
        return step * self.global_batch / self.n

    def __iter__(self):
        for step in range(self.start_step, self.start_step + len(self)):
            yield self.batch_indices(step)

    def __len__(self) -> int:
        return self.num_steps
