"""Datasets of labelled video clips, and of cached VAE latents.

:class:`VideoClipDataset` reads clips from a CSV (``path,label`` plus any other columns) or from a folder
with one sub-folder per class. A bad file (unreadable, empty, truncated, not a video) never crashes an
epoch and never becomes a zero tensor: it is reported once with ``logging.warning``, remembered in
``dataset.bad_files``, and replaced by another valid clip chosen deterministically from the index and seed.
A file with a few damaged packets that the decoder conceals is kept; its concealed frames are counted in
``dataset.concealed_frames`` and reported once per file.

:class:`LatentCacheDataset` reads latents precomputed by :func:`build_latent_cache` from one safetensors
file, with metadata (VAE config hash, num_frames, size, ...) checked by ``check_compatible``.

A small dataset still gives batches: ``len()`` is the number of clips (never 0, an empty source raises),
so a trainer whose batch is larger than the dataset must use ``drop_last=False`` or repeat the dataset.
"""
import csv
import json
import logging
import os
import random
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..errors import DataError, UserError
from ..registry import DATASETS
from ..storage import atomic_path
from .folder_scan import IMAGE_EXTENSIONS, probe
from .video_read import (
    DEFAULT_MAX_SOURCE_PIXELS,
    VIDEO_EXTENSIONS,
    probe_video,
    read_clip,
    read_video_frames,
    resize_crop,
    sample_frame_indices,
)
from .video_write import OutputExistsError

logger = logging.getLogger(__name__)

# How many random replacement candidates to draw before falling back to a full permutation scan.
_RANDOM_REPLACEMENT_TRIES = 32


def _seed_from(*numbers: int) -> int:
    """A well-mixed 63-bit seed from a tuple of non-negative ints (numpy SeedSequence)."""
    return int(np.random.SeedSequence([int(n) for n in numbers]).generate_state(2, dtype=np.uint64)[0] >> 1)


#################################################################################
#                                Clip sources                                   #
#################################################################################


def _read_csv(csv_path: Path) -> Tuple[List[Path], List[int], List[Dict[str, str]]]:
    """Rows of a ``path,label[,...]`` or ``path,text[,...]`` CSV; relative paths resolve against the CSV's folder."""
    try:
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{csv_path}: cannot read the CSV ({e})") from e
    if not rows:
        raise DataError(f"{csv_path}: the CSV has no rows")
    if "path" not in rows[0] or not {"label", "text"} & set(rows[0]):
        raise DataError(f"{csv_path}: the CSV needs a column 'path' and a column 'label' (class models) or 'text' "
                        f"(captions, for text models); it has {sorted(rows[0])}")
    paths, labels = [], []
    for line, row in enumerate(rows, start=2):
        if "label" not in row:  # a captioned dataset: every clip is class 0
            row = {**row, "label": "0"}
        try:
            labels.append(int(row["label"]))
        except (TypeError, ValueError) as e:
            raise DataError(f"{csv_path}:{line}: label must be an integer, got {row['label']!r}") from e
        if labels[-1] < 0:
            raise DataError(f"{csv_path}:{line}: label must be >= 0, got {labels[-1]}")
        path = Path(row["path"] or "")
        paths.append(path if path.is_absolute() else csv_path.parent / path)
    return paths, labels, rows


def _read_folder(root: Path) -> Tuple[List[Path], List[int], List[str]]:
    """Videos under ``root/<class>/``; classes sorted by name get ids 0, 1, ..."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    paths, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((root / name).rglob("*")):
            if file.suffix.lower() in VIDEO_EXTENSIONS and not file.name.startswith("."):
                paths.append(file)
                labels.append(label)
    if not paths:
        raise DataError(f"{root}: no videos ({', '.join(VIDEO_EXTENSIONS)}) in class sub-folders")
    return paths, labels, classes


# Per-clip frame-mask kinds (the CSV column frame_mask); training/frame_masks.py draws masks of these kinds.
FRAME_MASK_KINDS = ("none", "first", "first_k", "last_k")


def frame_mask_kind_index(name: str) -> int:
    """FRAME_MASK_KINDS index of a per-clip ``frame_mask`` value; "" (any: drawn from train.frame_mask) is -1."""
    if name in ("", None):
        return -1
    if name not in FRAME_MASK_KINDS:
        raise DataError(f"frame_mask must be one of {', '.join(FRAME_MASK_KINDS)} or empty (drawn), got {name!r}")
    return FRAME_MASK_KINDS.index(name)


def _frame_mask_kinds(csv_path: Path, rows: Optional[List[Dict[str, str]]], n: int) -> torch.Tensor:
    """(n,) long: each clip's own frame-mask kind from the optional ``frame_mask`` column, -1 = drawn."""
    if not rows or "frame_mask" not in rows[0]:
        return torch.full((n,), -1, dtype=torch.long)
    kinds = []
    for line, row in enumerate(rows, start=2):
        try:
            kinds.append(frame_mask_kind_index((row["frame_mask"] or "").strip()))
        except ValueError as e:
            raise DataError(f"{csv_path}:{line}: {e}") from e
    return torch.tensor(kinds, dtype=torch.long)


def _class_names_beside(csv_path: Path) -> Optional[List[str]]:
    """Class names from a ``classes.json`` ({"0": "name", ...}) next to the CSV, if there is one."""
    file = csv_path.parent / "classes.json"
    if not file.is_file():
        return None
    try:
        mapping = json.loads(file.read_text())
        return [mapping[str(i)] for i in range(len(mapping))]
    except (ValueError, KeyError, TypeError):
        logger.warning("%s: ignoring a classes.json that is not {\"0\": name, \"1\": name, ...}", file)
        return None


def read_image(path: Path, size: Tuple[int, int]) -> torch.Tensor:
    """A still image as a one-frame clip (3, 1, H, W) in [-1, 1], upright, resized to cover ``size`` and cropped."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))  # (H, W, 3) uint8
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: cannot read the image ({err})") from None
    return resize_crop(pixels[None], size)  # (3, 1, H, W)


def _probe_size(path: Path) -> Tuple[int, int, int]:
    """(num_frames, height, width) of a video or image file; an unreadable one counts as (0, 0, 0): it fits no
    bucket."""
    info, _ = probe(path)
    return (0, 0, 0) if info is None else (info["num_frames"], info["height"], info["width"])


#################################################################################
#                              VideoClipDataset                                 #
#################################################################################


@DATASETS.register_module()
class VideoClipDataset(Dataset):
    """Labelled clips ``dict(video=(3, T, H, W) float in [-1, 1], cond=dict(y=label), index=int)``.

    ``cond`` is the model's condition (see ``opensora_lite.schedulers.guidance``): here the class id ``y``.

    Args:
        source: a CSV file (columns ``path,label`` plus optional ones) or a folder with one sub-folder
            per class (classes sorted by name -> ids).
        num_frames, frame_interval: frames per clip and the step between them in the source video.
        size: ``(H, W)`` after short-side resize + centre crop (an int means square).
        backend: "av" or "decord" (the same frames, within the tolerances of tests/test_backend_agreement.py).
        start: "random" (training; drawn from seed, epoch and index: see :meth:`set_epoch`) or "center".
        short_policy: "loop", "pad" or "error" for videos shorter than the clip (see ``read_video``).
        latent_cache: path of a :func:`build_latent_cache` file; items then are
            ``dict(latent=(C, T', H', W'), label, index)`` read from it instead of decoded videos, after
            checking that the cache was made with this dataset's num_frames / frame_interval / size.
        seed: fixes random starts and the choice of replacement clips.
        check_files: probe every file at construction (open + decode the first frame) and drop the bad
            ones with one summary warning, instead of discovering them lazily.
        stream: which video stream of each file (0 = the first by index, the default; see ``read_video``).
        max_source_pixels, max_source_frames: files with larger frames or more frames are bad files
            (None: no limit); the default pixel limit is 8K UHD.

    ``index`` in an item is the clip actually returned: it differs from the requested index when that
    file was bad and got replaced. With DataLoader workers, each worker keeps its own ``bad_files`` and
    may warn once per worker.
    """

    def __init__(
        self,
        source: Union[str, os.PathLike],
        num_frames: int = 16,
        frame_interval: int = 1,
        size: Union[int, Sequence[int]] = (64, 64),
        backend: str = "av",
        start: str = "random",
        short_policy: str = "loop",
        latent_cache: Optional[Union[str, os.PathLike]] = None,
        seed: int = 0,
        check_files: bool = False,
        stream: Optional[int] = None,
        max_source_pixels: Optional[int] = DEFAULT_MAX_SOURCE_PIXELS,
        max_source_frames: Optional[int] = None,
    ):
        source = Path(source)
        if start not in ("random", "center"):
            raise UserError(f"start must be 'random' or 'center', got {start!r}")
        self.source = source
        self.num_frames, self.frame_interval = int(num_frames), int(frame_interval)
        self.size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.backend, self.start, self.short_policy = backend, start, short_policy
        self.seed, self.epoch = int(seed), 0
        self.rows: Optional[List[Dict[str, str]]] = None  # the CSV rows (with their extra columns)
        self.read_limits = dict(stream=stream, max_source_pixels=max_source_pixels,
                                max_source_frames=max_source_frames)
        self._concealed: Dict[str, int] = {}  # path -> frames concealed in its last read
        if source.is_dir():
            self.paths, self.labels, self.classes = _read_folder(source)
        elif source.is_file():
            self.paths, self.labels, self.rows = _read_csv(source)
            self.classes = _class_names_beside(source)
        else:
            raise DataError(f"{source}: no such CSV file or folder")
        # (N,) each clip's own training frame mask (CSV column frame_mask, training/frame_masks.py), -1 = drawn
        self.frame_mask_kinds = _frame_mask_kinds(source, self.rows, len(self.paths))
        self._bad: Dict[str, str] = {}  # path -> reason, in discovery order
        self._sizes: Optional[List[Tuple[int, int, int]]] = None  # sizes(), once known
        if check_files:
            self.drop_bad_files()
        self.latents = None
        if latent_cache is not None:
            self.latents = LatentCacheDataset(latent_cache)
            self.latents.check_compatible(self.clip_meta())
            self.latents.check_same_clips(self)

    def sizes(self) -> List[Tuple[int, int, int]]:
        """``(num_frames, height, width)`` of every clip (upright, square pixels; frame_interval applied): the
        CSV's columns when it has them (``make-csv`` writes them), else each file probed once (and kept)."""
        if self._sizes is not None:
            return list(self._sizes)
        if self.rows and {"num_frames", "height", "width"} <= set(self.rows[0]):
            try:
                out = [(int(r["num_frames"]), int(r["height"]), int(r["width"])) for r in self.rows]
            except (TypeError, ValueError) as e:
                raise DataError(f"{self.source}: num_frames, height and width must be integers ({e})") from None
        else:
            out = [_probe_size(p) for p in tqdm(self.paths, desc="probing sizes", disable=len(self.paths) < 50)]
        self._sizes = [(max(1, (t - 1) // self.frame_interval + 1), h, w) for t, h, w in out]
        return list(self._sizes)

    @property
    def captions(self) -> Optional[List[str]]:
        """Each clip's caption (the CSV column ``text``, Open-Sora's name), or None without one."""
        if not self.rows or "text" not in self.rows[0]:
            return None
        return [(row["text"] or "").strip() for row in self.rows]

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else max(self.labels) + 1

    @property
    def concealed_frames(self) -> Dict[str, int]:
        """Files kept despite damage -> frames the decoder concealed in them (each reported once)."""
        return dict(self._concealed)

    @property
    def bad_files(self) -> List[str]:
        """Paths of the files found unreadable so far (each reported once with logging.warning)."""
        return list(self._bad)

    def check_files_exist(self) -> None:
        """Refuse, before any work, a dataset whose rows name files that do not exist (a typo, a moved folder).
        Reading alone would drop each such clip with a warning and train on the rest."""
        missing = [p for p in self.paths if not p.exists()]
        if missing:
            where = f"{self.source}: {len(missing)} of {len(self.paths)} clips"
            raise DataError(f"{where} name files that do not exist (the first: {missing[0]}); paths in a CSV are "
                            f"relative to its folder: fix them, or write the CSV again with `opensora-lite make-csv`")

    def clip_meta(self) -> dict:
        """What a latent cache of this dataset must agree on."""
        return dict(num_frames=self.num_frames, frame_interval=self.frame_interval, size=list(self.size))

    def set_epoch(self, epoch: int) -> None:
        """Draw new random starts for ``epoch`` (indices from :class:`GlobalBatchSampler` carry their own epoch,
        which wins: the trainers need not call this)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index) -> dict:
        """Clip ``index``, or ``(index, bucket)`` from :class:`~opensora_lite.data.buckets.BucketBatchSampler`:
        then read at the bucket's frames and size (a bad file is replaced by another clip of the same bucket's
        shape, read at that shape)."""
        index, bucket = index if isinstance(index, tuple) else (index, None)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} clips")
        if self.latents is not None and bucket is None:
            return self.latents[index]
        for candidate in self._candidates(index):
            try:
                video = self._load(candidate, getattr(index, "epoch", self.epoch), bucket)
            except DataError as e:
                self._mark_bad(candidate, str(e))
                continue
            return dict(video=video, cond=dict(y=self.labels[candidate]), index=candidate,
                        frame_mask=int(self.frame_mask_kinds[candidate]))
        raise DataError(f"{self.source}: every one of the {len(self)} video files is unreadable: {self._bad_summary()}")

    # ----------------------------------------------------------------- internals

    def _load(self, index: int, epoch: int, bucket=None) -> torch.Tensor:
        """Decode clip ``index`` with the random start of ``epoch``: (3, T, H, W) float in [-1, 1], T and (H, W)
        the bucket's when one is given, else the dataset's."""
        num_frames, size = (self.num_frames, self.size) if bucket is None else (bucket.frames, bucket.size)
        if self.paths[index].suffix.lower() in IMAGE_EXTENSIONS:
            return read_image(self.paths[index], size)  # (3, 1, H, W)
        generator = torch.Generator().manual_seed(_seed_from(self.seed, epoch, int(index)))
        clip = read_clip(
            self.paths[index],
            num_frames,
            self.frame_interval,
            size=size,
            start=self.start,
            backend=self.backend,
            short_policy=self.short_policy,
            generator=generator,
            **self.read_limits,
        )
        if clip.concealed:
            self._note_concealed(index, clip.concealed)
        return clip.video

    def _note_concealed(self, index: int, frames: int) -> None:
        key = str(self.paths[index])
        if key not in self._concealed:
            logger.warning("%s: kept a damaged video: the decoder concealed %d of its %d frames read",
                           key, frames, self.num_frames)
        self._concealed[key] = frames

    def _candidates(self, index: int) -> Iterator[int]:
        """``index`` then replacements in a fixed pseudo-random order given (seed, index); skips known-bad files."""
        if str(self.paths[index]) not in self._bad:
            yield index
        rng = random.Random(_seed_from(self.seed, index))
        for _ in range(min(_RANDOM_REPLACEMENT_TRIES, len(self))):
            candidate = rng.randrange(len(self))
            if str(self.paths[candidate]) not in self._bad:
                yield candidate
        order = list(range(len(self)))
        rng.shuffle(order)
        for candidate in order:
            if str(self.paths[candidate]) not in self._bad:
                yield candidate

    def _mark_bad(self, index: int, reason: str) -> None:
        key = str(self.paths[index])
        if key not in self._bad:
            self._bad[key] = reason
            logger.warning("skipping unreadable video (it will be replaced by another clip): %s", reason)

    def _bad_summary(self, limit: int = 3) -> str:
        shown = "; ".join(list(self._bad.values())[:limit])
        more = len(self._bad) - limit
        return shown + (f"; and {more} more" if more > 0 else "")

    def drop_bad_files(self) -> List[str]:
        """Decode the first frame of every file, drop the bad ones (one warning) and return their paths (what
        ``check_files=True`` does at construction; a latent cache is built without them)."""
        bad = []
        for path in self.paths:
            try:
                self._check_readable(path)
            except DataError as e:
                self._bad[str(path)] = str(e)
                bad.append(str(path))
        if len(bad) == len(self.paths):
            raise DataError(
                f"{self.source}: every one of the {len(self.paths)} video files is unreadable: {self._bad_summary()}"
            )
        if bad:
            logger.warning(
                "%s: dropped %d of %d video files that cannot be read: %s",
                self.source, len(bad), len(self.paths), self._bad_summary(),
            )
        self.drop_files(bad)
        return bad

    def _check_readable(self, path: Path) -> None:
        """Raise :class:`DataError` where ``path`` cannot be read the way ``__getitem__`` reads it: a still with
        PIL (any backend, and one frame is never too short), a video's first frame with the backend."""
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            read_image(path, (8, 8))
            return
        read_video_frames(path, 1, start=0, backend=self.backend, **self.read_limits)
        if self.short_policy == "error":  # a too-short file would fail every time: drop it now
            limits = self.read_limits
            total = probe_video(path, self.backend, limits["stream"], limits["max_source_pixels"])[0]
            sample_frame_indices(total, self.num_frames, self.frame_interval, 0, "error", path=path)

    def drop_files(self, paths: Sequence[str]) -> None:
        """Drop the clips of these files (e.g. the bad files a latent cache was built without)."""
        gone = {str(p) for p in paths}
        keep = [i for i, path in enumerate(self.paths) if str(path) not in gone]
        self.paths = [self.paths[i] for i in keep]
        self.labels = [self.labels[i] for i in keep]
        self.frame_mask_kinds = self.frame_mask_kinds[keep]
        if self.rows is not None:
            self.rows = [self.rows[i] for i in keep]
        self._sizes = None


#################################################################################
#                                Latent cache                                   #
#################################################################################


def _normalise_meta(value):
    """JSON round trip so tuples compare equal to lists."""
    return json.loads(json.dumps(value, sort_keys=True))


def meta_problems(have: dict, expected: dict) -> Dict[str, str]:
    """What differs between a cache's metadata ``have`` and the ``expected`` one: key -> what (empty: none)."""
    problems = {}
    for key, want in sorted(expected.items()):
        if key not in have:
            problems[key] = f"{key}: missing (expected {want!r})"
        elif _normalise_meta(have[key]) != _normalise_meta(want):
            problems[key] = f"{key}: cache has {have[key]!r}, expected {want!r}"
    return problems


@DATASETS.register_module()
class LatentCacheDataset(Dataset):
    """Precomputed latents: items ``dict(latent=(C, T', H', W') float, cond=dict(y=label), index=int,
    frame_mask=int)``.

    The file (from :func:`build_latent_cache`) is a safetensors file with ``latents`` (N, C, T', H', W'),
    ``labels`` (N,) and optionally ``frame_masks`` (N,) (each clip's own frame-mask kind, -1 = drawn;
    absent in caches of datasets without the column), and its safetensors metadata holds ``meta``: JSON
    describing how the latents were made (VAE config hash, num_frames, size, ...). Call
    :meth:`check_compatible` before training on it.
    """

    def __init__(self, cache_path: Union[str, os.PathLike]):
        from safetensors import safe_open

        self.cache_path = Path(cache_path)
        if not self.cache_path.is_file():
            raise DataError(f"{self.cache_path}: no such latent cache file (build it with build_latent_cache)")
        try:
            with safe_open(str(self.cache_path), framework="pt") as f:
                keys = set(f.keys())
                raw_meta = (f.metadata() or {}).get("meta", "{}")
                if not {"latents", "labels"} <= keys:
                    raise DataError(
                        f"{self.cache_path}: a latent cache needs tensors 'latents' and 'labels', has {sorted(keys)}"
                    )
                self.latents = f.get_tensor("latents")
                self.labels = f.get_tensor("labels").long()
                self.frame_mask_kinds = (f.get_tensor("frame_masks").long() if "frame_masks" in keys
                                         else torch.full_like(self.labels, -1))
                captions = (f.metadata() or {}).get("captions")
            self.meta = json.loads(raw_meta)
            # each clip's caption, when the cache was made from a captioned dataset (CSV column text)
            self.captions = json.loads(captions) if captions else None
        except DataError:
            raise
        except Exception as e:  # safetensors raises its own errors for corrupt headers
            raise DataError(f"{self.cache_path}: not a readable latent cache ({type(e).__name__}: {e})") from e
        if self.latents.ndim != 5 or self.labels.shape != (self.latents.shape[0],) or len(self.labels) == 0 \
                or self.frame_mask_kinds.shape != self.labels.shape:
            raise DataError(
                f"{self.cache_path}: expected latents (N, C, T, H, W), labels (N,) and frame_masks (N,), got "
                f"{tuple(self.latents.shape)}, {tuple(self.labels.shape)} and {tuple(self.frame_mask_kinds.shape)}"
            )

    def check_compatible(self, expected_meta: dict) -> None:
        """Raise DataError if any key of ``expected_meta`` is missing from or differs in the cache's metadata."""
        problems = meta_problems(self.meta, expected_meta).values()
        if problems:
            raise DataError(
                f"{self.cache_path}: latent cache does not match the current setup ({'; '.join(problems)}); "
                "rebuild it with build_latent_cache"
            )

    def check_same_clips(self, dataset) -> None:
        """Raise DataError unless ``dataset`` lists as many clips, with the same labels and frame-mask kinds
        (those it has: a dataset without ``labels`` is only checked for its length)."""
        labels = torch.as_tensor(list(getattr(dataset, "labels", self.labels)), dtype=torch.long)
        kinds = getattr(dataset, "frame_mask_kinds", torch.full_like(labels, -1))
        if len(dataset) != len(self.labels):
            problem = f"it holds {len(self.labels)} clips, the dataset {len(dataset)}"
        elif not torch.equal(labels, self.labels):
            problem = "the labels differ"
        elif not torch.equal(kinds, self.frame_mask_kinds):
            problem = "the frame_mask column differs"
        else:
            return
        raise DataError(f"{self.cache_path}: the latent cache was built from other clips ({problem}); "
                        "delete it and it is rebuilt")

    def __len__(self) -> int:
        return self.latents.shape[0]

    def __getitem__(self, index: int) -> dict:
        return dict(latent=self.latents[index], cond=dict(y=int(self.labels[index])), index=int(index),
                    frame_mask=int(self.frame_mask_kinds[index]))


def build_latent_cache(
    dataset: Dataset,
    encode_fn: Callable[[torch.Tensor], torch.Tensor],
    path: Union[str, os.PathLike],
    meta: Optional[dict] = None,
    batch_size: int = 16,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Encode every clip of ``dataset`` once and save ``latents`` / ``labels`` / ``frame_masks`` / ``meta``.

    ``encode_fn`` maps a batch of clips (N, 3, T, H, W) in [-1, 1] to latents (N, C, T', H', W'); it runs
    under ``torch.no_grad``. ``meta`` should name the VAE (e.g. a hash of its config and weights); the
    dataset's ``clip_meta()`` (num_frames, frame_interval, size) is added under it. Use ``start="center"``
    for the dataset: a random start would be frozen into the cache.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass overwrite=True to rebuild the latent cache")
    full_meta = dict(getattr(dataset, "clip_meta", dict)())
    full_meta.update(meta or {})
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0, drop_last=False)
    latents, labels, kinds = [], [], []
    captions = getattr(dataset, "captions", None)
    with torch.no_grad():
        for batch in tqdm(loader, desc="encoding latents", disable=not progress):
            latents.append(encode_fn(batch["video"]).float().cpu())  # (B, C, T', H', W')
            labels.append(torch.as_tensor(batch["cond"]["y"]).long())
            kinds.append(torch.as_tensor(batch.get("frame_mask", torch.full_like(labels[-1], -1))).long())
    latents, labels, kinds = torch.cat(latents), torch.cat(labels), torch.cat(kinds)
    if latents.ndim != 5 or latents.shape[0] != labels.shape[0]:
        raise UserError(f"encode_fn must return (N, C, T, H, W) latents, got {tuple(latents.shape)}")
    full_meta.update(num_samples=int(latents.shape[0]), latent_shape=list(latents.shape[1:]))
    tensors = {"latents": latents.contiguous(), "labels": labels, "frame_masks": kinds}
    metadata = {"meta": json.dumps(full_meta, sort_keys=True)}
    if captions is not None:
        metadata["captions"] = json.dumps(captions)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path
