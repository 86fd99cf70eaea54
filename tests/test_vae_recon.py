"""tools/vae_recon.py: metrics, side-by-side MP4s, skipped files, no silent overwrite, one-line errors."""
import re

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from opensora_lite.cli import run_cli
from opensora_lite.data import video_io

from helpers import TINY_VAE, load_tool

CONFIG = TINY_VAE
FRAMES, SIDE = 6, 16


@pytest.fixture(scope="module")
def tool():
    return load_tool("vae_recon")


@pytest.fixture
def setup(tmp_path):
    config = tmp_path / "vae_tiny.py"
    config.write_text(CONFIG)
    clips = tmp_path / "clips"
    ramp = np.linspace(0, 255, SIDE, dtype=np.float32)
    frames = np.stack([np.stack([np.roll(ramp, t)[None, :].repeat(SIDE, 0)] * 3, axis=-1) for t in range(FRAMES)])
    video_io.write_video(clips / "ramp.mp4", frames.astype(np.uint8), fps=8)  # (T, H, W, 3)
    (clips / "broken.mp4").write_bytes(b"not a video")
    return config, clips, tmp_path / "out"


def run(tool, capsys, *argv):
    code = run_cli(tool.main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_reconstructs_reports_and_skips(tool, setup, capsys):
    config, clips, out_dir = setup
    code, out, _ = run(tool, capsys, config, "--input", clips, "--frames", FRAMES, "--save-dir", out_dir,
                       "--no-progress")
    assert code == 0
    assert re.search(r"ramp\.mp4: PSNR -?\d+\.\d\d dB  SSIM -?\d\.\d{4}", out)
    assert re.search(r"skipped .*broken\.mp4", out)
    assert "mean over 1 clip(s)" in out and "(1 skipped)" in out
    written = video_io.read_video(out_dir / "ramp_recon.mp4", FRAMES)  # (3, T, H, 2W): original | reconstruction
    assert written.shape == (3, FRAMES, SIDE, 2 * SIDE)
    original = video_io.read_video(clips / "ramp.mp4", FRAMES)
    assert (written[..., :SIDE] - original).abs().max() < 0.1  # the left half is the input clip
    assert not (out_dir / "broken_recon.mp4").exists()


def test_metrics_use_the_checkpoint(tool, setup, capsys, tmp_path):
    config, clips, out_dir = setup
    from opensora_lite.config import load_config

    vae = tool.build_vae(load_config(str(config)), str(config), None, seed=123, device="cpu")
    ckpt = tmp_path / "vae.safetensors"
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(ckpt))
    video = video_io.read_video(clips / "ramp.mp4", FRAMES)
    with torch.no_grad():
        expected_psnr, _ = tool.clip_metrics(video, tool.reconstruct(vae, video[None])[0])
    code, out, _ = run(tool, capsys, config, "--input", clips / "ramp.mp4", "--frames", FRAMES, "--ckpt", ckpt,
                       "--save-dir", out_dir, "--no-progress")
    assert code == 0
    assert f"PSNR {expected_psnr:.2f} dB" in out


def test_never_overwrites_without_the_flag(tool, setup, capsys):
    config, clips, out_dir = setup
    argv = [config, "--input", clips / "ramp.mp4", "--frames", FRAMES, "--save-dir", out_dir, "--no-progress"]
    assert run(tool, capsys, *argv)[0] == 0
    before = (out_dir / "ramp_recon.mp4").stat().st_mtime_ns
    code, _, err = run(tool, capsys, *argv)
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (out_dir / "ramp_recon.mp4").stat().st_mtime_ns == before
    assert run(tool, capsys, *argv, "--overwrite")[0] == 0


def test_user_errors_are_one_line_with_exit_code_2(tool, setup, capsys, tmp_path):
    config, clips, out_dir = setup
    cases = [
        ([config, "--input", clips / "broken.mp4", "--save-dir", out_dir], "could be reconstructed"),
        ([config, "--input", clips, "--ckpt", tmp_path / "missing.safetensors", "--save-dir", out_dir],
         "does not exist"),
        ([tmp_path / "nope.py", "--input", clips], "does not exist"),
        ([config, "--input", clips, "--frames", 0], "--frames"),
    ]
    for argv, message in cases:
        code, _, err = run(tool, capsys, *argv, "--no-progress")
        assert code == 2, argv
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
