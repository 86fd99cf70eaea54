"""Given frames as tensors: a first frame (image-to-video) or a clip to continue, from a file or a tensor.

A file is read with the project's readers and fitted to the model's size (resized to cover, centre-cropped);
a tensor must already have that size. Every problem is a one-line UserError naming the file.
"""
from pathlib import Path

import torch

from ..data.folder_scan import IMAGE_EXTENSIONS  # the images a dataset takes
from ..errors import UserError

MAX_IMAGE_ASPECT = 8  # a first frame wider or taller than this would be mostly cropped away: refused


def load_image(path, size) -> torch.Tensor:
    """An image file -> (3, H, W) in [-1, 1], upright (EXIF orientation), resized to cover ``size`` and
    centre-cropped."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    from ..data.video_read import resize_crop

    path = Path(path)
    if not path.is_file():
        raise UserError(f"--first-frame {path}: no such file")
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise UserError(f"--first-frame {path}: expected an image ({', '.join(IMAGE_EXTENSIONS)})")
    try:
        with Image.open(path) as image:
            pixels = np.array(ImageOps.exif_transpose(image).convert("RGB"))  # (H, W, 3) uint8, upright, writable
    except (UnidentifiedImageError, OSError) as err:
        raise UserError(f"--first-frame {path}: cannot read the image ({err})") from None
    height, width = pixels.shape[:2]
    if min(height, width) < 1:
        raise UserError(f"--first-frame {path}: the image is empty")
    aspect, wanted = width / height, size[1] / size[0]
    if max(aspect / wanted, wanted / aspect) > MAX_IMAGE_ASPECT:
        raise UserError(f"--first-frame {path}: a {width}x{height} image cannot be resized to {size[1]}x{size[0]} "
                        f"(its aspect ratio is over {MAX_IMAGE_ASPECT}x off, the crop would drop most of it); "
                        f"crop it to about {size[1]}:{size[0]} first")
    return resize_crop(pixels[None], size)[:, 0]  # (3, H, W)


def load_clip(path, size) -> torch.Tensor:
    """Every frame of a video file -> (3, T, H, W) in [-1, 1], resized to cover ``size`` and centre-cropped."""
    from ..data.video_read import probe_video, read_video

    num_frames = probe_video(path)[0]
    return read_video(path, num_frames, size=size, start=0)


def as_image(first_frame, size) -> torch.Tensor:
    if isinstance(first_frame, (str, Path)):
        return load_image(first_frame, size)
    image = torch.as_tensor(first_frame, dtype=torch.float32)
    if image.shape != (3, *size):
        raise UserError(f"first_frame must be a (3, {size[0]}, {size[1]}) tensor in [-1, 1] or an image path, "
                        f"got shape {tuple(image.shape)}")
    return image


def as_clip(extend, size) -> torch.Tensor:
    if isinstance(extend, (str, Path)):
        return load_clip(extend, size)
    clip = torch.as_tensor(extend, dtype=torch.float32)
    if clip.ndim != 4 or clip.shape[0] != 3 or tuple(clip.shape[2:]) != tuple(size):
        raise UserError(f"extend must be a (3, T, {size[0]}, {size[1]}) tensor in [-1, 1] or a video path, "
                        f"got shape {tuple(clip.shape)}")
    return clip
