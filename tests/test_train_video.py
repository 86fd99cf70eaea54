"""Training on video files through the VAE: a folder with 10% bad files trains to the end, reporting them,
and samples are written during training."""
import logging

import numpy as np
import pytest

from opensora_lite.config import load_config
from opensora_lite.data.video_read import read_video
from opensora_lite.data.video_write import write_video

from helpers import TINY_INFERENCE


@pytest.fixture
def clip_folder(tmp_path):
    """18 good 8-frame 16x16 clips in 3 class folders, plus 2 bad files (10%)."""
    rng = np.random.default_rng(0)
    for label in range(3):
        for k in range(6):
            frames = np.zeros((8, 16, 16, 3), np.uint8)
            for t in range(8):
                frames[t, 4:10, 2 + t:8 + t, label] = 255  # a square of the class colour moving right
            frames = np.clip(frames + rng.integers(0, 8, frames.shape), 0, 255).astype(np.uint8)
            write_video(tmp_path / "clips" / f"class{label}" / f"{k}.mp4", frames, fps=4)
    (tmp_path / "clips" / "class0" / "empty.mp4").write_bytes(b"")
    (tmp_path / "clips" / "class1" / "garbage.mp4").write_bytes(b"this is not a video" * 50)
    return tmp_path / "clips"


def test_video_folder_with_bad_files_trains_to_the_end_and_writes_samples(tmp_path, clip_folder, caplog):
    from opensora_lite.training.train_loop import train

    config = tmp_path / "video_train.py"
    config.write_text(TINY_INFERENCE + f"""
dataset = dict(type="VideoClipDataset", source={str(clip_folder)!r}, num_frames=8, size=(16, 16), start="center")
train = dict(outputs={str(tmp_path / "run")!r}, batch_size=4, max_steps=6, ckpt_every=3, log_every=3,
             sample_every=3, lr=1e-3)
""")
    with caplog.at_level(logging.WARNING):
        summary = train(load_config(str(config)))
    assert summary["step"] == 6
    reported = caplog.text
    assert "empty.mp4" in reported and "garbage.mp4" in reported
    # the VAE here has random weights: the run says at once that it cannot keep these clips
    assert "the VAE reconstructs your clips at only" in reported and "opensora-lite train-vae" in reported
    assert (tmp_path / "run" / "checkpoints" / "step_00000006" / "meta.json").is_file()
    sample = tmp_path / "run" / "samples" / "step_00000006.mp4"
    assert sample.is_file() and (tmp_path / "run" / "samples" / "step_00000003.png").is_file()
    assert read_video(sample, 8).shape == (3, 8, 16, 16 * 3)  # 3 classes side by side


def test_a_latent_cache_says_how_many_clips_it_cuts_to_one_window(tmp_path, clip_folder, caplog):
    # The 8-frame clips trained as 4-frame clips through a cache: each keeps one window, which the run says
    # (it used to be silent). The 2 unreadable files are left out of the cache and of the dataset that checks
    # it (each used to be replaced by a clip of another class, and the new cache was refused at once).
    from opensora_lite.training.train_loop import train

    config = tmp_path / "cached.py"
    config.write_text(TINY_INFERENCE + f"""
dataset = dict(type="VideoClipDataset", source={str(clip_folder)!r}, num_frames=4, size=(16, 16), start="center")
train = dict(outputs={str(tmp_path / "run")!r}, batch_size=4, max_steps=1, lr=1e-3,
             latent_cache={str(tmp_path / "latents.safetensors")!r})
""")
    with caplog.at_level(logging.INFO):
        assert train(load_config(str(config)))["step"] == 1
        assert train(load_config(str(config)), overwrite=True)["step"] == 1  # the cache reused, still accepted
    assert "latent cache: 18 of 18 clips are longer than 4 frames" in caplog.text
    assert "dropped 2 of 20 video files" in caplog.text
