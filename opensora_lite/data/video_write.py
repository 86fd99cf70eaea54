"""Write clips: MP4 (H.264) and GIF files, never over an existing file unless asked.

A clip is uint8 ``(T, H, W, 3)`` or float ``(3, T, H, W)`` in ``[-1, 1]`` (:func:`to_uint8` converts).
"""
import os
from fractions import Fraction
from pathlib import Path
from typing import Union

import numpy as np
import torch

from ..errors import UserError

PathLike = Union[str, os.PathLike]

# libx264 constant-rate-factor per named quality (0 = lossless luma, 18 ~ visually lossless, 23 = x264's
# default). yuv420p still halves the chroma resolution whatever the CRF.
QUALITY_CRF = {"default": 18, "high": 12, "near_lossless": 4}
CRF_CODECS = ("libx264", "libx265", "h264", "hevc")
X264_CODECS = ("libx264", "h264")


class OutputExistsError(UserError, FileExistsError):
    """Refusing to overwrite an existing output file (pass ``overwrite=True``)."""


def to_uint8(video) -> np.ndarray:
    """Any clip (or batch of clips) -> uint8 numpy with channels last.

    Accepts uint8 ``(..., T, H, W, 3)`` (returned as is) or float ``(3, T, H, W)`` / ``(N, 3, T, H, W)`` in
    ``[-1, 1]`` (clamped, rounded), numpy or torch. Returns ``(T, H, W, 3)`` or ``(N, T, H, W, 3)``.
    """
    if isinstance(video, torch.Tensor):
        video = video.detach().cpu()
        if video.dtype == torch.bfloat16:
            video = video.float()
        video = video.numpy()
    video = np.asarray(video)
    if video.dtype == np.uint8:
        if video.ndim not in (4, 5) or video.shape[-1] != 3:
            raise UserError(f"a uint8 clip must be (T, H, W, 3) or (N, T, H, W, 3), got {video.shape}")
        return video
    if not np.issubdtype(video.dtype, np.floating):
        raise UserError(f"a clip must be uint8 or float in [-1, 1], got dtype {video.dtype}")
    if video.ndim not in (4, 5) or video.shape[-4] != 3:
        raise UserError(f"a float clip must be (3, T, H, W) or (N, 3, T, H, W), got {video.shape}")
    video = np.moveaxis(video, -4, -1)  # (..., T, H, W, 3)
    return np.round((np.clip(video, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def prepare_output(path: PathLike, overwrite: bool) -> Path:
    """Create the parent folder and refuse to replace an existing file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass overwrite=True (or --overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _temporary_sibling(path: Path) -> Path:
    """A hidden file next to ``path`` with the same suffix (so the muxer is guessed the same way)."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def single_clip(frames) -> np.ndarray:
    frames = to_uint8(frames)
    if frames.ndim != 4:
        raise UserError(f"expected one clip, got a batch of shape {frames.shape}")
    if frames.shape[0] == 0:
        raise UserError("cannot write a clip with no frames")
    return frames  # (T, H, W, 3)


def write_video(
    path: PathLike,
    frames,
    fps: float = 8,
    codec: str = "libx264",
    quality: Union[str, int] = "high",
    overwrite: bool = False,
) -> Path:
    """Write one clip as an MP4 (H.264, yuv420p) and return its path.

    Args:
        frames: uint8 ``(T, H, W, 3)`` or float ``(3, T, H, W)`` in ``[-1, 1]``, numpy or torch.
        quality: a name from :data:`QUALITY_CRF` ("default", "high", "near_lossless") or an int CRF
            (0-51, lower is better) for x264/x265; other codecs get a high bit rate instead.
        overwrite: replace an existing file; without it an existing ``path`` raises OutputExistsError.

    yuv420p needs even sizes: an odd height or width is padded by repeating the last row / column.
    The file is written next to ``path`` under a temporary name and renamed, so a crash leaves no
    half-written video behind.
    """
    import av

    frames = single_clip(frames)
    path = prepare_output(path, overwrite)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    crf = QUALITY_CRF.get(quality, quality) if isinstance(quality, str) else int(quality)
    if not isinstance(crf, int) or not 0 <= crf <= 51:
        raise UserError(f"quality must be one of {sorted(QUALITY_CRF)} or a CRF in 0..51, got {quality!r}")
    tmp = _temporary_sibling(path)
    try:
        with av.open(str(tmp), mode="w") as container:
            # The same clip must give the same file (reproducible samples, testable determinism): one encoder
            # thread (x264's frame threads make the bytes depend on timing), and no macroblock tree, whose
            # x264 code reads memory it never wrote: after torch had run in the process, the same frames came
            # out up to 16 levels apart from run to run (tests/test_video_io.py). It costs bits, not quality.
            options = {"crf": str(crf), "threads": "1"} if codec in CRF_CODECS else {"threads": "1"}
            if codec in X264_CODECS:
                options["x264-params"] = "mbtree=0"
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=options)
            stream.height, stream.width = frames.shape[1], frames.shape[2]
            stream.pix_fmt = "yuv420p"
            if codec not in CRF_CODECS:
                stream.bit_rate = 8 * frames.shape[1] * frames.shape[2] * int(np.ceil(fps))
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():  # flush the encoder
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_gif(path: PathLike, frames, fps: float = 8, overwrite: bool = False) -> Path:
    """Write one clip (same formats as :func:`write_video`) as a looping GIF with PIL."""
    from PIL import Image

    frames = single_clip(frames)
    path = prepare_output(path, overwrite)
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    tmp = _temporary_sibling(path)
    try:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0
        )
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
