"""tools/vae_recon.py: config weights, metrics, side-by-side MP4s, skips, no silent overwrite, one-line errors."""
import re

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from opensora_lite.data import video_read, video_write

from helpers import TINY_VAE, run

TOOL = "vae_recon"  # the command the tool fixture runs

CONFIG = TINY_VAE
FRAMES, SIDE = 6, 16


@pytest.fixture
def setup(tmp_path):
    config = tmp_path / "vae_tiny.py"
    config.write_text(CONFIG)
    clips = tmp_path / "clips"
    ramp = np.linspace(0, 255, SIDE, dtype=np.float32)
    frames = np.stack([np.stack([np.roll(ramp, t)[None, :].repeat(SIDE, 0)] * 3, axis=-1) for t in range(FRAMES)])
    video_write.write_video(clips / "ramp.mp4", frames.astype(np.uint8), fps=8)  # (T, H, W, 3)
    (clips / "broken.mp4").write_bytes(b"not a video")
    return config, clips, tmp_path / "out"


def test_reconstructs_reports_and_skips(tool, setup, capsys):
    config, clips, out_dir = setup
    code, out, _ = run(tool, capsys, config, "--input", clips, "--frames", FRAMES, "--save-dir", out_dir,
                       "--no-progress", "--random-init")
    assert code == 0
    assert re.search(r"ramp\.mp4: PSNR -?\d+\.\d\d dB  SSIM -?\d\.\d{4}", out)
    assert re.search(r"skipped .*broken\.mp4", out)
    assert out.count("broken.mp4") == 1  # the skip line names the file once
    assert "mean over 1 clip(s)" in out and "(1 skipped)" in out
    written = video_read.read_video(out_dir / "ramp_recon.mp4", FRAMES)  # (3, T, H, 2W): original | reconstruction
    assert written.shape == (3, FRAMES, SIDE, 2 * SIDE)
    original = video_read.read_video(clips / "ramp.mp4", FRAMES)
    assert (written[..., :SIDE] - original).abs().max() < 0.1  # the left half is the input clip
    assert not (out_dir / "broken_recon.mp4").exists()


def test_metrics_use_the_checkpoint(tool, setup, capsys, tmp_path):
    config, clips, out_dir = setup
    from opensora_lite.config import load_config

    vae = tool.build_vae(load_config(str(config)), str(config), seed=123)
    ckpt = tmp_path / "vae.safetensors"
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(ckpt))
    video = video_read.read_video(clips / "ramp.mp4", FRAMES)
    with torch.no_grad():
        expected_psnr, _ = tool.clip_metrics(video, tool.reconstruct(vae, video[None])[0])
    code, out, _ = run(tool, capsys, config, "--input", clips / "ramp.mp4", "--frames", FRAMES, "--ckpt", ckpt,
                       "--save-dir", out_dir, "--no-progress")
    assert code == 0
    assert f"PSNR {expected_psnr:.2f} dB" in out


def test_never_overwrites_without_the_flag(tool, setup, capsys):
    config, clips, out_dir = setup
    argv = [config, "--input", clips / "ramp.mp4", "--frames", FRAMES, "--save-dir", out_dir, "--no-progress",
            "--random-init"]
    assert run(tool, capsys, *argv)[0] == 0
    before = (out_dir / "ramp_recon.mp4").stat().st_mtime_ns
    code, _, err = run(tool, capsys, *argv)
    assert code == 2 and len(err) == 1 and "already exists" in err[0] and "--overwrite" in err[0], err
    assert (out_dir / "ramp_recon.mp4").stat().st_mtime_ns == before
    assert run(tool, capsys, *argv, "--overwrite")[0] == 0


def test_user_errors_are_one_line_with_exit_code_2(tool, setup, capsys, tmp_path):
    config, clips, out_dir = setup
    cases = [
        ([config, "--input", clips / "broken.mp4", "--save-dir", out_dir], "could be reconstructed"),
        ([config, "--input", clips, "--save-dir", out_dir], "no VAE weights: set ckpt.vae"),
        ([config, "--input", clips, "--size", 15, 15, "--save-dir", out_dir], "use --size 16 16"),
        ([config, "--input", clips, "--ckpt", tmp_path / "x", "--random-init"], "not allowed with"),
        ([config, "--input", clips, "--ckpt", tmp_path / "missing.safetensors", "--save-dir", out_dir],
         "does not exist"),
        ([tmp_path / "nope.py", "--input", clips], "does not exist"),
        ([config, "--input", clips, "--frames", 0], "--frames"),
    ]
    for argv, message in cases:
        code, _, err = run(tool, capsys, *argv, "--no-progress")
        assert code == 2, argv
        assert len(err) == 1 and message in err[0], err


def save_weights(tool, config, path, seed):
    from opensora_lite.config import load_config

    vae = tool.build_vae(load_config(str(config)), str(config), seed=seed)
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(path))
    return vae


def test_the_config_ckpt_vae_is_loaded_like_inference(tool, setup, capsys, tmp_path):
    config, clips, out_dir = setup
    vae = save_weights(tool, config, tmp_path / "vae.safetensors", seed=7)
    with_ckpt = tmp_path / "with_ckpt.py"
    with_ckpt.write_text(CONFIG + f"ckpt = dict(vae={str(tmp_path / 'vae.safetensors')!r})\n")
    video = video_read.read_video(clips / "ramp.mp4", FRAMES)
    with torch.no_grad():
        expected_psnr, _ = tool.clip_metrics(video, tool.reconstruct(vae, video[None])[0])
    code, out, _ = run(tool, capsys, with_ckpt, "--input", clips / "ramp.mp4", "--frames", FRAMES,
                       "--save-dir", out_dir, "--no-progress")
    assert code == 0 and f"PSNR {expected_psnr:.2f} dB" in out


def test_random_init_is_loud(tool, setup, capsys, caplog):
    config, clips, out_dir = setup
    code, _, _ = run(tool, capsys, config, "--input", clips / "ramp.mp4", "--frames", FRAMES, "--save-dir", out_dir,
                     "--no-progress", "--random-init")
    assert code == 0
    assert any("RANDOM weights" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


FACTOR4_VAE = CONFIG.replace('("DownEncoderBlock2D",) * 2', '("DownEncoderBlock2D",) * 3').replace(
    '("UpDecoderBlock2D",) * 2', '("UpDecoderBlock2D",) * 3').replace("(8, 16)", "(8, 16, 16)")


def test_a_native_size_the_vae_cannot_take_suggests_the_nearest_size(tool, tmp_path, capsys):
    config = tmp_path / "vae_f4.py"
    config.write_text(FACTOR4_VAE)  # spatial downsampling 4
    clip = video_write.write_video(tmp_path / "in" / "wide.mp4", np.zeros((FRAMES, 16, 18, 3), np.uint8))
    code, out, err = run(tool, capsys, config, "--input", clip, "--frames", FRAMES, "--save-dir", tmp_path / "o",
                         "--no-progress", "--random-init")
    assert code == 2 and any("could be reconstructed" in line for line in err), err
    assert "wide.mp4: native size 16x18 does not fit the VAE" in out and "use --size 16 16" in out


def test_gif_files_in_a_folder_are_inputs(tool, setup, capsys):
    config, clips, out_dir = setup
    video_write.write_gif(clips / "ramp.gif", video_read.read_video_frames(clips / "ramp.mp4", FRAMES), fps=8)
    code, out, _ = run(tool, capsys, config, "--input", clips, "--frames", FRAMES, "--save-dir", out_dir,
                       "--no-progress", "--random-init")
    assert code == 0 and re.search(r"ramp\.gif: PSNR", out) and "mean over 2 clip(s)" in out
