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
covered fraction.
:func:`make_shapes_dataset` writes H.264 MP4 files plus ``train.csv`` / ``val.csv`` (path,label,shape,
direction) and ``classes.json``, deterministically for a seed; they are read back by
:class:`~opensora_lite.data.datasets.VideoClipDataset` like real data.
"""
import colorsys
import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np
from tqdm import tqdm

from ..errors import UserError
from .video_io import write_video

SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("right", "left", "down", "up")
# Unit displacement per direction in image coordinates (x to the right, y downwards).
DIRECTION_VECTORS = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "down": (0.0, 1.0), "up": (0.0, -1.0)}
NUM_CLASSES = len(SHAPES) * len(DIRECTIONS)  # 12
CLASS_NAMES = [f"{shape}-{direction}" for shape in SHAPES for direction in DIRECTIONS]

NUM_FRAMES = 16  # docs/shapes_benchmark.md defaults
FRAME_SIZE = 64
RADIUS_RANGE = (8.0, 12.0)  # px, radius of the circle, half side of the square / triangle
SPEED_RANGE = (1.5, 2.5)  # px per frame
BORDER_MARGIN = 1.0  # px of black kept around the shape's box, so no frame edge pixel is ever covered
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
    size: int = FRAME_SIZE

    @property
    def label(self) -> int:
        return class_id(self.shape, self.direction)

    def centers(self) -> np.ndarray:
        """(T, 2) array of (cx, cy) per frame."""
        dx, dy = DIRECTION_VECTORS[self.direction]
        t = np.arange(self.num_frames, dtype=np.float64)
        return np.stack([self.start[0] + dx * self.speed * t, self.start[1] + dy * self.speed * t], axis=1)


def _travel_limits(num_frames: int, size: int) -> None:
    """Raise if even the smallest, slowest shape cannot stay inside the frame for ``num_frames``."""
    room = size - 2 * RADIUS_RANGE[0] - 2 * BORDER_MARGIN
    if SPEED_RANGE[0] * (num_frames - 1) > room:
        longest = int(room // SPEED_RANGE[0]) + 1
        if longest < 2:  # not even two frames fit: name the size that does
            need = int(np.ceil(2 * RADIUS_RANGE[0] + 2 * BORDER_MARGIN + SPEED_RANGE[0] * max(num_frames - 1, 1)))
            raise UserError(f"a {size}x{size} frame is too small for a moving shape; use a size of at least {need}")
        raise UserError(
            f"a {size}x{size} frame holds a moving shape for at most {longest} frames at "
            f"{SPEED_RANGE[0]} px/frame; use fewer frames or a larger size"
        )


def sample_clip(
    rng: np.random.Generator, label: int, num_frames: int = NUM_FRAMES, size: int = FRAME_SIZE
) -> ShapeClip:
    """Draw the parameters of one clip of class ``label``.

    Radius and speed are uniform in their ranges; for long clips or small frames their upper bounds are
    lowered to what still fits inside the frame (never needed at the default 16 frames of 64x64). The start
    is uniform over the positions that keep the whole box inside the frame, margin included, in every frame.
    """
    shape, direction = split_class_id(label)
    _travel_limits(num_frames, size)
    steps = max(num_frames - 1, 0)
    lo, hi = SPEED_RANGE
    max_radius = (size - 2 * BORDER_MARGIN - lo * steps) / 2
    radius = float(rng.uniform(RADIUS_RANGE[0], min(RADIUS_RANGE[1], max_radius)))
    max_speed = (size - 2 * radius - 2 * BORDER_MARGIN) / steps if steps else hi
    speed = float(rng.uniform(lo, min(hi, max_speed)))
    travel = speed * steps
    low = radius + BORDER_MARGIN  # smallest centre coordinate that keeps the box inside
    high = size - radius - BORDER_MARGIN
    dx, dy = DIRECTION_VECTORS[direction]
    along = float(rng.uniform(low, high - travel))  # start coordinate along the motion, leaving room to travel
    across = float(rng.uniform(low, high))
    if dx != 0:
        start = (along if dx > 0 else size - along, across)
    else:
        start = (across, along if dy > 0 else size - along)
    red, green, blue = colorsys.hsv_to_rgb(float(rng.uniform(0.0, 1.0)), 1.0, 1.0)
    color = tuple(int(round(255 * c)) for c in (red, green, blue))
    return ShapeClip(shape, direction, radius, speed, color, start, num_frames, size)


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
    shape: str, cx: float, cy: float, radius: float, size: int, supersample: int = SUPERSAMPLE
) -> np.ndarray:
    """Fraction of each pixel covered by the shape: float (size, size) in [0, 1].

    Each pixel row is cut into ``supersample`` sub-rows; on a sub-row the shape is an interval
    ``[cx - h, cx + h]`` whose overlap with every pixel column is exact. Horizontal positions are thus
    rendered exactly and vertical ones to 1 / supersample px, so sub-pixel motion is smooth.
    """
    y = (np.arange(size * supersample) + 0.5) / supersample - cy  # (S,) sub-row centres, relative to the centre
    half = _half_width(shape, y, radius)[:, None]  # (S, 1)
    left_edges = np.arange(size, dtype=np.float64)[None, :]  # (1, W) pixel column j spans [j, j + 1)
    overlap = np.minimum(cx + half, left_edges + 1) - np.maximum(cx - half, left_edges)  # (S, W)
    overlap = np.clip(overlap, 0.0, 1.0)
    return overlap.reshape(size, supersample, size).mean(axis=1)  # (H, W)


def render_clip(clip: ShapeClip, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """uint8 frames (T, H, W, 3) of ``clip``."""
    color = np.asarray(clip.color, dtype=np.float64)
    frames = np.empty((clip.num_frames, clip.size, clip.size, 3), dtype=np.uint8)
    for t, (cx, cy) in enumerate(clip.centers()):
        coverage = shape_coverage(clip.shape, cx, cy, clip.radius, clip.size, supersample)  # (H, W)
        frames[t] = np.round(coverage[..., None] * color).astype(np.uint8)  # (H, W, 3)
    return frames


def clip_rng(seed: int, split: str, label: int, k: int) -> np.random.Generator:
    """The generator of clip ``k`` of class ``label`` in ``split``: clips do not depend on each other."""
    return np.random.default_rng([int(seed), ("train", "val").index(split), int(label), int(k)])


def generate_clip(
    seed: int, label: int, k: int = 0, split: str = "train", num_frames: int = NUM_FRAMES, size: int = FRAME_SIZE
) -> Tuple[np.ndarray, ShapeClip]:
    """Frames uint8 (T, H, W, 3) and parameters of clip ``k`` of class ``label`` (deterministic)."""
    clip = sample_clip(clip_rng(seed, split, label, k), label, num_frames, size)
    return render_clip(clip), clip


#################################################################################
#                                Dataset writer                                 #
#################################################################################

CSV_COLUMNS = ("path", "label", "shape", "direction")


def _dataset_outputs(out: Path) -> List[Path]:
    return [out / "train.csv", out / "val.csv", out / "classes.json", out / "train", out / "val"]


def make_shapes_dataset(
    out_dir: Union[str, Path],
    clips_per_class: int,
    num_frames: int = NUM_FRAMES,
    size: int = FRAME_SIZE,
    seed: int = 0,
    val_clips_per_class: int = 0,
    overwrite: bool = False,
    fps: float = DEFAULT_FPS,
    crf: int = DEFAULT_CRF,
    progress: bool = True,
) -> Dict[str, Path]:
    """Write the benchmark to ``out_dir`` and return the paths of what was written.

    Layout: ``train/<id>_<name>/<k>.mp4`` (class folders sort in class-id order, so the folder form of
    VideoClipDataset gives the same ids), ``train.csv``, ``classes.json``, and with
    ``val_clips_per_class > 0`` the same for ``val`` (different random draws: held-out clips). An existing
    dataset in ``out_dir`` is replaced only with ``overwrite=True``.
    """
    out = Path(out_dir)
    if clips_per_class < 1 or val_clips_per_class < 0:
        raise UserError(
            f"clips_per_class must be >= 1 and val_clips_per_class >= 0, got {clips_per_class}, {val_clips_per_class}"
        )
    _travel_limits(num_frames, size)
    existing = [p for p in _dataset_outputs(out) if p.exists()]
    if existing and not overwrite:
        raise UserError(f"{out} already holds a shapes dataset ({existing[0].name}); pass --overwrite to replace it")
    for p in existing:  # only what this function writes, never anything else in out_dir
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)

    splits = [("train", clips_per_class)] + ([("val", val_clips_per_class)] if val_clips_per_class else [])
    written = {}
    with tqdm(total=NUM_CLASSES * sum(n for _, n in splits), desc="shapes clips", disable=not progress) as bar:
        for split, per_class in splits:
            rows = []
            for label in range(NUM_CLASSES):
                folder = f"{split}/{label:02d}_{CLASS_NAMES[label]}"
                for k in range(per_class):
                    frames, clip = generate_clip(seed, label, k, split, num_frames, size)
                    relative = f"{folder}/{k:05d}.mp4"
                    write_video(out / relative, frames, fps=fps, quality=crf, overwrite=True)
                    rows.append(dict(path=relative, label=label, shape=clip.shape, direction=clip.direction))
                    bar.update(1)
            csv_path = out / f"{split}.csv"
            with open(csv_path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
            written[split] = csv_path
    classes = out / "classes.json"
    classes.write_text(json.dumps({str(i): name for i, name in enumerate(CLASS_NAMES)}, indent=1) + "\n")
    written["classes"] = classes
    return written
