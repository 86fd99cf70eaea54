"""Generated test videos: PyAV encoders for codecs and pixel formats, ffmpeg for what only a remux can make
(an edit-list cut, display-matrix rotation). ffmpeg comes from `make install` (the Debian package)."""
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def patterned_clip(num_frames: int, height: int, width: int) -> np.ndarray:
    """uint8 (T, H, W, 3): moving colour waves and bars with a white top-left marker (shows orientation)."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(num_frames):
        r = 128 + 90 * np.sin((x + 3 * t) / 12.0)
        g = 128 + 90 * np.cos((y - 2 * t) / 10.0)
        b = np.where((x + 2 * t) // 16 % 2 == 0, 60, 190)
        frames.append(np.stack([r, g, b], axis=-1))
    clip = np.clip(np.stack(frames), 0, 255).astype(np.uint8)
    clip[:, : height // 4, : width // 4] = 255
    return clip


def encode(path: Path, frames: np.ndarray, codec: str = "libx264", pix_fmt: str = "yuv420p", fps: int = 8,
           options: dict = None, sample_aspect: Fraction = None) -> Path:
    """Encode uint8 (T, H, W, 3) frames with a PyAV encoder (one thread: the same bytes every run)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options={"threads": "1", **(options or {})})
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], pix_fmt
        if sample_aspect is not None:
            stream.codec_context.sample_aspect_ratio = sample_aspect
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def ffmpeg(*args) -> None:
    """Run the ffmpeg command line (installed by `make install`); a missing ffmpeg fails the test loudly."""
    if shutil.which("ffmpeg") is None:
        raise AssertionError("ffmpeg is not on PATH: run `make install` (it installs the Debian package)")
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


def stream_copy_cut(source: Path, out: Path, start: float, duration: float) -> Path:
    """``ffmpeg -ss START -i SOURCE -t DURATION -c copy OUT``: an edit list hides the pre-roll frames."""
    ffmpeg("-ss", start, "-i", source, "-t", duration, "-c", "copy", out)
    return out


def with_rotation(source: Path, out: Path, degrees: int) -> Path:
    """A stream copy of ``source`` whose display matrix asks players to turn it ``degrees`` clockwise."""
    ffmpeg("-i", source, "-c", "copy", "-metadata:s:v", f"rotate={degrees}", out)
    return out


def ffmpeg_frames(path: Path) -> np.ndarray:
    """What the ffmpeg command line shows (edit list, rotation applied): uint8 (T, H, W, 3)."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height:stream_side_data=rotation", "-of", "default=nw=1", str(path)],
                           check=True, capture_output=True, text=True).stdout
    fields = dict(line.split("=") for line in probe.split())
    height, width = int(fields["height"]), int(fields["width"])
    if int(fields.get("rotation", 0)) % 180:
        height, width = width, height
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
