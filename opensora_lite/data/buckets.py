"""Buckets of (resolution, frames, aspect ratio): mixed clips trained without padding or distortion.

``bucket_config`` has Open-Sora's form, resolution -> frames -> (probability, batch size):

    {"144p": {1: (1.0, 64), 17: (1.0, 8)}, "240p": {17: (0.5, 4)}}

* A clip goes to the largest bucket it fits: the largest resolution whose pixel count it reaches, then the most
  frames it has, at the listed aspect ratio nearest its own (``aspect.py``). A bucket's probability p keeps a
  fitting clip there with probability p (drawn from seed, epoch and clip), else the clip tries the next smaller
  one, as Open-Sora does. Images (1 frame) only fit 1-frame buckets. The clip is then resized to cover the
  bucket's size and centre-cropped (``video_read``), so nothing is stretched.
* A batch holds one bucket, so nothing is padded. A bucket's batch size is its own, or from a token budget:
  ``batch_tokens / tokens(bucket)``, so memory stays even across buckets.
* No zero batches: a bucket with fewer clips than its batch size is merged into the nearest smaller bucket (of the
  same aspect ratio: fewer frames first, then a lower resolution), or dropped when there is none. Every clip of
  a kept bucket is used once an epoch; the last batch of a bucket is filled with clips of the same bucket.
* :class:`BucketBatchSampler` orders the batches of an epoch from (seed, epoch) alone, and global step s is the
  s-th batch of the stream of epochs, split across ranks: exact resume and N processes = 1 hold as for
  :class:`~opensora_lite.data.sampler.GlobalBatchSampler`.
"""
import hashlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import Sampler

from ..aspect import closest_ratio, pixels, size_of
from ..errors import ConfigError, DataError
from .sampler import EpochIndex


@dataclass(frozen=True, order=True)
class Bucket:
    """One bucket: a named resolution, a frame count and an aspect-ratio key ("0.56")."""

    resolution: str
    frames: int
    ratio: str

    @property
    def size(self) -> Tuple[int, int]:
        """(height, width) in pixels."""
        return size_of(self.resolution, self.ratio)

    def __str__(self) -> str:
        height, width = self.size
        return f"{self.resolution} {self.frames}f {height}x{width}"


@dataclass
class BucketPlan:
    """What one epoch's assignment gives: the kept buckets, their clips and batch sizes, and what was merged."""

    clips: Dict[Bucket, List[int]]  # bucket -> clip indices (sorted)
    batch_sizes: Dict[Bucket, int]
    merged: Dict[Bucket, Optional[Bucket]]  # a bucket too small for one batch -> where its clips went (None: dropped)
    unfit: List[int]  # clips not used this epoch: they fit no bucket, or theirs was dropped


def check_bucket_config(config) -> Dict[str, Dict[int, Tuple[float, Optional[int]]]]:
    """``bucket_config`` normalised, or a ConfigError naming what is wrong."""
    if not isinstance(config, dict) or not config:
        raise ConfigError(f"bucket_config must be a dict resolution -> {{frames: (probability, batch size)}}, "
                          f"e.g. {{'144p': {{1: (1.0, 64), 17: (1.0, 8)}}}}; got {config!r}")
    out = {}
    for resolution, frames in config.items():
        try:
            pixels(resolution)
        except ConfigError as err:
            raise ConfigError(f"bucket_config: {err}") from None
        if not isinstance(frames, dict) or not frames:
            raise ConfigError(f"bucket_config[{resolution!r}] must be a dict frames -> (probability, batch size)")
        out[resolution] = {}
        for count, spec in frames.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ConfigError(f"bucket_config[{resolution!r}]: frame counts must be positive ints, got {count!r}")
            if not isinstance(spec, (tuple, list)) or len(spec) != 2:
                raise ConfigError(f"bucket_config[{resolution!r}][{count}] must be (probability, batch size), "
                                  f"got {spec!r}")
            prob, batch = spec
            if not isinstance(prob, (int, float)) or not 0 < prob <= 1:
                raise ConfigError(f"bucket_config[{resolution!r}][{count}]: probability must be in (0, 1], "
                                  f"got {prob!r}")
            if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
                raise ConfigError(f"bucket_config[{resolution!r}][{count}]: batch size must be a positive int "
                                  f"(or None with batch_tokens), got {batch!r}")
            out[resolution][count] = (float(prob), batch)
    return out


def _uniform(seed: int, epoch: int, clip: int, salt: str) -> float:
    """A number in [0, 1) fixed by (seed, epoch, clip, salt): the same in every process and every run."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{clip}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


class BucketAssigner:
    """Clip sizes -> buckets, batch sizes and the merge table (see the module doc)."""

    def __init__(self, bucket_config, batch_tokens: Optional[int] = None,
                 tokens: Optional[Callable[[Bucket], int]] = None, world_size: int = 1):
        self.config = check_bucket_config(bucket_config)
        if batch_tokens is not None and (tokens is None or batch_tokens < 1):
            raise ConfigError("batch_tokens needs a positive budget and a tokens(bucket) function")
        missing = [f"{r} {f}f" for r, fs in self.config.items() for f, (_, b) in fs.items()
                   if b is None and batch_tokens is None]
        if missing:
            raise ConfigError(f"bucket_config: no batch size for {', '.join(missing)}; give one or set batch_tokens")
        self.batch_tokens, self.tokens, self.world_size = batch_tokens, tokens, world_size
        # resolutions from the largest, frames from the most
        self.resolutions = sorted(self.config, key=pixels, reverse=True)

    def batch_size(self, bucket: Bucket) -> int:
        """The bucket's own batch size, or batch_tokens / tokens(bucket); a multiple of the process count."""
        own = self.config[bucket.resolution][bucket.frames][1]
        size = own if own is not None else max(1, self.batch_tokens // max(1, self.tokens(bucket)))
        return max(self.world_size, size // self.world_size * self.world_size)

    def fitting(self, num_frames: int, height: int, width: int) -> List[Bucket]:
        """Every bucket a clip fits, in the order :meth:`assign` tries them (largest first), at its nearest
        ratio; none for an unreadable file (size 0). A merge only ever moves a clip to one of these."""
        if min(num_frames, height, width) < 1:
            return []
        ratio = closest_ratio(height, width)
        return [Bucket(resolution, frames, ratio) for resolution in self.resolutions
                if height * width >= pixels(resolution)
                for frames in sorted(self.config[resolution], reverse=True)
                # long enough, and images only in 1-frame buckets (and the reverse)
                if frames <= num_frames and (num_frames == 1) == (frames == 1)]

    def assign(self, clip: int, num_frames: int, height: int, width: int, seed: int, epoch: int) -> Optional[Bucket]:
        """The bucket of one clip this epoch, or None when it fits none."""
        for bucket in self.fitting(num_frames, height, width):
            prob = self.config[bucket.resolution][bucket.frames][0]
            if prob >= 1 or _uniform(seed, epoch, clip, f"{bucket.resolution}/{bucket.frames}") < prob:
                return bucket
        return None

    def plan(self, sizes: Sequence[Tuple[int, int, int]], seed: int = 0, epoch: int = 0) -> BucketPlan:
        """Assign every clip ``(num_frames, height, width)``; merge or drop buckets too small for one batch."""
        clips: Dict[Bucket, List[int]] = {}
        unfit = []
        for i, (frames, height, width) in enumerate(sizes):
            bucket = self.assign(i, frames, height, width, seed, epoch)
            if bucket is None:
                unfit.append(i)
            else:
                clips.setdefault(bucket, []).append(i)
        merged: Dict[Bucket, Optional[Bucket]] = {}
        # from the largest bucket down, so a merged bucket's clips can be merged again further down
        for bucket in sorted(clips, key=lambda b: (pixels(b.resolution), b.frames), reverse=True):
            if len(clips[bucket]) >= self.batch_size(bucket):
                continue
            target = self._smaller(bucket, sizes, clips[bucket])
            merged[bucket] = target
            moved = clips.pop(bucket)
            if target is not None:
                clips.setdefault(target, []).extend(moved)
            else:
                unfit.extend(moved)
        clips = {b: sorted(c) for b, c in clips.items() if c}
        for bucket in [b for b in clips if len(clips[b]) < self.batch_size(b)]:  # a merge target still too small
            merged[bucket] = None
            unfit.extend(clips.pop(bucket))
        return BucketPlan(clips, {b: self.batch_size(b) for b in clips}, merged, sorted(unfit))

    def _smaller(self, bucket: Bucket, sizes, members: List[int]) -> Optional[Bucket]:
        """The nearest smaller bucket of the same ratio that all ``members`` fit: fewer frames, then lower
        resolutions."""
        shortest = min(sizes[i][0] for i in members)
        candidates = []
        for resolution in self.resolutions:
            if pixels(resolution) > pixels(bucket.resolution):
                continue
            for frames in sorted(self.config[resolution], reverse=True):
                if (resolution, frames) == (bucket.resolution, bucket.frames) or frames > shortest or \
                        (frames == 1) != (bucket.frames == 1):
                    continue
                if pixels(resolution) == pixels(bucket.resolution) and frames > bucket.frames:
                    continue
                candidates.append(Bucket(resolution, frames, bucket.ratio))
        return candidates[0] if candidates else None


def bucket_table(plan: BucketPlan, tokens: Optional[Callable[[Bucket], int]] = None) -> str:
    """The table a run prints at start: clips, batches, batch size and share of tokens per bucket, then merges."""
    rows = []
    total = sum(len(c) * (tokens(b) if tokens else 1) for b, c in plan.clips.items()) or 1
    for bucket in sorted(plan.clips, key=lambda b: (pixels(b.resolution), b.frames, b.ratio)):
        n, size = len(plan.clips[bucket]), plan.batch_sizes[bucket]
        share = n * (tokens(bucket) if tokens else 1) / total
        rows.append(f"| {bucket} | {n} | {-(-n // size)} | {size} | {share:.0%} |")
    lines = ["| bucket | clips | batches | batch size | share of tokens |", "|---|---|---|---|---|", *rows]
    for small, target in sorted(plan.merged.items(), key=lambda kv: str(kv[0])):
        lines.append(f"{small}: too few clips for one batch, {'merged into ' + str(target) if target else 'dropped'}")
    if plan.unfit:
        lines.append(f"{len(plan.unfit)} clips unused this epoch (smaller or shorter than every bucket, or in a "
                     f"dropped one)")
    return "\n".join(lines)


class BucketBatchSampler(Sampler):
    """Batches of ``(clip, bucket)`` pairs, one bucket per batch, for global steps ``start_step ..``; each clip
    index is an :class:`~opensora_lite.data.sampler.EpochIndex`.

    Epoch e's batches are each bucket's clips shuffled with (seed, e), cut into batches (the last filled from
    the same bucket's start), and the whole list shuffled with (seed, e). Step s is the s-th batch of the
    stream of epochs; rank r takes its contiguous slice, so the order depends only on (seed, step).
    """

    def __init__(self, sizes: Sequence[Tuple[int, int, int]], assigner: BucketAssigner, rank: int = 0,
                 world_size: int = 1, seed: int = 0, start_step: int = 0, num_steps: int = 0):
        if not sizes:
            raise DataError("the dataset is empty: no clip to train on")
        self.sizes, self.assigner = list(sizes), assigner
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.start_step, self.num_steps = start_step, num_steps
        self._epochs: Dict[int, List[Tuple[Bucket, List[int]]]] = {}  # the last epoch built
        self._counts: Dict[int, int] = {}  # epoch -> batches in it
        if not self.epoch_batches(0):
            raise DataError("no bucket holds enough clips for one batch: lower the batch sizes (bucket_config's, or "
                            "train.batch_tokens: --train.batch_tokens 512 gives 4 clips of 128 tokens a batch) or add "
                            "buckets that your clips fit (the table above says where they went)")

    def epoch_batches(self, epoch: int) -> List[Tuple[Bucket, List[int]]]:
        if epoch not in self._epochs:
            plan = self.assigner.plan(self.sizes, self.seed, epoch)
            gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            batches = []
            for bucket in sorted(plan.clips):
                members = plan.clips[bucket]
                order = [members[i] for i in torch.randperm(len(members), generator=gen).tolist()]
                size = plan.batch_sizes[bucket]
                for start in range(0, len(order), size):
                    batch = order[start:start + size]
                    batches.append((bucket, batch + order[: size - len(batch)]))  # filled from the same bucket
            self._epochs = {epoch: [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]}
            self._counts[epoch] = len(batches)
        return self._epochs[epoch]

    def _count(self, epoch: int) -> int:
        if epoch not in self._counts:
            self.epoch_batches(epoch)
        return self._counts[epoch]

    def locate(self, step: int) -> Tuple[int, int]:
        """(epoch, batch index in it) of global step ``step``."""
        epoch = 0
        while True:
            count = self._count(epoch)
            if step < count:
                return epoch, step
            step, epoch = step - count, epoch + 1

    def epoch_of(self, step: int) -> float:
        """Epochs done before global step ``step`` (a checkpoint's ``epoch``)."""
        epoch, index = self.locate(step)
        return epoch + index / self._count(epoch)

    def batch(self, step: int) -> Tuple[Bucket, List[int]]:
        """This rank's part of global step ``step``: the bucket and its clip indices."""
        epoch, index = self.locate(step)
        bucket, clips = self.epoch_batches(epoch)[index]
        local = len(clips) // self.world_size
        return bucket, clips[self.rank * local:(self.rank + 1) * local]

    def __iter__(self):
        for step in range(self.start_step, self.start_step + len(self)):
            bucket, clips = self.batch(step)
            epoch = self.locate(step)[0]  # a dataset drawing per epoch (random starts) draws anew each epoch
            yield [(EpochIndex(clip, epoch), bucket) for clip in clips]

    def __len__(self) -> int:
        return self.num_steps
