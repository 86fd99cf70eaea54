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

:func:`judge_consistency` checks clips of any length, in which the shape may enter or leave the frame: one
object of constant colour, shape and size, one constant-velocity track of its unclipped edges, and frames
empty exactly when that track is out of view. :func:`judge_image_to_video` also checks that a clip starts
from a given frame. docs/shapes_benchmark.md, "Judging clips of any length", describes both.
:func:`judge_clip` hands clips whose shape touches the border (windows entering or leaving) to
:func:`judge_consistency`.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..data.shapes import CLASS_NAMES, DIRECTIONS, SHAPES, SPEED_RANGE, class_id, split_class_id
from ..data.video_write import to_uint8
from ..errors import ShapeError

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


def _main_blob(mask: np.ndarray, seed: tuple) -> np.ndarray:
    """(H, W) bool: ``mask``'s pixels 4-connected to pixel ``seed`` (flood fill by repeated dilation)."""
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
            return blob
        blob = grown


def _main_blob_fraction(mask: np.ndarray, seed: tuple) -> float:
    """Fraction of ``mask``'s pixels 4-connected to pixel ``seed``."""
    return _main_blob(mask, seed).sum() / mask.sum()


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
    return _soft_geometry(value, mask, peak)


def _soft_geometry(value: np.ndarray, mask: np.ndarray, peak: float) -> dict:
    """Soft area, centroid, fill and offset (see :func:`_frame_features`) of the blob ``mask`` in ``value``.

    Coverage is brightness / ``peak`` in a window SOFT_BORDER px around the mask's box.
    """
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
    vx, vy = velocity
    direction = _velocity_direction(vx, vy)
    if direction in DIRECTIONS and residual > MAX_TRACK_RESIDUAL:
        direction = None
    speed = float(np.hypot(vx, vy))
    return dict(direction=direction, velocity=(float(vx), float(vy)), speed=speed, track_residual=residual)


def _velocity_direction(vx: float, vy: float) -> Optional[str]:
    """One of DIRECTIONS for a clean move along an axis, "static" below MIN_SPEED, else None."""
    main, other = (abs(vx), abs(vy)) if abs(vx) >= abs(vy) else (abs(vy), abs(vx))
    if np.hypot(vx, vy) < MIN_SPEED:
        return "static"
    if main < MIN_DOMINANCE * other:
        return None
    if abs(vx) >= abs(vy):
        return "right" if vx > 0 else "left"
    return "down" if vy > 0 else "up"


def judge_clip(video) -> dict:
    """Judge one clip: uint8 (T, H, W, 3) or float (3, T, H, W) in [-1, 1].

    Returns ``dict(shape, direction, class_id, class_name, ...)`` where shape is one of SHAPES or None,
    direction one of DIRECTIONS, "static" or None, and class_id is None unless both are valid; the other
    keys are diagnostics (fill, offset, speed, velocity, track_residual, valid_frames, shape_distance,
    shape_agreement, reason).

    A clip whose shape touches the frame's border in some frame (a window that enters or leaves, see
    docs/shapes_benchmark.md) is judged by :func:`judge_consistency` instead, whose shape and direction it
    returns when that accepts the clip; clips that never touch the border get the verdicts they always had.
    """
    frames = to_uint8(video)
    if frames.ndim != 4:
        raise ShapeError(f"judge_clip takes one clip, got shape {frames.shape}")
    consistency = judge_consistency(frames)
    if (consistency["visible"] & ~consistency["whole"]).any():
        return _border_verdict(consistency)
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


def _border_verdict(consistency: dict) -> dict:
    """judge_clip's verdict from :func:`judge_consistency`'s, for clips whose shape touches the border."""
    result = dict(shape=consistency["shape"], direction=consistency["direction"], class_id=None, class_name=None,
                  reason="; ".join(consistency["reasons"]), valid_frames=int(consistency["whole"].sum()),
                  speed=consistency["speed"], velocity=consistency["velocity"])
    if consistency["ok"]:  # then shape is one of SHAPES and direction one of DIRECTIONS
        result["class_id"] = class_id(consistency["shape"], consistency["direction"])
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
        raise ShapeError(f"{len(verdicts)} clips but {len(labels)} labels")
    if not labels:
        raise ShapeError("judge_accuracy needs at least one clip")
    return sum(v["class_id"] == label for v, label in zip(verdicts, labels)) / len(labels)


#################################################################################
#               Consistency of clips of any length, image-to-video              #
#################################################################################

# Thresholds of judge_consistency. "Real" below: 480 benchmark clips (48-frame val_long and 16-frame windows)
# written as H.264 and read back, all accepted; "VAE": 24 of them (first 16 frames) reconstructed by the
# shipped shapes VAE, which blurs edges and tints colours. Each leaves room for both, not for a broken clip.
CORE_BRIGHTNESS = 0.8  # x the clip's brightness: pixels this bright are well inside the shape and carry its colour
EDGE_LEVEL = 0.5  # an edge is where the coverage profile crosses half: a symmetric blur leaves that place unchanged
MIN_FULL_FRAMES = 1  # frames showing the whole shape (touching no border): they give its size, colour and shape
MAX_EDGE_RESIDUAL = 2.0  # px an unclipped edge may lie off the constant-velocity track (real <= 1.1, VAE <= 1.3)
PRESENCE_MARGIN = 1.5  # px: the track must reach this far into (out of) the frame for it to have to (not) show
MAX_COLOR_SHIFT = 80  # uint8 per channel off the clip's core colour (real <= 28, VAE <= 61; 30 deg of hue: ~128)
MAX_AREA_CHANGE = 0.15  # relative change of the whole shape's area (real <= 0.015, VAE <= 0.073; circle/square 0.27)
MAX_START_OFFSET = 2.0  # px: image-to-video keeps the given frame's centroid in frame 0 (issue #15)
SPEED_TOLERANCE = 0.25  # px/frame around SPEED_RANGE for image-to-video (speed measured to 0.05 on real clips)
OPPOSITE_EDGE = (2, 3, 0, 1)  # the edge across the shape from each one: unaffected while that one is clipped


def _clip_brightness(frames: np.ndarray) -> Optional[float]:
    """The shape's full brightness: median peak of the frames that show anything, or None for a black clip."""
    peaks = frames.max(axis=(1, 2, 3)).astype(np.float64)  # (T,)
    lit = peaks[peaks > MIN_BRIGHTNESS]
    return float(np.median(lit)) if len(lit) else None


def _rising_edge(profile: np.ndarray) -> float:
    """Where ``profile`` (coverage per pixel, entering the shape) first reaches EDGE_LEVEL, in px from its
    start, linearly interpolated between pixel centres."""
    j = int(np.argmax(profile >= EDGE_LEVEL))
    before = profile[j - 1] if j > 0 else 0.0
    return j - 0.5 + (EDGE_LEVEL - before) / (profile[j] - before)


def _blob_edges(coverage: np.ndarray, blob: np.ndarray) -> Tuple[float, float, float, float]:
    """Sub-pixel (left, top, right, bottom) of the blob: where its column / row profiles cross EDGE_LEVEL."""
    ys, xs = np.nonzero(blob)
    top, left = max(ys.min() - SOFT_BORDER, 0), max(xs.min() - SOFT_BORDER, 0)
    bottom, right = ys.max() + 1 + SOFT_BORDER, xs.max() + 1 + SOFT_BORDER  # exclusive, may pass the frame
    window = coverage[top:bottom, left:right]  # (h, w)
    columns, rows = window.max(axis=0), window.max(axis=1)  # (w,), (h,) profiles across x and y
    return (
        left + _rising_edge(columns),
        top + _rising_edge(rows),
        left + len(columns) - _rising_edge(columns[::-1]),
        top + len(rows) - _rising_edge(rows[::-1]),
    )


def _frame_object(frame: np.ndarray, brightness: float) -> Optional[dict]:
    """The object in one uint8 (H, W, 3) frame measured against the clip's ``brightness``; None if it is empty.

    Returns dict(blob_fraction, touches: 4 bools (left, top, right, bottom frame borders), edges: 4 px,
    area, centroid (cx, cy), shape: its vote or None when clipped, color: median RGB of its core or None).
    """
    value = frame.max(axis=-1).astype(np.float64)  # (H, W)
    mask = value > max(MIN_BRIGHTNESS, RELATIVE_THRESHOLD * brightness)
    if not mask.any():
        return None
    blob = _main_blob(mask, np.unravel_index(np.argmax(np.where(mask, value, 0.0)), value.shape))
    coverage = np.where(value > NOISE_FLOOR, np.minimum(value / brightness, 1.0), 0.0)  # (H, W)
    touches = (blob[:, 0].any(), blob[0].any(), blob[:, -1].any(), blob[-1].any())
    geometry = _soft_geometry(value, blob, brightness)
    core = _erode(blob & (value >= CORE_BRIGHTNESS * brightness))  # H.264 shares colour across 2x2 pixels
    return dict(
        blob_fraction=float(blob.sum() / mask.sum()),
        touches=touches,
        edges=_blob_edges(coverage, blob),
        area=geometry["area"],
        centroid=geometry["centroid"],
        shape=None if any(touches) else _nearest_shape(geometry["fill"], geometry["offset"])[0],
        color=tuple(float(c) for c in np.median(frame[core], axis=0)) if core.any() else None,
    )


def _erode(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels of ``mask`` whose 8 neighbours are all in it too (outside the frame is not)."""
    padded = np.pad(mask, 1)
    h, w = mask.shape
    return np.all([padded[i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)


def _observed_edges(obj: dict) -> List[int]:
    """Indices of the edges that show where the whole shape is: all four when it touches no border, else
    those across from a clipped edge (on that axis; the others are shortened by the clipping)."""
    if not any(obj["touches"]):
        return [0, 1, 2, 3]
    return [OPPOSITE_EDGE[e] for e in range(4) if obj["touches"][e] and not obj["touches"][OPPOSITE_EDGE[e]]]


def _fit_track(objects: List[Optional[dict]]) -> dict:
    """The constant-velocity track of the object, robust to a minority of frames off it (a jump, a second
    object reappearing): frames are dropped worst first while an edge lies over MAX_EDGE_RESIDUAL px off
    the fit of the others, down to half of the frames that show anything.

    Returns :func:`_fit_edges`'s dict for the kept frames, plus ``max_residual`` of the fit of all frames
    and ``off_track``: the dropped frames.
    """
    kept = [t for t, o in enumerate(objects) if o]
    track = first = _fit_edges(objects, kept)
    off_track, least = [], max(len(kept) / 2, 2)
    while track["max_residual"] > MAX_EDGE_RESIDUAL and len(kept) > least:
        off_track.append(track["worst_frame"])
        kept.remove(track["worst_frame"])
        track = _fit_edges(objects, kept)
    return dict(track, max_residual=first["max_residual"], off_track=sorted(off_track))


def _fit_edges(objects: List[Optional[dict]], frames: List[int]) -> dict:
    """Least-squares fit of the observed edges of ``frames``: edge e of frame t is ``intercept[e] + v_axis * t``.

    Returns dict(velocity (vx, vy), intercepts (4,) px, max_residual px, worst_frame).
    """
    velocity, intercepts, worst = [0.0, 0.0], np.full(4, np.nan), (0.0, None)
    for axis, pair in enumerate([(0, 2), (1, 3)]):  # x: left, right; y: top, bottom
        obs = [(t, e, objects[t]["edges"][e]) for t in frames for e in _observed_edges(objects[t]) if e in pair]
        if not obs:
            continue
        times, edges, positions = (np.array(column, dtype=np.float64) for column in zip(*obs))
        design = np.stack([times, edges == pair[0], edges == pair[1]], axis=1)  # (K, 3): velocity, 2 intercepts
        coef, *_ = np.linalg.lstsq(design, positions, rcond=None)
        residuals = np.abs(design @ coef - positions)  # (K,)
        velocity[axis], intercepts[list(pair)] = coef[0], coef[1:]
        if residuals.max() > worst[0]:
            worst = (float(residuals.max()), int(times[np.argmax(residuals)]))
    return dict(velocity=tuple(velocity), intercepts=intercepts, max_residual=worst[0], worst_frame=worst[1])


def _track_depth(track: dict, t: int, height: int, width: int) -> float:
    """How far the fitted shape reaches into the frame at frame ``t``, px (< 0: that far outside)."""
    vx, vy = track["velocity"]
    left, top, right, bottom = track["intercepts"] + np.array([vx, vy, vx, vy]) * t
    return float(min(min(right, width) - max(left, 0.0), min(bottom, height) - max(top, 0.0)))


def _appearance_reasons(objects: List[Optional[dict]], full: List[int]) -> Tuple[List[str], dict]:
    """One object of constant shape, colour and size: reasons it is not, and the clip's shape/colour/area."""
    reasons = []
    split = [t for t, o in enumerate(objects) if o and o["blob_fraction"] < MIN_MAIN_BLOB]
    if split:
        reasons.append(f"frames {split[:5]} show more than one object (split)")
    votes = [objects[t]["shape"] for t in full]
    shape = max(set(votes), key=votes.count)
    if shape is None or votes.count(shape) < MIN_SHAPE_AGREEMENT * len(votes):
        reasons.append(f"the shape is not one of {SHAPES} consistently (votes {votes[:8]})")
        shape = None
    colors = [objects[t]["color"] for t in full if objects[t]["color"]]
    color = tuple(float(c) for c in np.median(colors, axis=0)) if colors else None  # (r, g, b)
    measured = [(t, o["color"]) for t, o in enumerate(objects) if color and o and o["color"]]
    shifted = [t for t, c in measured if _color_shift(c, color) > MAX_COLOR_SHIFT]
    if shifted:
        reasons.append(f"the colour changes from {np.round(color).tolist()} in frames {shifted[:5]}")
    areas = np.array([objects[t]["area"] for t in full])
    area = float(np.median(areas))
    resized = [t for t, a in zip(full, areas) if abs(a / area - 1) > MAX_AREA_CHANGE]
    if resized:
        reasons.append(f"the size changes from {area:.0f} px in frames {resized[:5]}")
    return reasons, dict(shape=shape, color=color, area=area)


def _color_shift(a: Sequence[float], b: Sequence[float]) -> float:
    """Largest per-channel difference of two RGB colours."""
    return float(np.abs(np.subtract(a, b)).max())


def _motion_reasons(track: dict) -> Tuple[List[str], Optional[str]]:
    """A steady move along an axis: reasons it is not, and the direction."""
    direction = _velocity_direction(*track["velocity"])
    reasons = []
    if direction == "static":
        reasons.append(f"static (velocity {np.round(track['velocity'], 2).tolist()} px/frame)")
    elif direction is None:
        reasons.append(f"velocity {np.round(track['velocity'], 2).tolist()} is not along one axis")
    if track["off_track"]:
        reasons.append(f"frames {track['off_track'][:8]} are up to {track['max_residual']:.1f} px off a "
                       "constant-velocity track (a jump or a change of speed)")
    return reasons, direction


def _presence_reasons(objects: List[Optional[dict]], track: dict, height: int, width: int) -> List[str]:
    """The object shows exactly while its track is in view: it neither vanishes early nor reappears."""
    depths = [_track_depth(track, t, height, width) for t in range(len(objects))]
    vanished = [t for t, (o, d) in enumerate(zip(objects, depths)) if o is None and d > PRESENCE_MARGIN]
    stray = [t for t, (o, d) in enumerate(zip(objects, depths)) if o is not None and d < -PRESENCE_MARGIN]
    reasons = []
    if vanished:
        reasons.append(f"frames {vanished[:5]} are empty while the track is in view (vanishes)")
    if stray:
        reasons.append(f"frames {stray[:5]} show an object after its track has left (reappears or stays)")
    return reasons


def judge_consistency(video, label: Optional[int] = None) -> dict:
    """Check that a clip of any length shows one consistent moving shape: uint8 (T, H, W, 3) or float
    (3, T, H, W) in [-1, 1]; with ``label``, also that class's shape and direction at the benchmark's speed
    (SPEED_RANGE +- SPEED_TOLERANCE).

    Rules: one object (no split), of constant shape, colour and size while it is whole; a steady move along
    an axis, every unclipped edge within MAX_EDGE_RESIDUAL of one constant-velocity track (no jumps, no change
    of speed); at a border it leaves (or enters) cleanly: frames are empty exactly when that track is out of
    view, so nothing vanishes early and nothing reappears. Frames where the shape touches a border are
    measured by their unclipped edges only.

    Returns ``dict(ok, reasons: [str], shape, color (r, g, b), area, direction, velocity (vx, vy), speed,
    max_edge_residual, centroids (T, 2) px of the visible part (NaN when empty), visible (T,) bool,
    whole (T,) bool: touching no border, exit_frame: first empty frame after the object was seen, or None)``.
    """
    frames = to_uint8(video)
    if frames.ndim != 4:
        raise ShapeError(f"judge_consistency takes one clip, got shape {frames.shape}")
    num_frames, height, width = frames.shape[:3]
    brightness = _clip_brightness(frames)
    objects = [_frame_object(f, brightness) for f in frames] if brightness else [None] * num_frames
    visible = np.array([o is not None for o in objects])
    whole = np.array([o is not None and not any(o["touches"]) for o in objects])
    seen_then_gone = np.flatnonzero(~visible & (np.cumsum(visible) > 0))
    result = dict(
        ok=False, reasons=[], shape=None, color=None, area=None, direction=None, velocity=None, speed=None,
        max_edge_residual=None, visible=visible, whole=whole,
        centroids=np.array([o["centroid"] if o else (np.nan, np.nan) for o in objects]),  # (T, 2)
        exit_frame=int(seen_then_gone[0]) if len(seen_then_gone) else None,
    )
    if whole.sum() < MIN_FULL_FRAMES:
        result["reasons"].append(f"no frame shows one whole shape ({int(visible.sum())} show anything)")
        return result
    appearance_reasons, appearance = _appearance_reasons(objects, [int(t) for t in np.flatnonzero(whole)])
    track = _fit_track(objects)
    motion_reasons, direction = _motion_reasons(track)
    result.update(appearance, direction=direction, velocity=track["velocity"],
                  speed=float(np.hypot(*track["velocity"])), max_edge_residual=track["max_residual"])
    result["reasons"] = appearance_reasons + motion_reasons + _presence_reasons(objects, track, height, width)
    if label is not None:
        result["reasons"] += _class_reasons(result, label)
    result["ok"] = not result["reasons"]
    return result


def judge_image_to_video(video, first_frame, label: Optional[int] = None) -> dict:
    """Image-to-video: does ``video`` start from the given ``first_frame`` (uint8 (H, W, 3) or float (3, H, W)
    in [-1, 1]) and go on as one consistent clip?

    ok needs :func:`judge_consistency`'s ok (with ``label`` passed on), frame 0's centroid within
    MAX_START_OFFSET px of the given frame's, its core colour within MAX_COLOR_SHIFT, and the clip's shape
    equal to the given frame's (when the given shape is whole). Returns ``dict(ok, reasons, start_offset px,
    color_shift, given_shape, consistency: judge_consistency's dict)``.
    """
    given = _single_frame(first_frame)
    clip = judge_consistency(video, label)
    frame0 = to_uint8(video)[0]
    given_object = _frame_object(given, float(given.max()))  # an empty frame returns None before dividing
    result = dict(ok=False, reasons=list(clip["reasons"]), start_offset=None, color_shift=None, given_shape=None,
                  consistency=clip)
    first = _frame_object(frame0, float(frame0.max()))
    if given_object is None or first is None:
        result["reasons"].append("the given frame shows nothing" if given_object is None else "frame 0 is empty")
        return result
    result["given_shape"] = given_object["shape"]
    result["start_offset"] = float(np.hypot(*np.subtract(first["centroid"], given_object["centroid"])))
    if result["start_offset"] > MAX_START_OFFSET:
        result["reasons"].append(f"frame 0 starts {result['start_offset']:.1f} px from the given frame's position")
    if first["color"] and given_object["color"]:
        result["color_shift"] = _color_shift(first["color"], given_object["color"])
        if result["color_shift"] > MAX_COLOR_SHIFT:
            result["reasons"].append(f"frame 0's colour is {result['color_shift']:.0f} off the given frame's")
    if given_object["shape"] and clip["shape"] and clip["shape"] != given_object["shape"]:
        result["reasons"].append(f"the clip shows a {clip['shape']}, the given frame a {given_object['shape']}")
    result["ok"] = not result["reasons"]
    return result


def _single_frame(frame) -> np.ndarray:
    """uint8 (H, W, 3) from uint8 (H, W, 3) or float (3, H, W) in [-1, 1], numpy or torch."""
    return to_uint8(frame[None] if frame.shape[-1] == 3 else frame[:, None])[0]


def _class_reasons(clip: dict, label: int) -> List[str]:
    """The consistent clip shows class ``label``'s shape, moving its way at the benchmark's speed."""
    shape, direction = split_class_id(label)
    reasons = []
    if clip["shape"] is not None and clip["shape"] != shape:
        reasons.append(f"a {clip['shape']}, not the class's {shape}")
    if clip["direction"] in DIRECTIONS and clip["direction"] != direction:
        reasons.append(f"moves {clip['direction']}, not the class's {direction}")
    low, high = SPEED_RANGE
    if clip["speed"] is not None and not low - SPEED_TOLERANCE <= clip["speed"] <= high + SPEED_TOLERANCE:
        reasons.append(f"speed {clip['speed']:.2f} px/frame is outside the benchmark's {low}-{high}")
    return reasons


__all__ = [
    "SHAPES", "DIRECTIONS", "judge_clip", "judge_clips", "judge_accuracy", "judge_consistency", "judge_image_to_video",
]
