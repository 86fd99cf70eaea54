"""Backend agreement over a generated corpus: av and decord return the same frames, within stated tolerances.

Each file is read whole at its native size and as a resized, strided clip. Tolerances, in 8-bit levels:

- 8-bit streams of even size (H.264 limited and full range, HEVC, VP9, MJPEG, a rotated phone clip, a
  stream-copy cut): identical frames.
- HEVC 10-bit and odd-width 4:2:0: the two FFmpeg builds (PyAV's, decord's) upsample chroma differently, so
  frames differ at colour edges: at most CHROMA_MAX_DIFF levels, CHROMA_MEAN_DIFF on average on this
  corpus (sharp colour bars: the worst case). There the av backend is the one that matches the ffmpeg
  command line (see test_video_io.py), so prefer backend='av'.
- AV1 and GIF: decord has no decoder for them, and says so; av reads them.
"""
import numpy as np
import pytest
import torch
from video_fixtures import encode, patterned_clip, stream_copy_cut, with_rotation

from opensora_lite.data.video_read import read_video, read_video_frames
from opensora_lite.errors import DataError

EXACT = (0, 0.0)
CHROMA_MAX_DIFF, CHROMA_MEAN_DIFF = 40, 4.0  # measured: 31 / 3.0 (HEVC 10-bit), 12 / 1.6 (odd-width VP9)
CHROMA = (CHROMA_MAX_DIFF, CHROMA_MEAN_DIFF)
FRAMES, HEIGHT, WIDTH = 10, 48, 64

# name -> (file name, encoder, pixel format, (H, W), encoder options, tolerance (max, mean))
CORPUS = {
    "h264": ("h264.mp4", "libx264", "yuv420p", (HEIGHT, WIDTH), {}, EXACT),
    "h264 full range": ("h264_full.mp4", "libx264", "yuvj420p", (HEIGHT, WIDTH), {}, EXACT),
    "hevc 8-bit": ("hevc8.mp4", "libx265", "yuv420p", (HEIGHT, WIDTH), {"x265-params": "log-level=none"}, EXACT),
    "hevc 10-bit": ("hevc10.mp4", "libx265", "yuv420p10le", (HEIGHT, WIDTH), {"x265-params": "log-level=none"},
                    CHROMA),
    "vp9": ("vp9.webm", "libvpx-vp9", "yuv420p", (HEIGHT, WIDTH), {}, EXACT),
    "vp9 odd size": ("vp9_odd.webm", "libvpx-vp9", "yuv420p", (HEIGHT - 1, WIDTH - 1), {}, CHROMA),
    "mjpeg": ("mjpeg.avi", "mjpeg", "yuvj422p", (HEIGHT, WIDTH), {}, EXACT),
}
DERIVED = {"rotation 90": EXACT, "edit-list cut": EXACT}  # remuxed from the H.264 file by ffmpeg


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    files = {}
    for name, (file, codec, pix_fmt, (height, width), options, _) in CORPUS.items():
        files[name] = encode(folder / file, patterned_clip(FRAMES, height, width), codec, pix_fmt, options=options)
    camera = encode(folder / "camera.mp4", patterned_clip(32, HEIGHT, WIDTH), fps=16, options={"bf": "3", "g": "8"})
    files["rotation 90"] = with_rotation(files["h264"], folder / "rot90.mp4", 90)
    files["edit-list cut"] = stream_copy_cut(camera, folder / "cut.mp4", start=0.7, duration=1.0)
    files["av1"] = encode(folder / "av1.mp4", patterned_clip(FRAMES, HEIGHT, WIDTH), "libsvtav1", "yuv420p")
    return files


def levels(video: torch.Tensor) -> np.ndarray:
    return ((video + 1) * 127.5).numpy()


@pytest.mark.parametrize("name", list(CORPUS) + list(DERIVED))
def test_backends_agree_within_the_stated_tolerance(corpus, name):
    max_diff, mean_diff = CORPUS[name][-1] if name in CORPUS else DERIVED[name]
    path = corpus[name]
    by_av, by_decord = (read_video_frames(path, 8, start=0, backend=b).astype(int) for b in ("av", "decord"))
    assert by_av.shape == by_decord.shape
    native = np.abs(by_av - by_decord)
    assert native.max() <= max_diff and native.mean() <= mean_diff, (native.max(), native.mean())
    clips = [read_video(path, 4, 2, size=(24, 32), start="center", backend=b) for b in ("av", "decord")]
    resized = np.abs(levels(clips[0]) - levels(clips[1]))
    assert resized.max() <= max_diff + 1e-3 and resized.mean() <= mean_diff + 1e-3, (resized.max(), resized.mean())


def test_decord_names_the_codec_it_cannot_decode(corpus, tmp_path):
    from opensora_lite.data.video_write import write_gif

    gif = write_gif(tmp_path / "clip.gif", patterned_clip(4, HEIGHT, WIDTH))
    for path, codec in ((corpus["av1"], "AV1"), (gif, "GIF")):
        assert read_video(path, 4, backend="av").shape == (3, 4, HEIGHT, WIDTH)
        with pytest.raises(DataError, match=f"{path.name}: decord has no {codec} decoder; use backend='av'"):
            read_video(path, 4, backend="decord")
