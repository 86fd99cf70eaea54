"""The synthetic moving-shapes benchmark (docs/shapes_benchmark.md).

A clip: ``num_frames`` (16) frames of ``size`` x ``size`` (64) RGB, black background, one filled shape of
a random fully saturated colour (HSV S=1, V=1), radius / half side uniform in [8, 12] px, moving in a
straight line at a constant 1.5-2.5 px/frame and fully inside the frame in every frame.

12 classes: ``class_id = shape_index * 4 + direction_index`` with shapes (circle, square, triangle) and
directions (right, left, down, up): 0 = circle-right ... 11 = triangle-up. The triangle is isosceles,
apex up, with base width = height = 2r; every shape is centred on its bounding box, which spans
``[cx - r, cx + r] x [cy - r, cy + r]``.

Frames are rasterised in numpy with the exact covered fraction of each pixel along x and ``SUPERSAMPLE``
sub-rows along y, so sub-pixel positions move smoothly; a pixel's colour is the shape colour times its
covered fraction. Pixels outside the frame are simply not drawn, so a shape crossing the border is drawn
partially and one that has left is not drawn at all.

Long clips (docs/shapes_benchmark.md, "Long clips"): a *window* clip is ``num_frames`` frames cut from a
longer straight trajectory, so the shape may enter through the border it comes from (partly visible in
frame 0) or leave through the opposite one (partly visible, then gone); a *long* clip is ``long_frames``
(48) frames whose first ``num_frames`` are an ordinary clip (fully inside) and which then keeps moving
until the shape has left. An *exit* window starts while the shape is leaving or after it has left (partly
visible in frame 0, or black throughout): it only makes sense as the continuation of earlier frames, so its
CSV row says ``frame_mask=first_k`` (it is trained with its first latent frames given, never alone).
:func:`make_shapes_dataset` writes H.264 MP4 files plus ``train.csv`` / ``val.csv`` (path,label,shape,
direction), optionally ``val_long.csv`` (plus context_frames,exit_frame), and ``classes.json``,
deterministically for a seed; they are read back by :class:`~opensora_lite.data.datasets.VideoClipDataset`
like real data.
"""
import colorsys
import csv
import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..errors import UserError
from .video_write import write_video

SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("right", "left", "down", "up")
# Unit displacement per direction in image coordinates (x to the right, y downwards).
DIRECTION_VECTORS = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "down": (0.0, 1.0), "up": (0.0, -1.0)}
NUM_CLASSES = len(SHAPES) * len(DIRECTIONS)  # 12
CLASS_NAMES = [f"{shape}-{direction}" for shape in SHAPES for direction in DIRECTIONS]

NUM_FRAMES = 16  # docs/shapes_benchmark.md defaults
LONG_FRAMES = 48  # frames of a long validation clip: a 16-frame context, then 32 frames to continue
FRAME_SIZE = 64
RADIUS_RANGE = (8.0, 12.0)  # px, radius of the circle, half side of the square / triangle
SPEED_RANGE = (1.5, 2.5)  # px per frame
BORDER_MARGIN = 1.0  # px of black kept around the shape's box, so no frame edge pixel is ever covered
MIN_ENTRY_DEPTH = 2.0  # px of a window's shape already inside in frame 0: a window never starts black
SUPERSAMPLE = 32  # sub-rows per pixel row in the rasteriser (columns are covered exactly)
DEFAULT_FPS = 8
DEFAULT_CRF = 12  # x264 CRF: high enough quality that the codec keeps the shape edges


def class_id(shape: str, direction: str) -> int:
    """``shape_index * 4 + direction_index``."""
    return SHAPES.index(shape) * len(DIRECTIONS) + DIRECTIONS.index(direction)


def split_class_id(cid: int) -> Tuple[str, str]:
    """Inverse of :func:`class_id`: ``(shape, direction)``."""
    if not 0 <= cid < NUM_CLASSES:
        raise UserError(f"shapes class id must be in 0..{NUM_CLASSES - 1}, got {cid}")
    return SHAPES[cid // len(DIRECTIONS)], DIRECTIONS[cid % len(DIRECTIONS)]


#################################################################################
#                               Clip parameters                                 #
#################################################################################


@dataclass(frozen=True)
class ShapeClip:
    """Everything that defines one clip; :meth:`centers` gives the shape's centre in every frame."""

    shape: str
    direction: str
    radius: float  # px
    speed: float  # px per frame
    color: Tuple[int, int, int]  # RGB, fully saturated
    start: Tuple[float, float]  # (cx, cy) in frame 0, px; pixel (row i, column j) spans [j, j+1) x [i, i+1)
    num_frames: int = NUM_FRAMES
    size: Union[int, Tuple[int, int]] = FRAME_SIZE  # the side of a square frame, or (height, width)

    @property
    def label(self) -> int:
        return class_id(self.shape, self.direction)

    def centers(self) -> np.ndarray:
        """(T, 2) array of (cx, cy) per frame."""
        dx, dy = DIRECTION_VECTORS[self.direction]
        t = np.arange(self.num_frames, dtype=np.float64)
        return np.stack([self.start[0] + dx * self.speed * t, self.start[1] + dy * self.speed * t], axis=1)

    def _box_gaps(self) -> np.ndarray:
        """(T, 4) distances from the shape's box to the left, top, right and bottom frame edges (< 0: past it)."""
        cx, cy = self.centers().T
        r = self.radius
        height, width = frame_hw(self.size)
        return np.stack([cx - r, cy - r, width - cx - r, height - cy - r], axis=1)

    def inside(self) -> np.ndarray:
        """(T,) bool: the whole shape is inside the frame (every shape touches all four sides of its box)."""
        return np.all(self._box_gaps() >= 0, axis=1)

    def gone(self) -> np.ndarray:
        """(T,) bool: no part of the shape is inside the frame."""
        return np.any(self._box_gaps() <= -2 * self.radius, axis=1)


def frame_hw(size) -> Tuple[int, int]:
    """(height, width) of a frame given as a square side or as (height, width)."""
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def _axes(direction: str, size) -> Tuple[int, int]:
    """(frame length along the motion, frame length across it)."""
    height, width = frame_hw(size)
    return (width, height) if DIRECTION_VECTORS[direction][0] != 0 else (height, width)


def _travel_limits(num_frames: int, size) -> None:
    """Raise if even the smallest, slowest shape cannot stay inside the frame for ``num_frames`` (along its
    shorter side, so that every class can be drawn)."""
    height, width = frame_hw(size)
    room = min(height, width) - 2 * RADIUS_RANGE[0] - 2 * BORDER_MARGIN
    if SPEED_RANGE[0] * (num_frames - 1) > room:
        longest = int(room // SPEED_RANGE[0]) + 1
        if longest < 2:  # not even two frames fit: name the size that does
            need = int(np.ceil(2 * RADIUS_RANGE[0] + 2 * BORDER_MARGIN + SPEED_RANGE[0] * max(num_frames - 1, 1)))
            raise UserError(f"a {height}x{width} frame is too small for a moving shape; use a size of at least "
                            f"{need}")
        raise UserError(
            f"a {height}x{width} frame holds a moving shape for at most {longest} frames at "
            f"{SPEED_RANGE[0]} px/frame; use fewer frames or a larger size"
        )


def sample_clip(
    rng: np.random.Generator, label: int, num_frames: int = NUM_FRAMES, size=FRAME_SIZE
) -> ShapeClip:
    """Draw the parameters of one clip of class ``label`` (``size``: a square side or (height, width)).

    Radius and speed are uniform in their ranges; for long clips or small frames their upper bounds are
    lowered to what still fits inside the frame (never needed at the default 16 frames of 64x64). The start
    is uniform over the positions that keep the whole box inside the frame, margin included, in every frame.
    """
    shape, direction = split_class_id(label)
    _travel_limits(num_frames, size)
    steps = max(num_frames - 1, 0)
    lo, hi = SPEED_RANGE
    length, breadth = _axes(direction, size)  # px along and across the motion
    max_radius = min(length - 2 * BORDER_MARGIN - lo * steps, breadth - 2 * BORDER_MARGIN) / 2
    radius = float(rng.uniform(RADIUS_RANGE[0], min(RADIUS_RANGE[1], max_radius)))
    max_speed = (length - 2 * radius - 2 * BORDER_MARGIN) / steps if steps else hi
    speed = float(rng.uniform(lo, min(hi, max_speed)))
    travel = speed * steps
    low = radius + BORDER_MARGIN  # smallest centre coordinate that keeps the box inside
    along = float(rng.uniform(low, length - low - travel))  # start along the motion, leaving room to travel
    across = float(rng.uniform(low, breadth - low))
    start = _start_point(direction, along, across, length)
    return ShapeClip(shape, direction, radius, speed, _sample_color(rng), start, num_frames, size)


def _start_point(direction: str, along: float, across: float, length: int) -> Tuple[float, float]:
    """(cx, cy) of a centre ``along`` px from the border the motion comes from and ``across`` px across it, in a
    frame ``length`` px long along the motion."""
    dx, dy = DIRECTION_VECTORS[direction]
    if dx != 0:
        return (along if dx > 0 else length - along, across)
    return (across, along if dy > 0 else length - along)


def _sample_color(rng: np.random.Generator) -> Tuple[int, int, int]:
    """A uniformly random hue at full saturation and value, as uint8 RGB."""
    red, green, blue = colorsys.hsv_to_rgb(float(rng.uniform(0.0, 1.0)), 1.0, 1.0)
    return tuple(int(round(255 * c)) for c in (red, green, blue))


def sample_window_clip(
    rng: np.random.Generator, label: int, num_frames: int = NUM_FRAMES, size=FRAME_SIZE
) -> ShapeClip:
    """Draw a window of ``num_frames`` frames of a longer straight trajectory of class ``label``.

    Radius and speed are uniform over their full ranges, the position across the motion keeps the shape
    inside (it can only cross the borders it moves through). The start along the motion is uniform over
    the positions where the shape is at least MIN_ENTRY_DEPTH px inside in frame 0 (it may still be
    entering) and fully inside, margin included, in at least one frame of the window (so its class shows);
    after that it may reach the far border and leave, then the frames stay black.
    """
    shape, direction = split_class_id(label)
    _travel_limits(num_frames, size)
    radius = float(rng.uniform(*RADIUS_RANGE))
    speed = float(rng.uniform(*SPEED_RANGE))
    length, breadth = _axes(direction, size)
    inner = radius + BORDER_MARGIN  # smallest centre coordinate that keeps the box inside
    entering = MIN_ENTRY_DEPTH - radius  # centre coordinate of a shape MIN_ENTRY_DEPTH px into the frame
    along = float(rng.uniform(max(entering, inner - speed * max(num_frames - 1, 0)), length - inner))
    across = float(rng.uniform(inner, breadth - inner))
    start = _start_point(direction, along, across, length)
    return ShapeClip(shape, direction, radius, speed, _sample_color(rng), start, num_frames, size)


def sample_exit_clip(
    rng: np.random.Generator, label: int, num_frames: int = NUM_FRAMES, size=FRAME_SIZE
) -> ShapeClip:
    """Draw a window of a longer trajectory of class ``label`` that starts as the shape leaves, or after.

    Radius, speed and the position across the motion are drawn as in :func:`sample_window_clip`. The start
    along the motion is uniform from the position where the box touches the far border to
    ``num_frames // 2`` frames after the shape has gone, so in frame 0 the shape is partly visible and
    leaving, or already gone; it is never fully inside in any frame, and nothing enters.
    """
    shape, direction = split_class_id(label)
    _travel_limits(num_frames, size)
    radius = float(rng.uniform(*RADIUS_RANGE))
    speed = float(rng.uniform(*SPEED_RANGE))
    length, breadth = _axes(direction, size)
    inner = radius + BORDER_MARGIN
    gone = length + radius  # centre coordinate at which the box has just left through the far border
    along = float(rng.uniform(length - radius, gone + speed * (num_frames // 2)))  # the box already crosses it
    across = float(rng.uniform(inner, breadth - inner))
    start = _start_point(direction, along, across, length)
    return ShapeClip(shape, direction, radius, speed, _sample_color(rng), start, num_frames, size)


def sample_long_clip(
    rng: np.random.Generator,
    label: int,
    context_frames: int = NUM_FRAMES,
    long_frames: int = LONG_FRAMES,
    size=FRAME_SIZE,
) -> ShapeClip:
    """An ordinary ``context_frames`` clip (:func:`sample_clip`) that goes on for ``long_frames`` frames.

    Its first ``context_frames`` frames are fully inside, distributed like the ordinary clips; the rest
    follow the same line at the same speed, so the shape reaches the border and leaves (at 48 frames of
    64x64 it has always left by the last frame).
    """
    if long_frames <= context_frames:
        raise UserError(f"long clips need more frames than their {context_frames}-frame context, got {long_frames}")
    return dataclasses.replace(sample_clip(rng, label, context_frames, size), num_frames=long_frames)


#################################################################################
#                                 Rasteriser                                    #
#################################################################################


def _half_width(shape: str, y: np.ndarray, radius: float) -> np.ndarray:
    """Half width of the shape's horizontal cross-section at height ``y`` (relative to the centre); 0 outside."""
    inside = np.abs(y) <= radius
    if shape == "circle":
        half = np.sqrt(np.clip(radius**2 - y**2, 0.0, None))
    elif shape == "square":
        half = np.full_like(y, radius)
    elif shape == "triangle":  # apex (0, -r), base from (-r, r) to (r, r): the half width grows as (y + r) / 2
        half = (y + radius) / 2
    else:
        raise UserError(f"unknown shape {shape!r}; one of {SHAPES}")
    return np.where(inside, half, 0.0)


def shape_coverage(
    shape: str, cx: float, cy: float, radius: float, size, supersample: int = SUPERSAMPLE
) -> np.ndarray:
    """Fraction of each pixel covered by the shape: float (H, W) in [0, 1] (``size``: a side or (H, W)).

    Each pixel row is cut into ``supersample`` sub-rows; on a sub-row the shape is an interval
    ``[cx - h, cx + h]`` whose overlap with every pixel column is exact. Horizontal positions are thus
    rendered exactly and vertical ones to 1 / supersample px, so sub-pixel motion is smooth.
    """
    height, width = frame_hw(size)
    y = (np.arange(height * supersample) + 0.5) / supersample - cy  # (S,) sub-row centres, relative to the centre
    half = _half_width(shape, y, radius)[:, None]  # (S, 1)
    left_edges = np.arange(width, dtype=np.float64)[None, :]  # (1, W) pixel column j spans [j, j + 1)
    overlap = np.minimum(cx + half, left_edges + 1) - np.maximum(cx - half, left_edges)  # (S, W)
    overlap = np.clip(overlap, 0.0, 1.0)
    return overlap.reshape(height, supersample, width).mean(axis=1)  # (H, W)


def render_clip(clip: ShapeClip, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """uint8 frames (T, H, W, 3) of ``clip``."""
    color = np.asarray(clip.color, dtype=np.float64)
    frames = np.empty((clip.num_frames, *frame_hw(clip.size), 3), dtype=np.uint8)
    for t, (cx, cy) in enumerate(clip.centers()):
        coverage = shape_coverage(clip.shape, cx, cy, clip.radius, clip.size, supersample)  # (H, W)
        frames[t] = np.round(coverage[..., None] * color).astype(np.uint8)  # (H, W, 3)
    return frames


# A split's index seeds its clips' generators; new splits are appended so the old ones keep their clips.
SPLITS = ("train", "val", "train_window", "val_long", "train_exit", "train_still")
# The frame mask a clip of each split must be trained with (the CSV column ``frame_mask``; "" = any).
SPLIT_FRAME_MASK = {"train_exit": "first_k"}


def clip_rng(seed: int, split: str, label: int, k: int) -> np.random.Generator:
    """The generator of clip ``k`` of class ``label`` in ``split``: clips do not depend on each other."""
    if split not in SPLITS:
        raise UserError(f"unknown shapes split {split!r}; one of {SPLITS}")
    return np.random.default_rng([int(seed), SPLITS.index(split), int(label), int(k)])


def split_clip(
    seed: int,
    label: int,
    k: int,
    split: str,
    num_frames: int = NUM_FRAMES,
    size=FRAME_SIZE,
    long_frames: int = LONG_FRAMES,
) -> ShapeClip:
    """Parameters of clip ``k`` of class ``label`` in ``split``: "train" and "val" clips are ordinary,
    "train_window" clips are windows of longer trajectories, "train_exit" clips windows that start as the
    shape leaves or after, and "val_long" clips have ``long_frames`` frames whose first ``num_frames`` are
    ordinary."""
    rng = clip_rng(seed, split, label, k)
    if split == "train_still":  # one frame: the first of an ordinary clip
        return sample_clip(rng, label, 1, size)
    if split == "train_window":
        return sample_window_clip(rng, label, num_frames, size)
    if split == "train_exit":
        return sample_exit_clip(rng, label, num_frames, size)
    if split == "val_long":
        return sample_long_clip(rng, label, num_frames, long_frames, size)
    return sample_clip(rng, label, num_frames, size)


def generate_clip(
    seed: int,
    label: int,
    k: int = 0,
    split: str = "train",
    num_frames: int = NUM_FRAMES,
    size=FRAME_SIZE,
    long_frames: int = LONG_FRAMES,
) -> Tuple[np.ndarray, ShapeClip]:
    """Frames uint8 (T, H, W, 3) and parameters of clip ``k`` of class ``label`` in ``split`` (deterministic)."""
    clip = split_clip(seed, label, k, split, num_frames, size, long_frames)
    return render_clip(clip), clip


#################################################################################
#                                Dataset writer                                 #
#################################################################################

CSV_COLUMNS = ("path", "label", "shape", "direction")
# train.csv with exit windows also says which clips must be trained with their first frames given.
TRAIN_CSV_COLUMNS = CSV_COLUMNS + ("frame_mask",)
# val_long.csv also says how many leading frames are an ordinary (fully inside) clip, the context to continue
# from, and the first frame with nothing of the shape left in view.
LONG_CSV_COLUMNS = CSV_COLUMNS + ("context_frames", "exit_frame")


def _dataset_outputs(out: Path) -> List[Path]:
    names = ["train.csv", "val.csv", "val_long.csv", "classes.json", "train", "val", "val_long"]
    return [out / name for name in names]


def _check_counts(clips_per_class: int, val_clips_per_class: int, val_long_clips_per_class: int,
                  long_fraction: float, exit_fraction: float = 0.0) -> None:
    if clips_per_class < 1 or val_clips_per_class < 0 or val_long_clips_per_class < 0:
        raise UserError(
            f"clips_per_class must be >= 1 and val_clips_per_class, val_long_clips_per_class >= 0, got "
            f"{clips_per_class}, {val_clips_per_class}, {val_long_clips_per_class}"
        )
    if not 0.0 <= long_fraction <= 1.0:
        raise UserError(f"long_fraction must be in [0, 1], got {long_fraction}")
    if not 0.0 <= exit_fraction <= 1.0 - long_fraction:
        raise UserError(f"exit_fraction must be in [0, 1 - long_fraction] = [0, {1.0 - long_fraction:g}], "
                        f"got {exit_fraction}")


def _plan(seed: int, clips_per_class: int, val_clips_per_class: int, val_long_clips_per_class: int,
          long_fraction: float, num_frames: int, size, long_frames: int,
          exit_fraction: float = 0.0, sizes: Sequence = (), stills_per_class: int = 0,
          ) -> Dict[str, List[Tuple[str, str, ShapeClip]]]:
    """CSV name -> its rows as (relative path, split, clip parameters), class by class.

    A class's training clips are its ordinary clips ``<k>.mp4`` (the same as without windows, k counting
    from 0) followed by ``round(long_fraction * clips_per_class)`` windows ``window_<k>.mp4``,
    ``round(exit_fraction * clips_per_class)`` exit windows ``exit_<k>.mp4`` and ``stills_per_class`` stills
    ``still_<k>.png``. With ``sizes``, clip k of each kind has frames of ``sizes[k % len(sizes)]``.
    """
    windows = int(round(long_fraction * clips_per_class))
    exits = int(round(exit_fraction * clips_per_class))
    parts = {  # csv (and folder) -> its sources: (split of the generators, clips per class, file prefix)
        "train": [("train", clips_per_class - windows - exits, ""), ("train_window", windows, "window_"),
                  ("train_exit", exits, "exit_"), ("train_still", stills_per_class, "still_")],
        "val": [("val", val_clips_per_class, "")],
        "val_long": [("val_long", val_long_clips_per_class, "")],
    }
    plan = {}
    for csv_name, sources in parts.items():
        for label in range(NUM_CLASSES):
            for split, per_class, prefix in sources:
                for k in range(per_class):
                    suffix = ".png" if split == "train_still" else ".mp4"
                    relative = f"{csv_name}/{label:02d}_{CLASS_NAMES[label]}/{prefix}{k:05d}{suffix}"
                    clip_size = sizes[k % len(sizes)] if sizes else size
                    clip = split_clip(seed, label, k, split, num_frames, clip_size, long_frames)
                    plan.setdefault(csv_name, []).append((relative, split, clip))
    return plan


def _csv_row(relative: str, split: str, clip: ShapeClip, context_frames: Optional[int] = None) -> Dict[str, object]:
    """One CSV row; with ``context_frames`` (long clips) also that and the exit frame (-1: never leaves)."""
    row = dict(path=relative, label=clip.label, shape=clip.shape, direction=clip.direction)
    if split in SPLIT_FRAME_MASK:
        row.update(frame_mask=SPLIT_FRAME_MASK[split])
    if context_frames is not None:
        gone = np.flatnonzero(clip.gone())
        row.update(context_frames=context_frames, exit_frame=int(gone[0]) if len(gone) else -1)
    return row


def _write_csv(path: Path, rows: List[Dict[str, object]], columns: Tuple[str, ...]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def make_shapes_dataset(
    out_dir: Union[str, Path],
    clips_per_class: int,
    num_frames: int = NUM_FRAMES,
    size=FRAME_SIZE,
    seed: int = 0,
    val_clips_per_class: int = 0,
    overwrite: bool = False,
    fps: float = DEFAULT_FPS,
    crf: int = DEFAULT_CRF,
    progress: bool = True,
    long_fraction: float = 0.0,
    val_long_clips_per_class: int = 0,
    long_frames: int = LONG_FRAMES,
    exit_fraction: float = 0.0,
    sizes: Sequence[Tuple[int, int]] = (),
    stills_per_class: int = 0,
) -> Dict[str, Path]:
    """Write the benchmark to ``out_dir`` and return the paths of what was written.

    Layout: ``train/<id>_<name>/<k>.mp4`` (class folders sort in class-id order, so the folder form of
    VideoClipDataset gives the same ids), ``train.csv``, ``classes.json``, and with
    ``val_clips_per_class > 0`` the same for ``val`` (different random draws: held-out clips). An existing
    dataset in ``out_dir`` is replaced only with ``overwrite=True``.

    Long clips: ``long_fraction`` of each class's training clips are windows of longer trajectories
    (``train/<id>_<name>/window_<k>.mp4``, :func:`sample_window_clip`); the ordinary ones keep their files.
    ``val_long_clips_per_class > 0`` writes ``val_long/`` and ``val_long.csv``: held-out clips of
    ``long_frames`` frames whose first ``num_frames`` are fully inside (:func:`sample_long_clip`).
    ``exit_fraction`` of them are exit windows (``exit_<k>.mp4``, :func:`sample_exit_clip`), which
    ``train.csv`` marks ``frame_mask=first_k``: the shape is leaving or gone, so they are only trained as
    continuations (training/frame_masks.py).

    Mixed sizes (buckets, data/buckets.py): with ``sizes`` [(height, width), ...] clip k of each class and kind
    has frames of ``sizes[k % len(sizes)]`` instead of ``size`` x ``size``; ``stills_per_class`` adds still
    images ``train/<id>_<name>/still_<k>.png`` (frame 0 of an ordinary clip), the 1-frame clips of joint image
    and video training.
    """
    out = Path(out_dir)
    _check_counts(clips_per_class, val_clips_per_class, val_long_clips_per_class, long_fraction, exit_fraction)
    if stills_per_class < 0:
        raise UserError(f"stills_per_class must be >= 0, got {stills_per_class}")
    for clip_size in sizes or [size]:
        _travel_limits(num_frames, clip_size)
    if val_long_clips_per_class and long_frames <= num_frames:
        raise UserError(f"long_frames must exceed the {num_frames} frames of a clip, got {long_frames}")
    existing = [p for p in _dataset_outputs(out) if p.exists()]
    if existing and not overwrite:
        raise UserError(f"{out} already holds a shapes dataset ({existing[0].name}); pass --overwrite to replace it")
    for p in existing:  # only what this function writes, never anything else in out_dir
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)

    plan = _plan(seed, clips_per_class, val_clips_per_class, val_long_clips_per_class, long_fraction, num_frames,
                 size, long_frames, exit_fraction, [frame_hw(s) for s in sizes], stills_per_class)
    written = {}
    with tqdm(total=sum(map(len, plan.values())), desc="shapes clips", disable=not progress) as bar:
        for csv_name, clips in plan.items():
            long = csv_name == "val_long"
            rows = []
            for relative, split, clip in clips:
                if split == "train_still":
                    (out / relative).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(render_clip(clip)[0]).save(out / relative)
                else:
                    write_video(out / relative, render_clip(clip), fps=fps, quality=crf, overwrite=True)
                rows.append(_csv_row(relative, split, clip, num_frames if long else None))
                bar.update(1)
            written[csv_name] = out / f"{csv_name}.csv"
            columns = CSV_COLUMNS
            if long:
                columns = LONG_CSV_COLUMNS
            elif any("frame_mask" in row for row in rows):
                columns = TRAIN_CSV_COLUMNS
            _write_csv(written[csv_name], rows, columns)
    classes = out / "classes.json"
    classes.write_text(json.dumps({str(i): name for i, name in enumerate(CLASS_NAMES)}, indent=1) + "\n")
    written["classes"] = classes
    return written
