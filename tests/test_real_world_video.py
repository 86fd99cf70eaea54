"""Real-world files end to end: a huge frame under a memory limit (CLI and dataset), a damaged clip kept and
counted by the dataset, GIFs in class folders."""
import os
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from video_fixtures import ffmpeg

from opensora_lite.data.datasets import VideoClipDataset
from opensora_lite.data.video_write import write_gif, write_video

from helpers import LOG_LINE, ROOT, TINY_VAE

# The acceptance bound: a 10000x10000 frame must be refused or read small within 6 GiB of address space.
ADDRESS_SPACE_LIMIT = 6 << 30
HUGE_SIDE = 10000


@pytest.fixture(scope="module")
def huge_setup(tmp_path_factory):
    """A ~300 KB H.264 file holding one 10000x10000 frame, an ordinary clip, a CSV of both, a tiny VAE config."""
    folder = tmp_path_factory.mktemp("huge")
    ffmpeg("-f", "lavfi", "-i", f"color=gray:s={HUGE_SIDE}x{HUGE_SIDE}:r=8", "-frames:v", 1, "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", folder / "huge.mp4")
    write_video(folder / "small.mp4", np.full((4, 16, 16, 3), 100, np.uint8))
    (folder / "list.csv").write_text("path,label\nhuge.mp4,0\nsmall.mp4,1\n")
    (folder / "vae.py").write_text(TINY_VAE)
    return folder


def run_limited(argv):
    """Run ``argv`` with RLIMIT_AS at ADDRESS_SPACE_LIMIT; return the CompletedProcess."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *map(str, argv)], preexec_fn=limit, env=env, capture_output=True,
                          text=True, timeout=300)


def test_huge_frame_is_refused_by_the_cli_in_one_line(huge_setup):
    result = run_limited([ROOT / "tools" / "vae_recon.py", huge_setup / "vae.py", "--input", huge_setup / "huge.mp4",
                          "--size", 64, 64, "--save-dir", huge_setup / "out", "--random-init", "--no-progress"])
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if not LOG_LINE.match(line)]
    assert errors == ["error: none of the 1 input(s) could be reconstructed"], result.stderr
    assert f"skipped {huge_setup / 'huge.mp4'}: frames of {HUGE_SIDE}x{HUGE_SIDE}" in result.stdout
    assert "max_source_pixels=" in result.stdout


def test_huge_frame_is_skipped_by_the_dataset_and_read_small_without_the_limit(huge_setup):
    script = textwrap.dedent(f"""
        from opensora_lite.data.datasets import VideoClipDataset
        from opensora_lite.data.video_read import read_video
        dataset = VideoClipDataset({str(huge_setup / 'list.csv')!r}, num_frames=2, size=(64, 64), start="center")
        item = dataset[0]
        print("replaced by", item["index"], tuple(item["video"].shape), "bad:", dataset.bad_files)
        print("unlimited", tuple(read_video({str(huge_setup / 'huge.mp4')!r}, 1, size=(64, 64),
                                              max_source_pixels=None).shape))
    """)
    result = run_limited(["-c", script])
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "replaced by 1 (3, 2, 64, 64)" in result.stdout and "huge.mp4" in result.stdout
    assert "unlimited (3, 1, 64, 64)" in result.stdout


def test_a_damaged_clip_is_kept_and_its_concealed_frames_counted(tmp_path, caplog):
    from test_video_io import damage_packet, index_coded_clip

    good = write_video(tmp_path / "good.mp4", index_coded_clip(24), fps=8)
    damage_packet(good, tmp_path / "damaged.mp4", packet=10)
    (tmp_path / "list.csv").write_text("path,label\ndamaged.mp4,0\n")
    dataset = VideoClipDataset(tmp_path / "list.csv", num_frames=24, size=(16, 16), start="center")
    with caplog.at_level("WARNING"):
        assert dataset[0]["index"] == 0
    assert dataset.bad_files == []
    assert dataset.concealed_frames[str(tmp_path / "damaged.mp4")] >= 1
    assert "concealed" in caplog.text


def test_class_folders_accept_gifs(tmp_path):
    for label, level in ((0, 40), (1, 200)):
        (tmp_path / f"class{label}").mkdir()
        write_gif(tmp_path / f"class{label}" / "clip.gif", np.full((4, 16, 16, 3), level, np.uint8))
    dataset = VideoClipDataset(tmp_path, num_frames=4, size=(16, 16), start="center")
    assert len(dataset) == 2 and [p.suffix for p in dataset.paths] == [".gif", ".gif"]
    assert abs(((dataset[1]["video"] + 1) * 127.5).mean().item() - 200) < 3
