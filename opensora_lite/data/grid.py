"""PNG grids of clips: one row per clip, every k-th frame, optionally a label left of each row."""
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import UserError
from ..storage import atomic_path
from .video_write import PathLike, prepare_output, single_clip, to_uint8


def _as_clips(videos) -> list:
    """A batch ((N, 3, T, H, W) float or (N, T, H, W, 3) uint8) or a list of clips -> uint8 (T, H, W, 3) clips."""
    if isinstance(videos, (list, tuple)):
        return [single_clip(v) for v in videos]
    batch = to_uint8(videos)
    return [batch] if batch.ndim == 4 else list(batch)


def make_grid(videos, nrow: Optional[int] = None, frame_stride: int = 1, padding: int = 2) -> np.ndarray:
    """Tile clips into one uint8 image ``(rows * (H + p) + p, cols * (W + p) + p, 3)``: one row per clip.

    Each row shows frames ``0, frame_stride, 2 * frame_stride, ...`` of its clip, at most ``nrow`` of them
    (None: all). ``videos`` is a batch (``(N, 3, T, H, W)`` float or ``(N, T, H, W, 3)`` uint8) or a list of
    clips of the same height and width. Padding is white.
    """
    clips = _as_clips(videos)
    if not clips:
        raise UserError("make_grid needs at least one clip")
    if frame_stride < 1:
        raise UserError(f"frame_stride must be >= 1, got {frame_stride}")
    height, width = clips[0].shape[1:3]
    if any(c.shape[1:3] != (height, width) for c in clips):
        raise UserError(f"all clips of a grid must have the same size, got {[c.shape[1:3] for c in clips]}")
    rows = [c[::frame_stride][:nrow] for c in clips]  # each (t, H, W, 3)
    cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (height + padding) + padding, cols * (width + padding) + padding, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, frame in enumerate(row):
            top, left = padding + i * (height + padding), padding + j * (width + padding)
            grid[top : top + height, left : left + width] = frame
    return grid


def save_grid_png(
    path: PathLike, videos, nrow: Optional[int] = None, frame_stride: int = 1, padding: int = 2, overwrite: bool = False
) -> Path:
    """Save :func:`make_grid` of ``videos`` as a PNG (one row per clip, ``nrow`` frames at most per row)."""
    from PIL import Image

    grid = make_grid(videos, nrow=nrow, frame_stride=frame_stride, padding=padding)
    path = prepare_output(path, overwrite)
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
    return path


LABEL_MARGIN = 6  # white pixels around a label
LABEL_TEXT_COLOR = (0, 0, 0)


def save_labelled_grid(path, videos, labels, frame_stride: int = 1, padding: int = 2) -> Path:
    """:func:`make_grid` of ``videos`` (one row per clip) with ``labels[i]`` written
    left of row i; saved atomically to ``path`` (the caller chose a free name or allowed overwriting)."""
    from PIL import Image, ImageDraw, ImageFont

    grid = make_grid(videos, frame_stride=frame_stride, padding=padding)  # (rows * (H + p) + p, W', 3) uint8
    row_height = (grid.shape[0] - padding) // len(labels)  # H + p
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max(measure.textbbox((0, 0), str(label), font=font)[2] for label in labels) + 2 * LABEL_MARGIN
    canvas = Image.new("RGB", (width + grid.shape[1], grid.shape[0]), "white")
    canvas.paste(Image.fromarray(np.ascontiguousarray(grid)), (width, 0))
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(labels):
        top = padding + i * row_height
        draw.text((LABEL_MARGIN, top + (row_height - padding) // 2), str(label), fill=LABEL_TEXT_COLOR, font=font,
                  anchor="lm")
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


def save_animation(path, videos, fps: float = 8, scale: int = 2, padding: int = 2) -> Path:
    """An animated WebP of clips side by side (``(N, 3, T, H, W)`` float or a list of clips of one size): frame t
    shows frame t of every clip, enlarged ``scale`` times (nearest, so edges stay sharp). Loops forever; a
    README can show motion with it. Saved atomically to ``path``."""
    from PIL import Image

    clips = _as_clips(videos)
    frames = min(c.shape[0] for c in clips)
    images = []
    for t in range(frames):
        row = np.concatenate([np.pad(c[t], ((padding, padding), (padding, 0), (0, 0)), constant_values=255)
                              for c in clips], axis=1)  # (H + 2p, N (W + p), 3)
        row = np.pad(row, ((0, 0), (0, padding), (0, 0)), constant_values=255)
        images.append(Image.fromarray(row).resize((row.shape[1] * scale, row.shape[0] * scale), Image.NEAREST))
    path = Path(path)
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="WEBP", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                       loop=0, lossless=True)
    return path
