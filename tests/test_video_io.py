"""Video IO: MP4 round trips, backend agreement, frame selection, resizing, cuts, rotation, streams, limits,
damage, GIF / PNG grids, bad files."""
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image
from video_fixtures import encode, ffmpeg_frames, patterned_clip, stream_copy_cut, with_rotation

from opensora_lite.data import video_read
from opensora_lite.data.grid import make_grid, save_grid_png
from opensora_lite.data.video_read import (
    probe_video,
    read_clip,
    read_video,
    read_video_frames,
    resize_crop,
    sample_frame_indices,
)
from opensora_lite.data.video_write import to_uint8, write_gif, write_video
from opensora_lite.errors import DataError, UserError

BACKENDS = ("av", "decord")
LEVEL0, LEVEL_STEP = 8, 10  # frame t of an index-coded clip is a flat grey of LEVEL0 + LEVEL_STEP * t


def index_coded_clip(num_frames=24, height=32, width=48) -> np.ndarray:
    """uint8 (T, H, W, 3): every frame a flat grey encoding its own index, so decoding reveals which frame it is."""
    levels = LEVEL0 + LEVEL_STEP * np.arange(num_frames)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).astype(np.uint8).copy()


def decoded_indices(video: torch.Tensor) -> list:
    """Frame indices encoded in a (3, T, H, W) [-1, 1] clip read back from an index-coded file."""
    grey = ((video + 1) * 127.5).mean(dim=(0, 2, 3))  # (T,)
    return [int(round((g.item() - LEVEL0) / LEVEL_STEP)) for g in grey]


def smooth_clip(num_frames=16, height=32, width=48, seed=0) -> np.ndarray:
    """uint8 (T, H, W, 3): moving colour gradients, content a codec can keep almost exactly."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    frames = []
    for t in range(num_frames):
        phase = rng.uniform(0, 0.2) + 0.1 * t
        r = 0.5 + 0.4 * np.sin(2 * np.pi * (x + phase))
        g = 0.5 + 0.4 * np.cos(2 * np.pi * (y - phase))
        b = 0.5 + 0.4 * np.sin(2 * np.pi * (x + y + phase))
        frames.append(np.stack([r, g, b], axis=-1))
    return np.round(np.stack(frames) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def coded_mp4(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "coded.mp4", index_coded_clip(), fps=8)


@pytest.fixture(scope="module")
def smooth_mp4(tmp_path_factory):
    frames = smooth_clip()
    return write_video(tmp_path_factory.mktemp("v") / "smooth.mp4", frames, fps=8), frames


#################################################################################
#                              Reading and writing                              #
#################################################################################


def test_mp4_round_trip_is_close_to_the_original(smooth_mp4):
    path, frames = smooth_mp4
    video = read_video(path, num_frames=16, start=0)
    assert video.shape == (3, 16, 32, 48) and video.dtype == torch.float32
    assert video.min() >= -1 and video.max() <= 1
    error = np.abs(to_uint8(video).astype(int) - frames.astype(int)).mean()
    wrong_frame = np.abs(to_uint8(video)[1:].astype(int) - frames[:-1].astype(int)).mean()
    assert error < 5.0 and error < wrong_frame / 3, (error, wrong_frame)  # 4:2:0 chroma costs ~4 on this clip


def test_mp4_round_trip_of_grey_content_is_nearly_exact(coded_mp4):
    error = np.abs(to_uint8(read_video(coded_mp4, 24, start=0)).astype(int) - index_coded_clip().astype(int))
    assert error.max() <= 2


def test_probe_video_reports_frames_fps_and_size(coded_mp4):
    for backend in BACKENDS:
        assert probe_video(coded_mp4, backend=backend) == (24, 8.0, 32, 48)


@pytest.mark.parametrize("kwargs", [dict(), dict(size=(16, 16), frame_interval=2), dict(size=(20, 30), start=3)])
def test_av_and_decord_return_identical_frames(smooth_mp4, kwargs):
    path, _ = smooth_mp4
    by_av = read_video(path, num_frames=6, backend="av", **kwargs)
    by_decord = read_video(path, num_frames=6, backend="decord", **kwargs)
    assert torch.equal(by_av, by_decord)


def test_read_native_size_without_resize(coded_mp4):
    assert read_video(coded_mp4, num_frames=2).shape == (3, 2, 32, 48)


def test_resize_short_side_then_centre_crop_is_exact():
    # column x has grey value 2x: after cropping, column j must come from source column 24 + j
    frames = np.broadcast_to((2 * np.arange(96))[None, None, :, None], (2, 48, 96, 3)).astype(np.uint8)
    out = resize_crop(frames, (48, 48))  # short side already 48: a pure centre crop
    assert out.shape == (3, 2, 48, 48)
    expected = (2 * (24 + torch.arange(48))) / 127.5 - 1
    assert torch.allclose(out[0, 0, 10], expected.float(), atol=1e-5)


def test_resize_downscales_short_side_and_keeps_aspect():
    # 96 x 128 -> short side 48 gives 48 x 64, then cols 8..56 of it, i.e. source cols 16..112
    frames = np.broadcast_to(np.arange(128)[None, None, :, None], (1, 96, 128, 3)).astype(np.uint8)
    out = (resize_crop(frames, (48, 48))[0, 0] + 1) * 127.5  # (48, 48) grey values
    assert out.shape == (48, 48)
    expected = 16 + 2 * torch.arange(48) + 0.5  # centre of the 2 source columns averaged into each
    assert torch.allclose(out[20], expected.float(), atol=0.6)


def test_resize_to_non_square_target_crops_the_long_side():
    frames = np.zeros((1, 40, 40, 3), dtype=np.uint8)
    assert resize_crop(frames, (20, 30)).shape == (3, 1, 20, 30)  # scaled to 30x30, rows cropped


#################################################################################
#                                Frame selection                                #
#################################################################################


def test_frame_interval_and_center_start(coded_mp4):
    video = read_video(coded_mp4, num_frames=4, frame_interval=3, start="center")
    assert decoded_indices(video) == [7, 10, 13, 16]  # span 10 of 24 frames: start (24 - 10) // 2


def test_integer_start(coded_mp4):
    for backend in BACKENDS:
        video = read_video(coded_mp4, num_frames=4, frame_interval=3, start=2, backend=backend)
        assert decoded_indices(video) == [2, 5, 8, 11]


def test_random_start_is_valid_and_reproducible(coded_mp4):
    starts = []
    for seed in range(8):
        indices, again = [
            decoded_indices(read_video(coded_mp4, 4, 2, start="random", generator=torch.Generator().manual_seed(seed)))
            for _ in range(2)
        ]
        assert indices == again
        assert indices == list(range(indices[0], indices[0] + 8, 2)) and indices[-1] <= 23
        starts.append(indices[0])
    assert len(set(starts)) > 2


def test_short_policies_as_indices():
    assert sample_frame_indices(5, 4, 2, start=0, short_policy="loop") == [0, 2, 4, 1]
    assert sample_frame_indices(5, 4, 2, start=0, short_policy="pad") == [0, 2, 4, 4]
    with pytest.raises(DataError, match="too short"):
        sample_frame_indices(5, 4, 2, start=0, short_policy="error")
    assert sample_frame_indices(5, 4, 2, start="center", short_policy="pad") == [0, 2, 4, 4]


def test_short_policies_on_a_real_file(coded_mp4):
    for backend in BACKENDS:  # 10 frames at interval 3 span 28 > 24 frames
        loop = read_video(coded_mp4, 10, 3, start="center", short_policy="loop", backend=backend)
        assert decoded_indices(loop) == [0, 3, 6, 9, 12, 15, 18, 21, 0, 3]
        pad = read_video(coded_mp4, 10, 3, start="center", short_policy="pad", backend=backend)
        assert decoded_indices(pad) == [0, 3, 6, 9, 12, 15, 18, 21, 23, 23]
        with pytest.raises(DataError, match="coded.mp4"):
            read_video(coded_mp4, 10, 3, short_policy="error", backend=backend)


def test_start_outside_the_video_is_an_error(coded_mp4):
    with pytest.raises(DataError, match="outside"):
        read_video(coded_mp4, 2, start=30)


#################################################################################
#                                   Bad files                                   #
#################################################################################


def bad_files(folder, good_path):
    good = good_path.read_bytes()
    files = {
        "empty.mp4": b"",
        "truncated.mp4": good[: len(good) // 2],
        "text.mp4": b"this is not a video\n" * 20,
        "random.mp4": np.random.default_rng(0).bytes(3000),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in files]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_files_raise_data_error_naming_the_file(tmp_path, smooth_mp4, backend):
    paths = bad_files(tmp_path, smooth_mp4[0]) + [tmp_path / "missing.mp4", tmp_path]
    for path in paths:
        with pytest.raises(DataError, match=path.name):
            read_video(path, 4, backend=backend)
        with pytest.raises(DataError, match=path.name):
            probe_video(path, backend=backend)


def test_truncated_faststart_file_is_an_error(tmp_path):
    # the moov atom first (faststart) makes a truncated file openable; the missing frames must still raise
    import av

    path = tmp_path / "faststart.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=8)
        stream.height, stream.width, stream.pix_fmt = 32, 32, "yuv420p"
        for frame in np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    assert probe_video(path)[0] == 16
    for backend in BACKENDS:
        with pytest.raises(DataError, match="cut.mp4"):
            read_video(cut, 16, backend=backend)


def test_unknown_backend_is_a_user_error(coded_mp4):
    with pytest.raises(UserError, match="backend"):
        read_video(coded_mp4, 2, backend="opencv")


#################################################################################
#                        Real-world files: cuts, phones, damage                 #
#################################################################################


@pytest.fixture(scope="module")
def bframe_mp4(tmp_path_factory):
    """48 frames at 16 fps with B-frames (x264 bf=3, GOP 12), like a camera clip."""
    folder = tmp_path_factory.mktemp("real")
    return encode(folder / "clip.mp4", patterned_clip(48, 48, 64), fps=16, options={"bf": "3", "g": "12"})


@pytest.mark.parametrize("backend", BACKENDS)
def test_stream_copy_cut_reads_the_frames_a_player_shows(bframe_mp4, tmp_path, backend):
    cut = stream_copy_cut(bframe_mp4, tmp_path / "cut.mp4", start=1.3, duration=1.5)
    shown = ffmpeg_frames(cut)  # (T, H, W, 3): the edit list hides the pre-roll
    assert probe_video(cut, backend=backend)[0] == len(shown)
    frames = read_video_frames(cut, len(shown), start=0, backend=backend)
    assert np.abs(frames.astype(int) - shown.astype(int)).max() <= 1
    for seed in range(4):  # every random start is readable (no "truncated" at some starts only)
        read_video(cut, 8, 2, start="random", backend=backend, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_display_matrix_rotation_is_honoured_by_both_backends(bframe_mp4, tmp_path, degrees):
    rotated = with_rotation(bframe_mp4, tmp_path / f"rot{degrees}.mp4", degrees)
    shown = ffmpeg_frames(rotated)[:4]  # (4, H, W, 3) upright
    for backend in BACKENDS:
        frames = read_video_frames(rotated, 4, start=0, backend=backend)
        assert frames.shape == shown.shape, backend
        assert np.abs(frames.astype(int) - shown.astype(int)).max() <= 1, backend
        assert probe_video(rotated, backend=backend)[2:] == shown.shape[1:3]


def test_sample_aspect_ratio_is_honoured(tmp_path):
    # 48x48 coded pixels that are 4:3 wide are shown 64 wide; a square crop then keeps the middle 3/4
    path = encode(tmp_path / "anamorphic.mp4", patterned_clip(4, 48, 48), sample_aspect=Fraction(4, 3))
    for backend in BACKENDS:
        assert probe_video(path, backend=backend)[2:] == (48, 64)
        assert read_video(path, 2, backend=backend).shape == (3, 2, 48, 64)
    stretched = read_video(path, 2, size=(48, 64))
    coded = read_video_frames(path, 2)  # (T, 48, 48, 3) as stored
    expected = resize_crop(coded, None)  # no stretch: the same pixels
    assert expected.shape[-1] == 48 and stretched.shape[-1] == 64
    column = (stretched[:, :, :, 63] - expected[:, :, :, 47]).abs().mean()  # the right edges agree
    assert column < 0.05


def two_stream_file(path, first=((32, 32), 50), second=((64, 64), 200)):
    """Two H.264 video streams of flat grey: stream 0 of size/level ``first``, stream 1 ``second``."""
    import av

    with av.open(str(path), "w") as container:
        streams = []
        for (height, width), _ in (first, second):
            stream = container.add_stream("libx264", rate=8, options={"threads": "1"})
            stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
            streams.append(stream)
        for _ in range(6):
            for stream, ((height, width), level) in zip(streams, (first, second)):
                frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), level, np.uint8), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
        for stream in streams:
            for packet in stream.encode():
                container.mux(packet)
    return path


def grey_level(video: torch.Tensor) -> int:
    return int(round(((video + 1) * 127.5).mean().item()))


def test_the_first_video_stream_is_read_and_named_in_the_log(tmp_path, caplog):
    path = two_stream_file(tmp_path / "two.mp4")
    with caplog.at_level("INFO"):
        assert grey_level(read_video(path, 4)) == 50  # the first stream by index
    assert "2 video streams; reading video stream 0" in caplog.text
    assert grey_level(read_video(path, 4, stream=1)) == 200
    with pytest.raises(DataError, match="stream=2 does not exist"):
        read_video(path, 4, stream=2)


def test_decord_reads_the_same_stream_or_refuses(tmp_path):
    # decord always reads the stream FFmpeg calls best (here the larger, stream 1)
    path = two_stream_file(tmp_path / "two.mp4")
    assert grey_level(read_video(path, 4, backend="decord", stream=1)) == 200
    with pytest.raises(DataError, match="decord reads another of the 2 video streams.*use backend='av'"):
        read_video(path, 4, backend="decord")


@pytest.mark.parametrize("backend", BACKENDS)
def test_source_limits_refuse_in_one_line_naming_file_and_limit(coded_mp4, backend):
    with pytest.raises(DataError, match=r"coded\.mp4: frames of 48x32 \(1536 pixels\) exceed max_source_pixels=1000"):
        read_video(coded_mp4, 2, backend=backend, max_source_pixels=1000)
    with pytest.raises(DataError, match=r"coded\.mp4: 24 frames exceed max_source_frames=20"):
        read_video(coded_mp4, 2, backend=backend, max_source_frames=20)
    assert read_video(coded_mp4, 2, backend=backend, max_source_pixels=None).shape == (3, 2, 32, 48)


def test_out_of_memory_while_decoding_is_a_data_error(coded_mp4, monkeypatch):
    def no_memory(frame, geometry):
        raise MemoryError("Unable to allocate 19.0 GiB")

    monkeypatch.setattr(video_read, "_frame_to_tensor", no_memory)
    with pytest.raises(DataError, match=r"coded\.mp4: out of memory decoding 48x32 frames"):
        read_video(coded_mp4, 2, size=(16, 16))


def damage_packet(source, out, packet: int):
    """Copy ``source`` with the first bytes of video packet ``packet`` overwritten: the decoder rejects it."""
    import av

    with av.open(str(source)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(source.read_bytes())
    position, _ = packets[packet]
    data[position : position + 12] = b"\xff" * 12
    out.write_bytes(bytes(data))
    return out


def test_a_lost_packet_is_concealed_and_counted(coded_mp4, tmp_path):
    damaged = damage_packet(coded_mp4, tmp_path / "damaged.mp4", packet=10)
    clip = read_clip(damaged, 24, start=0)
    assert clip.concealed >= 1
    assert decoded_indices(clip.video)[:10] == list(range(10))  # the frames before the damage are intact
    assert decoded_indices(clip.video)[10] == 9  # the lost frame repeats the one before it
    assert read_clip(coded_mp4, 24, start=0).concealed == 0


def test_gif_is_read_by_av_and_refused_by_decord_with_the_reason(tmp_path):
    path = write_gif(tmp_path / "a.gif", index_coded_clip(6), fps=4)
    assert decoded_indices(read_video(path, 6, start=0)) == list(range(6))
    with pytest.raises(DataError, match="a.gif: decord has no GIF decoder; use backend='av'"):
        read_video(path, 6, backend="decord")


#################################################################################
#                             Writers and conversions                           #
#################################################################################


def test_to_uint8_maps_the_range_and_layout():
    video = torch.zeros(3, 2, 4, 5)
    video[0], video[1], video[2] = -1.0, 1.0, 5.0  # out-of-range values are clamped
    out = to_uint8(video)
    assert out.shape == (2, 4, 5, 3) and out.dtype == np.uint8
    assert (out[..., 0] == 0).all() and (out[..., 1] == 255).all() and (out[..., 2] == 255).all()
    assert to_uint8(torch.zeros(2, 3, 1, 4, 4)).shape == (2, 1, 4, 4, 3)
    with pytest.raises(UserError):
        to_uint8(torch.zeros(4, 2, 4, 4))  # channels must come first for float clips


def test_write_refuses_to_overwrite(tmp_path):
    path = write_video(tmp_path / "a.mp4", index_coded_clip(4))
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_video(path, index_coded_clip(6))
    with pytest.raises(UserError, match="overwrite"):
        write_gif(path, index_coded_clip(6))
    assert path.read_bytes() == before
    write_video(path, index_coded_clip(6), overwrite=True)
    assert probe_video(path)[0] == 6
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]  # no temporary file left behind


def test_write_float_clip_with_odd_size_pads_to_even(tmp_path):
    video = torch.from_numpy(smooth_clip(5, 33, 35)).permute(3, 0, 1, 2).float() / 127.5 - 1  # (3, T, H, W)
    path = write_video(tmp_path / "odd.mp4", video, quality="near_lossless")
    assert probe_video(path) == (5, 8.0, 34, 36)
    back = read_video_frames(path, 5, start=0)
    assert np.abs(back[:, :33, :35].astype(int) - to_uint8(video).astype(int)).mean() < 7  # 4:2:0 chroma
    assert np.abs(back[:, 33].astype(int) - back[:, 32].astype(int)).mean() < 5  # the padding repeats the edge


def test_gif_is_written_and_readable(tmp_path):
    frames = smooth_clip(num_frames=6)
    path = write_gif(tmp_path / "a.gif", frames, fps=4)
    with Image.open(path) as gif:
        assert gif.n_frames == 6 and gif.size == (48, 32)
        assert gif.info["duration"] == 250
        gif.seek(3)
        frame3 = np.asarray(gif.convert("RGB"))
    assert np.abs(frame3.astype(int) - frames[3].astype(int)).mean() < 12  # palette quantisation


def test_png_grid_has_one_row_per_clip(tmp_path):
    videos = torch.rand(3, 3, 16, 8, 10) * 2 - 1  # (N, 3, T, H, W)
    path = save_grid_png(tmp_path / "grid.png", videos, frame_stride=4, padding=2)
    grid = np.asarray(Image.open(path).convert("RGB"))
    assert grid.shape == (3 * (8 + 2) + 2, 4 * (10 + 2) + 2, 3)  # 3 rows, frames 0, 4, 8, 12
    tile = grid[2 + 1 * 10 : 2 + 1 * 10 + 8, 2 + 2 * 12 : 2 + 2 * 12 + 10]  # row 1, column 2 = frame 8
    assert np.array_equal(tile, to_uint8(videos[1])[8])
    assert make_grid(list(videos), nrow=2, frame_stride=1).shape[1] == 2 * 12 + 2


def test_the_same_clip_gives_the_same_file_in_every_process(tmp_path):
    """x264's macroblock tree read memory it never wrote: once torch had run in the process, the same clip gave
    other bytes, and pixels up to 16 levels apart, from run to run of the same command."""
    script = ("import sys, torch; from opensora_lite.data.video_write import write_video; "
              "x = torch.rand(1, 3, 16, 64, 64, generator=torch.Generator().manual_seed(0)) * 6 - 3; "
              "write_video(sys.argv[1], torch.nn.functional.avg_pool3d(x, 3, 1, 1)[0].clamp(-1, 1))")
    paths = [tmp_path / f"{i}.mp4" for i in range(5)]
    for path in paths:
        subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=120)
    assert len({p.read_bytes() for p in paths}) == 1
