"""An independent judge of moving-shapes clips (docs/shapes_benchmark.md): which shape, moving which way?

It knows nothing about any generator: it segments the bright foreground of each frame, checks that it
is one plausible blob, tracks its centroid to get the direction, and classifies the shape from the
mask geometry. Garbage (noise, a black clip, several blobs, a shape that does not move in a straight
line) gets ``class_id = None``, which never counts as correct.

Shape features (medians over the valid frames), with their ideal values:

=========  =========================  ======================================
shape      fill (area / width*height)  offset (minus the skewness along y)
=========  =========================  ======================================
circle     pi / 4 = 0.785             0
square     1.0                        0
triangle   0.5                        2 sqrt(2) / 5 = 0.566 (mass low: apex up)
=========  =========================  ======================================

Width is the widest row and height the tallest column of the soft coverage mask; a triangle with its
apex down has offset -0.566 and is rejected.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..data.shapes import CLASS_NAMES, DIRECTIONS, SHAPES, class_id
from ..data.video_io import to_uint8

# (fill, offset) of the ideal shapes. The triangle's fill is measured at ~0.55 rather than 0.5: averaging
# over a pixel shortens its widest row (the base) and its tallest column (through the apex).
SHAPE_PROTOTYPES = {"circle": (np.pi / 4, 0.0), "square": (1.0, 0.0), "triangle": (0.55, 2 * np.sqrt(2) / 5)}
MAX_PROTOTYPE_DISTANCE = 0.15  # farther than this from every prototype: not one of our shapes

MIN_BRIGHTNESS = 48  # uint8: a pixel's max channel must exceed this to be foreground at all
RELATIVE_THRESHOLD = 0.5  # ... and half the frame's peak brightness (a half-covered edge pixel)
NOISE_FLOOR = 16  # uint8: darker pixels count as background in the soft coverage (codec ringing)
SOFT_BORDER = 2  # px around the binary mask included in the soft coverage window
MIN_AREA, MAX_AREA = 60, 900  # px: the shapes cover 128 (triangle r=8) to 576 (square r=12)
MIN_MAIN_BLOB = 0.9  # the blob around the brightest pixel must hold this fraction of the foreground
MIN_VALID_FRAMES = 0.75  # fraction of frames that must show one plausible blob
MIN_SPEED = 0.5  # px/frame: slower is "static" (the benchmark moves 1.5-2.5)
MIN_DOMINANCE = 3.0  # |main axis speed| / |other axis speed| for a clean direction
MAX_TRACK_RESIDUAL = 1.5  # px, RMS distance of centroids from a constant-velocity line
MIN_SHAPE_AGREEMENT = 0.75  # fraction of valid frames whose own shape vote agrees with the clip's


def _main_blob_fraction(mask: np.ndarray, seed: tuple) -> float:
    """Fraction of ``mask``'s pixels 4-connected to pixel ``seed`` (flood fill by repeated dilation)."""
    blob = np.zeros_like(mask)
    blob[seed] = True
    while True:
        grown = blob.copy()
        grown[1:] |= blob[:-1]
        grown[:-1] |= blob[1:]
        grown[:, 1:] |= blob[:, :-1]
        grown[:, :-1] |= blob[:, 1:]
        grown &= mask
        if np.array_equal(grown, blob):
            return blob.sum() / mask.sum()
        blob = grown


def _frame_features(frame: np.ndarray) -> Optional[dict]:
    """Geometry of one uint8 (H, W, 3) frame, or None if it is not one plausible blob.

    The binary mask (half the peak brightness) decides whether there is one blob; the measurements use
    soft coverage (brightness / peak) around it, which is sub-pixel accurate: ``fill`` = area / (widest
    row * tallest column) and ``offset`` = minus the skewness of the mass along y.
    """
    value = frame.max(axis=-1).astype(np.float64)  # (H, W) HSV value: the background is black
    peak = value.max()
    if peak <= MIN_BRIGHTNESS:
        return None
    mask = value > max(MIN_BRIGHTNESS, RELATIVE_THRESHOLD * peak)  # (H, W) bool
    area = int(mask.sum())
    brightest = np.unravel_index(np.argmax(value), value.shape)
    if not MIN_AREA <= area <= MAX_AREA or _main_blob_fraction(mask, brightest) < MIN_MAIN_BLOB:
        return None
    ys, xs = np.nonzero(mask)
    top, left = max(ys.min() - SOFT_BORDER, 0), max(xs.min() - SOFT_BORDER, 0)
    bottom, right = ys.max() + 1 + SOFT_BORDER, xs.max() + 1 + SOFT_BORDER
    window = value[top:bottom, left:right]  # (h, w) around the blob
    coverage = np.where(window > NOISE_FLOOR, np.minimum(window / peak, 1.0), 0.0)
    row_mass, col_mass = coverage.sum(axis=1), coverage.sum(axis=0)  # (h,), (w,): width per row, height per column
    soft_area = row_mass.sum()
    y = np.arange(len(row_mass)) + top + 0.5  # pixel centres
    x = np.arange(len(col_mass)) + left + 0.5
    cy, cx = (row_mass * y).sum() / soft_area, (col_mass * x).sum() / soft_area
    var_y = (row_mass * (y - cy) ** 2).sum() / soft_area
    skew_y = (row_mass * (y - cy) ** 3).sum() / soft_area / max(var_y, 1e-6) ** 1.5
    return dict(
        area=float(soft_area),
        centroid=(float(cx), float(cy)),  # px
        fill=float(soft_area / (row_mass.max() * col_mass.max())),
        offset=float(-skew_y),
    )


def _nearest_shape(fill: float, offset: float) -> Tuple[Optional[str], float]:
    """The prototype closest to (fill, offset), or None if none is within MAX_PROTOTYPE_DISTANCE."""
    distances = {s: float(np.hypot(fill - f, offset - o)) for s, (f, o) in SHAPE_PROTOTYPES.items()}
    shape = min(distances, key=distances.get)
    return (shape if distances[shape] <= MAX_PROTOTYPE_DISTANCE else None), distances[shape]


def _direction(centroids: np.ndarray, times: np.ndarray) -> dict:
    """Least-squares constant velocity of the centroid track -> direction or None."""
    design = np.stack([times, np.ones_like(times)], axis=1)  # (K, 2)
    coef, *_ = np.linalg.lstsq(design, centroids, rcond=None)  # (2, 2): velocity row, intercept row
    velocity = coef[0]  # (vx, vy) px/frame
    residual = float(np.sqrt(((design @ coef - centroids) ** 2).sum(axis=1).mean()))
    speed = float(np.hypot(*velocity))
    vx, vy = velocity
    main, other = (abs(vx), abs(vy)) if abs(vx) >= abs(vy) else (abs(vy), abs(vx))
    if speed < MIN_SPEED:
        direction = "static"
    elif main < MIN_DOMINANCE * other or residual > MAX_TRACK_RESIDUAL:
        direction = None
    elif abs(vx) >= abs(vy):
        direction = "right" if vx > 0 else "left"
    else:
        direction = "down" if vy > 0 else "up"
    return dict(direction=direction, velocity=(float(vx), float(vy)), speed=speed, track_residual=residual)


def judge_clip(video) -> dict:
    """Judge one clip: uint8 (T, H, W, 3) or float (3, T, H, W) in [-1, 1].

    Returns ``dict(shape, direction, class_id, class_name, ...)`` where shape is one of SHAPES or None,
    direction one of DIRECTIONS, "static" or None, and class_id is None unless both are valid; the other
    keys are diagnostics (fill, offset, speed, velocity, track_residual, valid_frames, shape_distance,
    shape_agreement, reason).
    """
    frames = to_uint8(video)
    if frames.ndim != 4:
        raise ValueError(f"judge_clip takes one clip, got shape {frames.shape}")
    result = dict(shape=None, direction=None, class_id=None, class_name=None, reason="")
    features = [_frame_features(f) for f in frames]
    valid = [t for t, f in enumerate(features) if f is not None]
    result["valid_frames"] = len(valid)
    if len(valid) < max(2, MIN_VALID_FRAMES * len(frames)):
        result["reason"] = f"only {len(valid)}/{len(frames)} frames show one plausible shape"
        return result
    feats = [features[t] for t in valid]
    fill = float(np.median([f["fill"] for f in feats]))
    offset = float(np.median([f["offset"] for f in feats]))
    shape, distance = _nearest_shape(fill, offset)
    votes = [_nearest_shape(f["fill"], f["offset"])[0] for f in feats]
    agreement = votes.count(shape) / len(votes) if shape else 0.0
    if shape is not None and agreement < MIN_SHAPE_AGREEMENT:
        shape = None
    motion = _direction(np.array([f["centroid"] for f in feats]), np.array(valid, dtype=np.float64))
    result.update(motion, shape=shape, fill=fill, offset=offset, shape_distance=distance, shape_agreement=agreement)
    if shape is None:
        result["reason"] = f"mask geometry (fill {fill:.2f}, offset {offset:.2f}) fits no shape consistently"
    elif motion["direction"] not in DIRECTIONS:
        result["reason"] = f"motion {motion['velocity']} is not a clean straight move ({motion['direction']})"
    else:
        result["class_id"] = class_id(shape, motion["direction"])
        result["class_name"] = CLASS_NAMES[result["class_id"]]
    return result


def judge_clips(videos) -> List[dict]:
    """:func:`judge_clip` for each clip of a batch (N, 3, T, H, W) / (N, T, H, W, 3) or a list of clips."""
    if isinstance(videos, (list, tuple)):
        return [judge_clip(v) for v in videos]
    batch = to_uint8(videos)
    return [judge_clip(v) for v in (batch if batch.ndim == 5 else batch[None])]


def judge_accuracy(videos, labels: Sequence[int]) -> float:
    """Fraction of clips whose judged class equals their label (a rejected clip counts as wrong)."""
    verdicts = judge_clips(videos)
    labels = [int(label) for label in labels]
    if len(verdicts) != len(labels):
        raise ValueError(f"{len(verdicts)} clips but {len(labels)} labels")
    if not labels:
        raise ValueError("judge_accuracy needs at least one clip")
    return sum(v["class_id"] == label for v, label in zip(verdicts, labels)) / len(labels)


__all__ = ["SHAPES", "DIRECTIONS", "judge_clip", "judge_clips", "judge_accuracy"]
