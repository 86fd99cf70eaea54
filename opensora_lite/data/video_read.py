"""Read video files: clips as tensors in (writing is ``video_write.py``, grids ``grid.py``).

This module never knows about models. Its two conventions:

- **Model side**: a clip is a float tensor ``(3, T, H, W)`` in ``[-1, 1]`` (a batch adds a leading N).
- **File side**: a clip is uint8 RGB ``(T, H, W, 3)``.

Reading decodes each frame to RGB uint8, turns it upright and applies one shared transform (sample
aspect ratio, short-side resize with an antialiased bilinear filter, centre crop, scale to ``[-1, 1]``)
before the next frame is decoded, so memory follows the output size and the ``av`` and ``decord``
backends agree (``tests/test_backend_agreement.py`` states the tolerance per codec). Every problem
with an input file (missing, empty, truncated, not a video, too large, too short under
``short_policy="error"``) raises :class:`~opensora_lite.errors.DataError` naming the file: never a raw
PyAV/decord exception and never a silent zero tensor.
"""
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError, UserError

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".gif")
BACKENDS = ("av", "decord")
START_POLICIES = ("center", "random")  # or an int: the first frame index
SHORT_POLICIES = ("loop", "pad", "error")

# Frames with more pixels than 8K UHD (7680x4320, the largest size of ITU-R BT.2020) are refused unless
# the caller raises the limit: one such RGB frame is already ~100 MB, a hostile header can claim far more.
DEFAULT_MAX_SOURCE_PIXELS = 7680 * 4320
# A few packets the decoder rejects are concealed by repeating the previous frame, as players do; more
# than this and the file counts as damaged.
MAX_LOST_PACKETS = 3
# swscale filter of PyAV's YUV -> RGB conversion: bicubic chroma upsampling is what the ffmpeg command line
# uses, and it gives ffmpeg's own frames for odd-width 4:2:0 video (PyAV's default, bilinear, differs by ~20).
AV_CHROMA_INTERPOLATION = "BICUBIC"
# Codecs missing from decord 0.6's bundled FFmpeg (its VideoReader fails on them with unrelated messages).
DECORD_MISSING_DECODERS = {"av1": "AV1", "libdav1d": "AV1", "gif": "GIF"}


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
#
# The frames of a video are the *visible* ones, in presentation order: packets that an MP4 edit list
# discards (the pre-roll of a stream-copy cut, ``ffmpeg -ss ... -c copy``) are not frames. Both backends
# count and index frames from PyAV's packet timestamps, so they read the same frames. Each decoded frame
# is turned upright (display-matrix rotation), stretched to square pixels (sample aspect ratio), resized
# and cropped at once: a clip costs one source frame plus the output, whatever its length.


@dataclass(frozen=True)
class VideoInfo:
    """One video stream as the readers see it (from the packets and the first frame, see :func:`inspect_video`)."""

    path: Path
    stream: int  # index among the file's video streams
    num_streams: int  # video streams in the file
    codec: str
    num_frames: int  # visible frames (edit-list discards excluded)
    discarded: int  # packets an edit list discards (decord counts them as frames)
    fps: float
    coded_height: int
    coded_width: int
    quarter_turns: int  # counter-clockwise quarter turns that make a decoded frame upright (0..3)
    sample_aspect: Fraction  # width / height of one coded pixel
    pts: Tuple[Optional[int], ...]  # presentation timestamps of the visible frames, in order

    @property
    def edit_list(self) -> bool:
        return self.discarded > 0

    @property
    def upright_size(self) -> Tuple[int, int]:
        """(H, W) of a decoded frame once turned upright, before the sample aspect ratio."""
        if self.quarter_turns % 2:
            return self.coded_width, self.coded_height
        return self.coded_height, self.coded_width

    @property
    def upright_aspect(self) -> Fraction:
        """Sample aspect ratio of the upright frame (a quarter turn swaps the pixel's sides)."""
        return 1 / self.sample_aspect if self.quarter_turns % 2 else self.sample_aspect

    @property
    def display_size(self) -> Tuple[int, int]:
        """(H, W) a player shows: upright, with square pixels (the width is stretched or squeezed)."""
        height, width = self.upright_size
        return height, max(1, round(width * self.upright_aspect))


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


def _reason(error: BaseException) -> str:
    """``Type: message`` of a decoder error, without the file name FFmpeg errors repeat (the path is said once)."""
    text = getattr(error, "strerror", None) or str(error)  # FFmpeg errors: strerror lacks the file name
    return f"{type(error).__name__}: {text[:200]}"


def _unreadable(path: Path, error: Exception) -> DataError:
    return DataError(f"{path}: not a readable video ({_reason(error)})")


def _corrupt(path: Path, error: Exception) -> DataError:
    return DataError(f"{path}: corrupt or truncated video ({_reason(error)})")


def _av_container(path: Path):
    import av

    try:
        return av.open(str(path))
    except Exception as e:  # PyAV raises FFmpegError subclasses, but also OSError / ValueError
        raise _unreadable(path, e) from e


_STREAMS_ANNOUNCED = set()  # (path, stream) pairs whose choice among several video streams was logged


def _select_stream(container, path: Path, stream: Optional[int]):
    """The video stream to read: ``stream`` (index among the video streams) or the first one by index."""
    videos = container.streams.video
    if not videos:
        raise DataError(f"{path}: the file has no video stream")
    choice = 0 if stream is None else int(stream)
    if not 0 <= choice < len(videos):
        raise DataError(f"{path}: stream={choice} does not exist: the file has {len(videos)} video stream(s)")
    if len(videos) > 1 and (str(path), choice) not in _STREAMS_ANNOUNCED:
        _STREAMS_ANNOUNCED.add((str(path), choice))
        logger.info("%s: %d video streams; reading video stream %d (choose another with stream=)",
                    path, len(videos), choice)
    return videos[choice]


def _visible_pts(container, stream, path: Path) -> Tuple[List[Optional[int]], int]:
    """Presentation timestamps of the visible frames (sorted) and the number of edit-list discarded packets."""
    pts, discarded, present = [], 0, 0
    for packet in container.demux(stream):
        if packet.dts is None and not packet.size:  # the demuxer's final flush packet
            continue
        present += 1
        if not packet.size:  # an empty packet (an AVI's dropped frame) shows no new frame
            continue
        if packet.is_discard:
            discarded += 1
        else:
            pts.append(packet.pts)
    declared = stream.frames
    if declared > 0 and present < declared:
        raise DataError(f"{path}: truncated video: it declares {declared} frames but holds only {present} packets")
    if None in pts:  # no timestamps (some AVI): the decode order is the only order
        return [None] * len(pts), discarded
    return sorted(pts), discarded


def _first_frame_rotation(path: Path, stream: int) -> int:
    """Counter-clockwise quarter turns of the display matrix of video stream ``stream``'s first frame (0..3)."""
    container = _av_container(path)  # a fresh demuxer: no seek, which some formats cannot do
    try:
        for frame in container.decode(container.streams.video[stream]):
            return _quarter_turns(frame, path)
    finally:
        container.close()
    raise DataError(f"{path}: the video has no frames")


def _quarter_turns(frame, path: Path) -> int:
    """Display-matrix rotation of a PyAV frame in counter-clockwise quarter turns (0..3)."""
    degrees = int(round(frame.rotation))
    if degrees % 90:
        raise DataError(f"{path}: rotation of {degrees} degrees is not supported (only multiples of 90)")
    return (degrees // 90) % 4


def _check_source_size(path: Path, height: int, width: int, max_source_pixels: Optional[int]) -> None:
    if max_source_pixels is not None and height * width > max_source_pixels:
        raise DataError(f"{path}: frames of {width}x{height} ({height * width} pixels) exceed "
                        f"max_source_pixels={max_source_pixels}; raise the limit to read this file")


def inspect_video(
    path: PathLike, stream: Optional[int] = None, max_source_pixels: Optional[int] = DEFAULT_MAX_SOURCE_PIXELS
) -> VideoInfo:
    """Describe video stream ``stream`` (default: the first) of ``path`` from its packets and first frame.

    Frames larger than ``max_source_pixels`` are refused before anything is decoded.
    """
    path = _check_file(path)
    container = _av_container(path)
    try:
        video = _select_stream(container, path, stream)
        height, width = video.codec_context.height, video.codec_context.width
        if height <= 0 or width <= 0:
            raise DataError(f"{path}: the video stream has no frame size")
        _check_source_size(path, height, width, max_source_pixels)
        pts, discarded = _visible_pts(container, video, path)
        if not pts:
            raise DataError(f"{path}: the video has no frames")
        info = dict(
            path=path, stream=0 if stream is None else int(stream), num_streams=len(container.streams.video),
            codec=video.codec_context.name, num_frames=len(pts), discarded=discarded,
            fps=float(video.average_rate or video.guessed_rate or 0), coded_height=height, coded_width=width,
            sample_aspect=Fraction(video.sample_aspect_ratio or 1), pts=tuple(pts),
        )
        return VideoInfo(quarter_turns=_first_frame_rotation(path, info["stream"]), **info)
    except DataError:
        raise
    except Exception as e:
        raise _unreadable(path, e) from e
    finally:
        container.close()


def probe_video(
    path: PathLike, backend: str = "av", stream: Optional[int] = None,
    max_source_pixels: Optional[int] = DEFAULT_MAX_SOURCE_PIXELS,
) -> Tuple[int, float, int, int]:
    """Return ``(num_frames, fps, height, width)``: visible frames and the upright, square-pixel size.

    With ``backend="decord"`` it also checks that decord can read the stream (same numbers either way).
    """
    _check_backend(backend)
    info = inspect_video(path, stream, max_source_pixels)
    if backend == "decord":
        _open_decord(info)  # decord can open it (the reader is dropped at once)
    return (info.num_frames, info.fps, *info.display_size)


#################################################################################
#                          Geometry of one decoded frame                        #
#################################################################################


@dataclass(frozen=True)
class FrameGeometry:
    """Resize an upright ``(H, W)`` frame to ``resize`` and crop the ``size`` window at ``(top, left)``."""

    resize: Tuple[int, int]
    top: int
    left: int
    size: Tuple[int, int]


def frame_geometry(in_size: Tuple[int, int], size, sample_aspect: Fraction = Fraction(1)) -> FrameGeometry:
    """Short-side resize to cover ``size`` then centre crop; ``size=None`` keeps the native size.

    ``sample_aspect`` (a pixel's width / height) widens or narrows the frame first, so circles stay round.
    """
    in_h, in_w = in_size
    shown_w = in_w * sample_aspect  # the width in square pixels (a Fraction)
    if size is None:
        native = (in_h, max(1, round(shown_w)))
        return FrameGeometry(native, 0, 0, native)
    out_h, out_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    scale = max(Fraction(out_h, in_h), out_w / shown_w)
    new_h, new_w = max(out_h, round(in_h * scale)), max(out_w, round(shown_w * scale))
    return FrameGeometry((new_h, new_w), (new_h - out_h) // 2, (new_w - out_w) // 2, (out_h, out_w))


def _resize_crop_tensor(x: torch.Tensor, geometry: FrameGeometry) -> torch.Tensor:
    """float (T, 3, H, W) in [0, 255] -> (T, 3, h, w) in [-1, 1] (antialiased bilinear, centre crop)."""
    if tuple(x.shape[-2:]) != geometry.resize:
        x = F.interpolate(x, size=geometry.resize, mode="bilinear", antialias=True, align_corners=False)
    out_h, out_w = geometry.size
    x = x[:, :, geometry.top : geometry.top + out_h, geometry.left : geometry.left + out_w]  # (T, 3, h, w)
    return (x / 127.5 - 1.0).clamp_(-1.0, 1.0)


def resize_crop(frames: np.ndarray, size: Optional[Tuple[int, int]]) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` -> float ``(3, T, h, w)`` in ``[-1, 1]``.

    With ``size=(h, w)`` the frames are scaled (antialiased bilinear) so that they cover ``(h, w)``
    (the short side, relative to the target's aspect, becomes the target size), then centre-cropped.
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # (T, 3, H, W) in [0, 255]
    x = _resize_crop_tensor(x, frame_geometry(tuple(x.shape[-2:]), size))
    return x.permute(1, 0, 2, 3).contiguous()  # (3, T, h, w)


def _frame_to_tensor(frame: np.ndarray, geometry: FrameGeometry) -> torch.Tensor:
    """One upright uint8 frame (H, W, 3) -> float (3, h, w) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
    return _resize_crop_tensor(x, geometry)[0]


#################################################################################
#                                  Backends                                     #
#################################################################################


class _Clip:
    """The wanted frames of one read, converted as they are decoded, and how many were concealed."""

    def __init__(self, info: VideoInfo, wanted: Sequence[int], convert: Callable[[np.ndarray], object]):
        self.info, self.wanted, self.convert = info, set(wanted), convert
        self.frames: dict = {}
        self.concealed = 0  # wanted frames the decoder repaired (corrupt flag) or repeated (lost packet)

    def wants(self, index: int) -> bool:
        return index in self.wanted and index not in self.frames

    def add(self, index: int, upright: np.ndarray, concealed: bool = False) -> None:
        if tuple(upright.shape[:2]) != self.info.upright_size:
            raise _size_change(self.info, *upright.shape[:2])
        self.frames[index] = self.convert(upright)
        self.concealed += int(concealed)

    def missing(self) -> List[int]:
        return sorted(self.wanted - set(self.frames))


def _size_change(info: VideoInfo, height: int, width: int) -> DataError:
    expected_h, expected_w = info.upright_size
    return DataError(f"{info.path}: the frame size changes inside the video ({width}x{height}, "
                     f"first {expected_w}x{expected_h})")


def _check_decoded_size(frame, info: VideoInfo) -> None:
    """Refuse a frame whose size differs from the stream's before converting it (a lying header)."""
    if (frame.height, frame.width) != (info.coded_height, info.coded_width):
        raise _size_change(info, frame.height, frame.width)


def _av_upright(frame, info: VideoInfo) -> np.ndarray:
    """A PyAV frame -> upright uint8 RGB (H, W, 3) (a view when no turn is needed)."""
    rgb = frame.to_ndarray(format="rgb24", interpolation=AV_CHROMA_INTERPOLATION)  # (H, W, 3)
    return np.rot90(rgb, _quarter_turns(frame, info.path))


def _decode_av(info: VideoInfo, clip: _Clip, container, video) -> None:
    """Decode sequentially up to the last wanted frame, packet by packet.

    A packet the decoder rejects loses its frame: up to :data:`MAX_LOST_PACKETS` of them are concealed by
    repeating the previous frame (as players do); the decoder's own concealment keeps its frames.
    """
    import av

    index_of = {p: i for i, p in enumerate(info.pts)} if None not in info.pts else None
    last, next_index, previous, lost = max(clip.wanted), 0, None, 0
    for packet in container.demux(video):
        try:
            frames = video.decode(packet)
        except av.error.InvalidDataError as e:
            lost += 1
            if lost > MAX_LOST_PACKETS:
                raise DataError(f"{info.path}: corrupt video: more than {MAX_LOST_PACKETS} packets cannot be "
                                f"decoded ({e})") from e
            continue
        for frame in frames:
            index = index_of.get(frame.pts, next_index) if index_of else next_index
            _check_decoded_size(frame, info)
            if previous is not None:  # frames lost with their packets: shown as the previous one
                for gap in filter(clip.wants, range(next_index, min(index, last + 1))):
                    clip.add(gap, _av_upright(previous, info), concealed=True)
            if clip.wants(index):
                clip.add(index, _av_upright(frame, info), concealed=frame.is_corrupt)
            previous, next_index = frame, max(next_index, index + 1)
            if next_index > last:
                return


def _open_decord(info: VideoInfo):
    """A decord VideoReader of ``info``'s stream, or a DataError saying why decord cannot read it."""
    missing = DECORD_MISSING_DECODERS.get(info.codec)
    if missing:
        raise DataError(f"{info.path}: decord has no {missing} decoder; use backend='av'")
    decord = _import_decord()
    try:
        reader = decord.VideoReader(str(info.path), ctx=decord.cpu(0), num_threads=1)
    except Exception as e:
        raise _unreadable(info.path, e) from e
    if info.num_streams > 1:
        _check_decord_stream(info, reader)
        reader = decord.VideoReader(str(info.path), ctx=decord.cpu(0), num_threads=1)  # back at the start
    return reader


def _check_decord_stream(info: VideoInfo, reader) -> None:
    """decord reads the stream FFmpeg calls best and cannot be told another: refuse when it is not ``info``'s."""
    try:
        same = len(reader) == info.num_frames + info.discarded and \
            tuple(_decord_upright(reader, 0).shape[:2]) == info.upright_size
    except Exception as e:
        raise _unreadable(info.path, e) from e
    if not same:
        raise DataError(f"{info.path}: decord reads another of the {info.num_streams} video streams than "
                        f"stream={info.stream} and cannot be told which; use backend='av'")


def _decord_upright(reader, index: int) -> np.ndarray:
    """Frame ``index`` from decord, already upright (decord applies the rotation itself): (H, W, 3) uint8."""
    return _rgb_rows(reader[index].asnumpy())


def _decode_decord(info: VideoInfo, clip: _Clip, reader) -> None:
    """Read the wanted frames one by one (each converted before the next is decoded).

    decord's frame numbers follow the decoder's output only when it reads on from the start, and its own
    timestamps after a seek: the two disagree when an edit list discards packets. Such files are read
    sequentially from the first frame, where decord's frame k is the k-th visible frame.
    """
    order = range(max(clip.wanted) + 1) if info.edit_list else sorted(clip.wanted)
    try:
        for index in order:
            frame = _decord_upright(reader, index)
            if clip.wants(index):
                clip.add(index, frame)
    except DataError:
        raise
    except Exception as e:
        raise _corrupt(info.path, e) from e


def _rgb_rows(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, C) decord output whose rows hold W*C bytes of which the first W*3 are RGB -> (..., H, W, 3)."""
    if frames.shape[-1] == 3:
        return frames
    height, width = frames.shape[-3:-1]
    rows = frames.reshape(*frames.shape[:-3], height, -1)[..., : width * 3]  # drop the row padding
    return np.ascontiguousarray(rows).reshape(*frames.shape[:-3], height, width, 3)


#################################################################################
#                                 Reading clips                                 #
#################################################################################


class ClipRead(NamedTuple):
    """What :func:`read_clip` returns: the clip, how many of its frames were concealed, the stream read."""

    video: torch.Tensor  # (3, T, h, w) float in [-1, 1]
    concealed: int
    info: VideoInfo


def _check_frame_count(info: VideoInfo, max_source_frames: Optional[int]) -> None:
    if max_source_frames is not None and info.num_frames > max_source_frames:
        raise DataError(f"{info.path}: {info.num_frames} frames exceed max_source_frames={max_source_frames}; "
                        "raise the limit to read this file")


def _out_of_memory(info: VideoInfo, error: BaseException) -> DataError:
    height, width = info.upright_size
    return DataError(f"{info.path}: out of memory decoding {width}x{height} frames ({type(error).__name__}); "
                     "lower max_source_pixels to skip such files")


def _decode(info: VideoInfo, wanted: Sequence[int], backend: str, convert: Callable[[np.ndarray], object]) -> _Clip:
    """Decode the ``wanted`` visible frames of ``info``'s stream with ``backend``, each passed through ``convert``."""
    clip = _Clip(info, wanted, convert)
    try:
        if backend == "av":
            container = _av_container(info.path)
            try:
                _decode_av(info, clip, container, container.streams.video[info.stream])
            finally:
                container.close()
        else:
            _decode_decord(info, clip, _open_decord(info))
    except DataError:
        raise
    except MemoryError as e:
        raise _out_of_memory(info, e) from e
    except RuntimeError as e:  # torch's allocator reports failure as a RuntimeError
        if "memory" not in str(e):
            raise _corrupt(info.path, e) from e
        raise _out_of_memory(info, e) from e
    except Exception as e:
        raise _corrupt(info.path, e) from e
    missing = clip.missing()
    if missing:
        raise DataError(f"{info.path}: truncated video: frame {missing[0]} of its {info.num_frames} frames "
                        "cannot be decoded")
    return clip


def read_clip(
    path: PathLike,
    num_frames: int,
    frame_interval: int = 1,
    *,
    size: Optional[Tuple[int, int]] = None,
    start: Union[str, int] = "center",
    backend: str = "av",
    short_policy: str = "loop",
    generator: Optional[torch.Generator] = None,
    stream: Optional[int] = None,
    max_source_pixels: Optional[int] = DEFAULT_MAX_SOURCE_PIXELS,
    max_source_frames: Optional[int] = None,
    native: bool = False,
) -> ClipRead:
    """Read ``num_frames`` frames, every ``frame_interval``-th: the clip, its concealed frames and its stream.

    ``.video`` is a float tensor ``(3, T, H, W)`` in ``[-1, 1]``, or with ``native`` the decoded frames,
    upright, at the coded size: uint8 ``(T, H, W, 3)`` (``size`` is then ignored).

    Args:
        size: ``(H, W)`` to resize the short side to and centre-crop, or None for the native size
            (square pixels: a non-square sample aspect ratio stretches the width).
        start: "center", "random" (uses ``generator``) or the int index of the first frame.
        backend: "av" (PyAV, decodes sequentially up to the last needed frame) or "decord" (seeks).
        short_policy: for clips shorter than the span: "loop" wraps, "pad" repeats the last frame,
            "error" raises DataError.
        stream: which video stream (0 = the first by index, the default); a file with several logs which.
        max_source_pixels: refuse frames with more pixels than this (None: no limit).
        max_source_frames: refuse videos with more frames than this (None: no limit).

    Frames are the visible ones (an edit list's discarded packets are not frames), upright (display-matrix
    rotation) and resized one by one as they are decoded. Raises DataError naming the file for anything
    wrong with the file itself, including running out of memory while decoding it.
    """
    _check_backend(backend)
    info = inspect_video(path, stream, max_source_pixels)
    _check_frame_count(info, max_source_frames)
    indices = sample_frame_indices(info.num_frames, num_frames, frame_interval, start, short_policy, generator,
                                   info.path)
    if native:
        clip = _decode(info, sorted(set(indices)), backend, np.ascontiguousarray)
        return ClipRead(np.stack([clip.frames[i] for i in indices]), clip.concealed, info)  # (T, H, W, 3)
    geometry = frame_geometry(info.upright_size, size, info.upright_aspect)
    clip = _decode(info, sorted(set(indices)), backend, lambda frame: _frame_to_tensor(frame, geometry))
    video = torch.stack([clip.frames[i] for i in indices], dim=1)  # (3, T, h, w)
    return ClipRead(video, clip.concealed, info)


def read_video(path: PathLike, num_frames: int, frame_interval: int = 1, **options) -> torch.Tensor:
    """:func:`read_clip`'s clip alone: float ``(3, T, H, W)`` in ``[-1, 1]`` (same keyword options)."""
    return read_clip(path, num_frames, frame_interval, **options).video


def read_video_frames(path: PathLike, num_frames: int, frame_interval: int = 1, **options) -> np.ndarray:
    """The decoded frames, upright, at the coded size: uint8 ``(T, H, W, 3)`` (:func:`read_clip` options)."""
    return read_clip(path, num_frames, frame_interval, native=True, **options).video
