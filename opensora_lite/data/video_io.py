"""Read and write video files: clips as tensors in, MP4 / GIF / PNG grids out.

This module never knows about models. Its two conventions:

- **Model side**: a clip is a float tensor ``(3, T, H, W)`` in ``[-1, 1]`` (a batch adds a leading N).
- **File side**: a clip is uint8 RGB ``(T, H, W, 3)``.

Reading always decodes to RGB uint8 first and then applies one shared transform (short-side resize with
an antialiased bilinear filter, centre crop, scale to ``[-1, 1]``), so the ``av`` and ``decord`` backends
return identical tensors for the same file. Every problem with an input file (missing, empty, truncated,
not a video, too short under ``short_policy="error"``) raises :class:`~opensora_lite.errors.DataError`
naming the file: never a raw PyAV/decord exception and never a silent zero tensor.
"""
import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError, UserError

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")
BACKENDS = ("av", "decord")
START_POLICIES = ("center", "random")  # or an int: the first frame index
SHORT_POLICIES = ("loop", "pad", "error")

# libx264 constant-rate-factor per named quality (0 = lossless luma, 18 ~ visually lossless, 23 = x264's
# default). yuv420p still halves the chroma resolution whatever the CRF.
QUALITY_CRF = {"default": 18, "high": 12, "near_lossless": 4}
CRF_CODECS = ("libx264", "libx265", "h264", "hevc")


class OutputExistsError(UserError, FileExistsError):
    """Refusing to overwrite an existing output file (pass ``overwrite=True``)."""


#################################################################################
#                               Frame selection                                 #
#################################################################################


def sample_frame_indices(
    total: int,
    num_frames: int,
    frame_interval: int = 1,
    start: Union[str, int] = "center",
    short_policy: str = "loop",
    generator: Optional[torch.Generator] = None,
    path: PathLike = "<video>",
) -> List[int]:
    """Indices of the ``num_frames`` frames to read from a video of ``total`` frames.

    The clip spans ``(num_frames - 1) * frame_interval + 1`` source frames. ``start`` is "center",
    "random" (uniform over the valid starts, drawn from ``generator``) or an int first index. Indices
    past the end follow ``short_policy``: "loop" wraps around, "pad" repeats the last frame, "error"
    raises DataError. ``path`` only names the file in error messages.
    """
    if total <= 0:
        raise DataError(f"{path}: the video has no frames")
    if num_frames < 1 or frame_interval < 1:
        raise UserError(f"num_frames ({num_frames}) and frame_interval ({frame_interval}) must be >= 1")
    if short_policy not in SHORT_POLICIES:
        raise UserError(f"short_policy must be one of {SHORT_POLICIES}, got {short_policy!r}")
    span = (num_frames - 1) * frame_interval + 1
    slack = total - span  # number of valid starts minus one; negative for a short clip
    if isinstance(start, (int, np.integer)) and not isinstance(start, bool):
        first = int(start)
        if not 0 <= first < total:
            raise DataError(f"{path}: start frame {first} is outside the video's {total} frames")
    elif start == "center":
        first = max(slack, 0) // 2
    elif start == "random":
        first = int(torch.randint(0, max(slack, 0) + 1, (1,), generator=generator)) if slack > 0 else 0
    else:
        raise UserError(f"start must be 'center', 'random' or an int, got {start!r}")
    indices = [first + k * frame_interval for k in range(num_frames)]
    if indices[-1] < total:
        return indices
    if short_policy == "error":
        raise DataError(
            f"{path}: {total} frames is too short for {num_frames} frames at interval {frame_interval} "
            f"from frame {first} (needs {first + span}); use short_policy='loop' or 'pad'"
        )
    if short_policy == "loop":
        return [i % total for i in indices]
    return [min(i, total - 1) for i in indices]  # "pad"


#################################################################################
#                                   Reading                                     #
#################################################################################


def _check_file(path: PathLike) -> Path:
    """Return ``path`` as a Path if it is a non-empty regular file, else raise DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    return path


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise UserError(f"video backend must be one of {BACKENDS}, got {backend!r}")


def _import_decord():
    try:
        import decord
    except ImportError as e:  # pragma: no cover - depends on the install
        raise UserError("backend='decord' needs the decord package (pip install decord), or use backend='av'") from e
    return decord


def _av_open(path: Path):
    """Open ``path`` with PyAV and return ``(container, video_stream, num_frames)``."""
    import av

    try:
        container = av.open(str(path))
    except Exception as e:  # PyAV raises FFmpegError subclasses, but also OSError / ValueError
        raise DataError(f"{path}: not a readable video ({type(e).__name__}: {e})") from e
    try:
        if not container.streams.video:
            raise DataError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        total = stream.frames
        if total <= 0:  # containers without a frame count (webm, some avi): count the packets
            total = sum(1 for packet in container.demux(stream) if packet.size > 0)
            container.seek(0)
        return container, stream, total
    except DataError:
        container.close()
        raise
    except Exception as e:
        container.close()
        raise DataError(f"{path}: not a readable video ({type(e).__name__}: {e})") from e


def probe_video(path: PathLike, backend: str = "av") -> Tuple[int, float, int, int]:
    """Return ``(num_frames, fps, height, width)`` of a video without decoding it (av) or one frame (decord)."""
    _check_backend(backend)
    path = _check_file(path)
    if backend == "av":
        container, stream, total = _av_open(path)
        try:
            rate = stream.average_rate or stream.guessed_rate or 0
            height, width = stream.codec_context.height, stream.codec_context.width
        finally:
            container.close()
        fps = float(rate)
    else:
        reader = _decord_reader(path)
        try:
            total, fps = len(reader), float(reader.get_avg_fps())
            height, width = reader[0].shape[:2] if total > 0 else (0, 0)
        except Exception as e:
            raise DataError(f"{path}: not a readable video ({type(e).__name__}: {e})") from e
        finally:
            del reader
    if total <= 0 or height <= 0 or width <= 0:
        raise DataError(f"{path}: the video has no frames")
    return int(total), fps, int(height), int(width)


def _decode_av(path: Path, wanted: Sequence[int], total: int, container, stream) -> dict:
    """Decode frames ``wanted`` (sorted unique indices) -> {index: uint8 (H, W, 3)}.

    Decodes sequentially and stops after the last wanted frame; only wanted frames are converted to RGB.
    """
    out, wanted_set, last = {}, set(wanted), wanted[-1]
    decoded = 0
    try:
        for index, frame in enumerate(container.decode(stream)):
            decoded = index + 1
            if index in wanted_set:
                out[index] = frame.to_ndarray(format="rgb24")  # (H, W, 3) uint8
            if index >= last:
                break
    except Exception as e:
        raise DataError(f"{path}: corrupt or truncated video ({type(e).__name__}: {e})") from e
    if len(out) < len(wanted_set):
        raise DataError(f"{path}: truncated video: it declares {total} frames but only {decoded} could be decoded")
    return out


def _decord_reader(path: Path):
    decord = _import_decord()
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as e:
        raise DataError(f"{path}: not a readable video ({type(e).__name__}: {str(e)[:200]})") from e


def _rgb_rows(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, C) decord output whose rows hold W*C bytes of which the first W*3 are RGB -> (..., H, W, 3)."""
    if frames.shape[-1] == 3:
        return frames
    height, width = frames.shape[-3:-1]
    rows = frames.reshape(*frames.shape[:-3], height, -1)[..., : width * 3]  # drop the row padding
    return np.ascontiguousarray(rows).reshape(*frames.shape[:-3], height, width, 3)


def resize_crop(frames: np.ndarray, size: Optional[Tuple[int, int]]) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` -> float ``(3, T, h, w)`` in ``[-1, 1]``.

    With ``size=(h, w)`` the frames are scaled (antialiased bilinear) so that they cover ``(h, w)``
    (the short side, relative to the target's aspect, becomes the target size), then centre-cropped.
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # (T, 3, H, W) in [0, 255]
    if size is not None:
        if isinstance(size, int):
            size = (size, size)
        out_h, out_w = int(size[0]), int(size[1])
        in_h, in_w = x.shape[-2:]
        scale = max(out_h / in_h, out_w / in_w)
        new_h, new_w = max(out_h, round(in_h * scale)), max(out_w, round(in_w * scale))
        if (new_h, new_w) != (in_h, in_w):
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
        top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
        x = x[:, :, top : top + out_h, left : left + out_w]  # (T, 3, h, w)
    x = (x / 127.5 - 1.0).clamp_(-1.0, 1.0)
    return x.permute(1, 0, 2, 3).contiguous()  # (3, T, h, w)


def read_video_frames(
    path: PathLike,
    num_frames: int,
    frame_interval: int = 1,
    start: Union[str, int] = "center",
    backend: str = "av",
    short_policy: str = "loop",
    generator: Optional[torch.Generator] = None,
) -> np.ndarray:
    """Like :func:`read_video` but return the raw decoded frames: uint8 ``(T, H, W, 3)``."""
    _check_backend(backend)
    path = _check_file(path)
    if backend == "av":
        container, stream, total = _av_open(path)
        try:
            indices = sample_frame_indices(total, num_frames, frame_interval, start, short_policy, generator, path)
            wanted = sorted(set(indices))
            decoded = _decode_av(path, wanted, total, container, stream)
        finally:
            container.close()
        if len({frame.shape for frame in decoded.values()}) > 1:
            raise DataError(f"{path}: the frame size changes inside the video")
        return np.stack([decoded[i] for i in indices])  # (T, H, W, 3)
    reader = _decord_reader(path)
    try:
        total = len(reader)
        indices = sample_frame_indices(total, num_frames, frame_interval, start, short_policy, generator, path)
        wanted = sorted(set(indices))
        try:
            batch = _rgb_rows(reader.get_batch(wanted).asnumpy())  # (K, H, W, 3) uint8, seeks to the wanted frames
        except Exception:
            # decord 0.6 returns row-padded frames for some widths (e.g. 48: "(H, W, 4)") and then its
            # get_batch fails its own size check; frames read one by one can be unpadded
            try:
                batch = np.stack([_rgb_rows(reader[i].asnumpy()) for i in wanted])
            except Exception as e:
                raise DataError(f"{path}: corrupt or truncated video ({type(e).__name__}: {str(e)[:200]})") from e
    finally:
        del reader
    if batch.ndim != 4 or batch.shape[0] != len(wanted) or batch.shape[-1] != 3:
        raise DataError(f"{path}: decoder returned frames of shape {tuple(batch.shape)}")
    position = {index: k for k, index in enumerate(wanted)}
    return batch[[position[i] for i in indices]]  # (T, H, W, 3)


def read_video(
    path: PathLike,
    num_frames: int,
    frame_interval: int = 1,
    size: Optional[Tuple[int, int]] = None,
    start: Union[str, int] = "center",
    backend: str = "av",
    short_policy: str = "loop",
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Read ``num_frames`` frames, every ``frame_interval``-th, as a float tensor ``(3, T, H, W)`` in ``[-1, 1]``.

    Args:
        size: ``(H, W)`` to resize the short side to and centre-crop, or None for the native size.
        start: "center", "random" (uses ``generator``) or the int index of the first frame.
        backend: "av" (PyAV, decodes sequentially up to the last needed frame) or "decord" (seeks).
        short_policy: for clips shorter than the span: "loop" wraps, "pad" repeats the last frame,
            "error" raises DataError.

    Raises DataError naming the file for anything wrong with the file itself.
    """
    frames = read_video_frames(path, num_frames, frame_interval, start, backend, short_policy, generator)
    return resize_crop(frames, size)  # (3, T, H, W)


#################################################################################
#                                   Writing                                     #
#################################################################################


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


def _prepare_output(path: PathLike, overwrite: bool) -> Path:
    """Create the parent folder and refuse to replace an existing file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass overwrite=True (or --overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _temporary_sibling(path: Path) -> Path:
    """A hidden file next to ``path`` with the same suffix (so the muxer is guessed the same way)."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def _single_clip(frames) -> np.ndarray:
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

    frames = _single_clip(frames)
    path = _prepare_output(path, overwrite)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    crf = QUALITY_CRF.get(quality, quality) if isinstance(quality, str) else int(quality)
    if not isinstance(crf, int) or not 0 <= crf <= 51:
        raise UserError(f"quality must be one of {sorted(QUALITY_CRF)} or a CRF in 0..51, got {quality!r}")
    tmp = _temporary_sibling(path)
    try:
        with av.open(str(tmp), mode="w") as container:
            # One encoder thread: x264's frame threads make the bytes depend on timing, and the same
            # clip must give the same file (reproducible samples, testable determinism).
            options = {"crf": str(crf), "threads": "1"} if codec in CRF_CODECS else {"threads": "1"}
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

    frames = _single_clip(frames)
    path = _prepare_output(path, overwrite)
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


def make_grid(videos, nrow: Optional[int] = None, frame_stride: int = 1, padding: int = 2) -> np.ndarray:
    """Tile clips into one uint8 image ``(rows * (H + p) + p, cols * (W + p) + p, 3)``: one row per clip.

    Each row shows frames ``0, frame_stride, 2 * frame_stride, ...`` of its clip, at most ``nrow`` of them
    (None: all). ``videos`` is a batch (``(N, 3, T, H, W)`` float or ``(N, T, H, W, 3)`` uint8) or a list of
    clips of the same height and width. Padding is white.
    """
    if isinstance(videos, (list, tuple)):
        clips = [_single_clip(v) for v in videos]
    else:
        batch = to_uint8(videos)
        clips = [batch] if batch.ndim == 4 else list(batch)
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
    path = _prepare_output(path, overwrite)
    tmp = _temporary_sibling(path)
    try:
        Image.fromarray(grid).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
