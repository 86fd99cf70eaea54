"""The sample grid with a label left of each row (the class of that clip), written as a PNG."""
from pathlib import Path

import numpy as np

from ..storage import atomic_path
from .video_io import make_grid

LABEL_MARGIN = 6  # white pixels around a label
LABEL_TEXT_COLOR = (0, 0, 0)


def save_labelled_grid(path, videos, labels, frame_stride: int = 1, padding: int = 2) -> Path:
    """:func:`~opensora_lite.data.video_io.make_grid` of ``videos`` (one row per clip) with ``labels[i]`` written
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
