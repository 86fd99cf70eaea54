"""The latent cache of a bucketed run: each clip encoded once for every bucket it fits.

With every probability 1, a clip lands in the same bucket every epoch, and the cache holds it once, there. A
probability below 1 (with the merges of buckets too small for one batch that follow) can move a clip to
another bucket from one epoch to the next, always one it fits (:meth:`BucketAssigner.fitting`): the cache
then holds one latent per (clip, bucket it fits). Whatever epoch the sampler is in, the latent is there, and
a run on the cache sees the batches that a run reading the videos sees.

A clip longer than its bucket is cut where the dataset cuts it at epoch 0 (the centre with
``start="center"``); the cache freezes that window, where reading the videos draws a new one every epoch
with ``start="random"``. The build says how many clips this concerns.

The file is one safetensors file: per bucket k, ``latents.k`` (N_k, C, T', H', W'), ``clips.k`` (N_k,) the
clip indices, ``labels.k`` and ``frame_masks.k`` (N_k,); its metadata holds ``buckets`` (the list of
buckets, k its index) and ``meta`` (what the cache must agree on: the VAE, the bucket config, the clips).
"""
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple, Union

import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from ..errors import DataError
from ..storage import atomic_path
from .buckets import Bucket, BucketAssigner
from .datasets import meta_problems

logger = logging.getLogger(__name__)


def clips_digest(dataset) -> str:
    """sha256 of the clips' paths, sizes, labels and frame-mask kinds: a cache of other clips is refused."""
    digest = hashlib.sha256()
    kinds = getattr(dataset, "frame_mask_kinds", None)
    for i, (path, size, label) in enumerate(zip(dataset.paths, dataset.sizes(), dataset.labels)):
        kind = -1 if kinds is None else int(kinds[i])
        digest.update(f"{path}|{size}|{label}|{kind}\n".encode())
    return digest.hexdigest()


def cache_buckets(assigner: BucketAssigner, sizes: Sequence[Tuple[int, int, int]]) -> Dict[Bucket, List[int]]:
    """bucket -> its clips (sorted): with every probability 1 the plan is the same every epoch, so each clip
    once, in its bucket; else every bucket each clip fits."""
    if all(prob >= 1 for frames in assigner.config.values() for prob, _ in frames.values()):
        return dict(sorted(assigner.plan(sizes).clips.items()))
    members: Dict[Bucket, List[int]] = {}
    for i, size in enumerate(sizes):
        for bucket in assigner.fitting(*size):
            members.setdefault(bucket, []).append(i)
    return dict(sorted(members.items()))


def build_bucket_cache(dataset, assigner: BucketAssigner, encode_fn: Callable[[torch.Tensor], torch.Tensor],
                       path: Union[str, os.PathLike], meta: dict, batch_size: int = 16,
                       progress: bool = True) -> Path:
    """Encode every clip of ``dataset`` (a VideoClipDataset) for every bucket it fits into ``path``.

    ``encode_fn`` maps clips (N, 3, T, H, W) in [-1, 1] to latents (N, C, T', H', W'); ``meta`` names the VAE
    and the settings the cache must agree on (see :meth:`BucketLatentCache.check_compatible`)."""
    from safetensors.torch import save_file

    path = Path(path)
    sizes = dataset.sizes()
    members = cache_buckets(assigner, sizes)
    cut = len({i for bucket, clips in members.items() for i in clips if sizes[i][0] > bucket.frames})
    if cut:
        logger.info("latent cache: %d of %d clips are longer than a bucket they fit; the cache keeps one window "
                    "of each (without a cache, start='random' draws a new one every epoch)", cut, len(sizes))
    tensors = {}
    with torch.no_grad(), tqdm(total=sum(map(len, members.values())), desc="encoding latents",
                               disable=not progress) as bar:
        for k, (bucket, clips) in enumerate(members.items()):
            latents, labels, kinds = [], [], []
            for start in range(0, len(clips), batch_size):
                items = [dataset[(i, bucket)] for i in clips[start:start + batch_size]]
                video = torch.stack([item["video"] for item in items])             # (n, 3, T, H, W)
                latents.append(encode_fn(video).float().cpu())                     # (n, C, T', H', W')
                labels += [int(item["cond"]["y"]) for item in items]
                kinds += [int(item.get("frame_mask", -1)) for item in items]
                bar.update(len(items))
            tensors.update({f"latents.{k}": torch.cat(latents).contiguous(), f"clips.{k}": torch.tensor(clips),
                            f"labels.{k}": torch.tensor(labels), f"frame_masks.{k}": torch.tensor(kinds)})
    buckets = [[b.resolution, b.frames, b.ratio] for b in members]
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta, sort_keys=True),
                                               "buckets": json.dumps(buckets)})
    logger.info("latent cache %s: %d latents of %d clips in %d buckets", path, sum(map(len, members.values())),
                len(sizes), len(members))
    return path


class BucketLatentCache(Dataset):
    """Items ``dict(latent=(C, T', H', W'), cond=dict(y=label), index, frame_mask, size=(2,) the bucket's
    (H, W))`` for the ``(clip, bucket)`` pairs of a :class:`~opensora_lite.data.buckets.BucketBatchSampler`.

    ``dataset`` is the VideoClipDataset the cache was built from: it keeps giving the clips' sizes, labels and
    captions, so the sampler and the text conditions see the same clips."""

    def __init__(self, path: Union[str, os.PathLike], dataset):
        from safetensors import safe_open

        self.path, self.dataset = Path(path), dataset
        try:
            with safe_open(str(self.path), framework="pt") as f:
                metadata = f.metadata() or {}
                self.meta = json.loads(metadata.get("meta", "{}"))
                buckets = [Bucket(r, int(t), str(ratio)) for r, t, ratio in json.loads(metadata.get("buckets", "[]"))]
                self._entries: Dict[Tuple[int, Bucket], Tuple[int, int]] = {}
                self._tensors = {name: [f.get_tensor(f"{name}.{k}") for k in range(len(buckets))]
                                 for name in ("latents", "labels", "frame_masks")}
                for k, bucket in enumerate(buckets):
                    for row, clip in enumerate(f.get_tensor(f"clips.{k}").tolist()):
                        self._entries[(clip, bucket)] = (k, row)
        except (OSError, ValueError, KeyError) as err:  # safetensors raises these for a damaged file
            raise DataError(f"{self.path}: not a bucket latent cache ({err}); delete it and it is rebuilt") from None
        self.labels, self.frame_mask_kinds = dataset.labels, getattr(dataset, "frame_mask_kinds", None)
        self.captions = getattr(dataset, "captions", None)

    def check_compatible(self, expected: dict) -> None:
        """A DataError naming what differs when the cache was made with another VAE, bucket config or clips."""
        problems = meta_problems(self.meta, expected)
        if problems:
            raise DataError(f"{self.path}: the bucket latent cache was made with another {', '.join(problems)}; "
                            f"delete it and it is rebuilt")

    def sizes(self) -> List[Tuple[int, int, int]]:
        return self.dataset.sizes()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index) -> dict:
        clip, bucket = index
        key = (int(clip), bucket)
        if key not in self._entries:
            raise DataError(f"{self.path}: no latent of clip {int(clip)} for bucket {bucket}; delete the cache and "
                            f"it is rebuilt")
        k, row = self._entries[key]
        return dict(latent=self._tensors["latents"][k][row], cond=dict(y=int(self._tensors["labels"][k][row])),
                    index=int(clip), frame_mask=int(self._tensors["frame_masks"][k][row]),
                    size=torch.tensor(bucket.size))
