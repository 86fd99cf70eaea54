"""Your own videos in buckets (issue #26): a folder of mixed sizes, ratios, lengths and stills -> make-csv ->
training one bucket per batch -> generation at each trained size."""
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from video_fixtures import encode, patterned_clip

from helpers import TINY_VAE, losses, run_train

# (height, width, frames) per clip of each class: 6 aspect ratios, 1 to 150 frames, plus stills
CLIPS = [(64, 64, 12), (64, 64, 150), (48, 96, 12), (48, 96, 10), (96, 48, 12), (96, 48, 9), (64, 48, 12),
         (48, 64, 11), (72, 40, 12), (40, 72, 12), (64, 64, 3)]


@pytest.fixture(scope="module")
def mixed_csv(tmp_path_factory):
    """A folder as a user has it, made into a CSV with ``opensora-lite make-csv --label-from-folder``: two
    classes of clips of CLIPS, 64x64 stills and one unreadable file."""
    from opensora_lite.cli import run_cli

    from helpers import load_tool

    root = tmp_path_factory.mktemp("mixed")
    for label in ("a", "b"):
        (root / "clips" / label).mkdir(parents=True)
        for k, (h, w, frames) in enumerate(CLIPS):
            clip = patterned_clip(frames, h, w)
            if label == "b":
                clip = clip[:, ::-1]  # the other class: upside down
            encode(root / "clips" / label / f"{k}.mp4", np.ascontiguousarray(clip))
        for k in range(4):
            Image.fromarray(np.full((64, 64, 3), 60 if label == "a" else 200, np.uint8)).save(
                root / "clips" / label / f"still{k}.png")
    (root / "clips" / "a" / "broken.mp4").write_bytes(b"not a video")
    assert run_cli(load_tool("make_csv").main, [str(root / "clips"), "-o", str(root / "data.csv"),
                                                "--label-from-folder", "--workers", "1"]) == 0
    rows = (root / "data.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * (len(CLIPS) + 4) and not any("broken" in row for row in rows)  # skipped, named
    return root / "data.csv"


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    """Weights of the tiny VAE (random: the test is about the buckets, not the pictures)."""
    import torch
    from mmengine.config import Config

    from opensora_lite.registry import MODELS, build_module
    from opensora_lite.storage import save_checkpoint

    torch.manual_seed(0)
    vae = build_module(Config.fromstring(TINY_VAE, ".py").vae, MODELS)
    path = tmp_path_factory.mktemp("vae") / "vae.safetensors"
    save_checkpoint(vae, path)
    return path


BUCKETS = {"64px": {1: (1.0, 4), 9: (1.0, 2)}, "48px": {9: (1.0, 2), 3: (1.0, 2)}}


def bucket_config(tmp_path, csv, vae, outputs, buckets=BUCKETS, **train):
    settings = dict(outputs=str(outputs), plugin="ddp", precision="fp32", seed=0, batch_size=2, max_steps=12,
                    lr=1e-3, warmup_steps=2, ema_decay=0.9, ckpt_every=2, log_every=4,
                    frame_mask=dict(none=0.5, first=0.5))
    settings.update(train)
    path = tmp_path / f"bucket_{outputs.name}.py"
    path.write_text(TINY_VAE + f"""
num_classes = 12  # the data has 2: the run follows the data
class_names = "shapes"
num_frames = 9
image_size = (64, 64)
model = dict(type="STDiT", input_size=(3, 32, 32), patch_size=(1, 2, 2), in_channels=4, hidden_size=32, depth=1,
             num_heads=2, num_classes=num_classes, learn_sigma=False, class_dropout_prob=0.1)
scheduler = dict(type="rflow", num_sampling_steps=2, cfg_scale=2.0)
inference = dict(num_frames=9, fps=4)
dataset = dict(type="VideoClipDataset", source={str(csv)!r}, num_frames=9, size=(64, 64), start="center")
bucket_config = {buckets!r}
train = {settings!r}
ckpt = dict(vae={str(vae)!r})
""")
    return path


TABLE = ["| 48px 3f 48x48 | 2 | 1 | 2 |", "| 48px 9f 32x64 | 2 | 1 | 2 |", "| 48px 9f 48x64 | 2 | 1 | 2 |",
         "| 48px 9f 48x32 | 2 | 1 | 2 |", "| 48px 9f 64x32 | 2 | 1 | 2 |", "| 64px 1f 64x64 | 8 | 2 | 4 |",
         "| 64px 9f 48x96 | 4 | 2 | 2 |", "| 64px 9f 64x64 | 4 | 2 | 2 |", "| 64px 9f 96x48 | 4 | 2 | 2 |"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory, mixed_csv, tiny_vae):
    """An uninterrupted bucketed run of 12 steps: its folder and its loss curve."""
    tmp = tmp_path_factory.mktemp("straight")
    result = run_train(bucket_config(tmp, mixed_csv, tiny_vae, tmp / "run"))
    return tmp / "run", losses(tmp / "run"), result.stdout + result.stderr


def test_mixed_folder_trains_in_buckets_with_a_table(straight):
    _, curve, log = straight
    for line in TABLE:
        assert line in log, log[-3000:]
    assert "1 clips unused this epoch" not in log  # every readable clip fits a bucket
    assert sorted(curve) == list(range(1, 13)) and all(np.isfinite(list(curve.values())))


def test_sigkill_mid_run_then_resume_gives_the_same_run(tmp_path, mixed_csv, tiny_vae, straight):
    from opensora_lite.training.run_checkpoint import latest_checkpoint

    config = bucket_config(tmp_path, mixed_csv, tiny_vae, tmp_path / "killed")
    proc = run_train(config, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while latest_checkpoint(tmp_path / "killed") is None and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = int(latest_checkpoint(tmp_path / "killed").name[len("step_"):])
    assert killed_at < 12 and not (tmp_path / "killed" / "model_ema.safetensors").exists()
    run_train(config)  # resumes from the newest complete checkpoint of the folder
    assert losses(tmp_path / "killed") == straight[1]  # the same batches, the same steps
    weights = [load_file(str(folder / "model_ema.safetensors")) for folder in (straight[0], tmp_path / "killed")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_two_processes_equal_one(tmp_path, mixed_csv, tiny_vae, straight):
    run_train(bucket_config(tmp_path, mixed_csv, tiny_vae, tmp_path / "two"), nproc=2)
    two = losses(tmp_path / "two")
    assert sorted(two) == sorted(straight[1])
    assert np.allclose([two[s] for s in sorted(two)], [straight[1][s] for s in sorted(two)], rtol=1e-4, atol=1e-6)


def test_the_latent_cache_works_per_bucket(tmp_path, mixed_csv, tiny_vae, straight):
    config = bucket_config(tmp_path, mixed_csv, tiny_vae, tmp_path / "cached", latent_cache=str(tmp_path / "c.st"))
    first = run_train(config)
    # each clip once, in its bucket (every probability is 1); 18 clips have more frames than their bucket
    assert "30 latents of 30 clips in 9 buckets" in first.stderr, first.stderr[-3000:]
    assert "18 of 30 clips are longer than a bucket" in first.stderr
    cached = losses(tmp_path / "cached")  # latents read back, not encoded per batch: the same run
    assert np.allclose([cached[s] for s in sorted(cached)], [straight[1][s] for s in sorted(cached)], rtol=1e-4)
    built = (tmp_path / "c.st").stat().st_mtime_ns
    run_train(config, "--outputs", str(tmp_path / "again"))
    assert (tmp_path / "c.st").stat().st_mtime_ns == built and losses(tmp_path / "again") == cached  # reused
    other = bucket_config(tmp_path, mixed_csv, tiny_vae, tmp_path / "other", buckets={"64px": {9: (1.0, 2)}},
                          latent_cache=str(tmp_path / "c.st"))
    result = run_train(other, check=False)
    assert result.returncode == 2 and "made with another bucket_config" in result.stderr


def test_the_run_keeps_the_data_classes_and_generates_at_each_trained_size(straight, tmp_path, capsys):
    from opensora_lite import VideoPipeline
    from opensora_lite.config import load_config

    from helpers import load_tool, run

    cfg = load_config(str(straight[0] / "config.py"))
    assert cfg.model.num_classes == 2 and list(cfg.class_names) == ["a", "b"]  # not the config's 12 shapes
    code, out, err = run(load_tool("generate"), capsys, straight[0], "--class", "b", "--size", 48, 96, "--steps", 2,
                         "--frames", 9, "--save-dir", tmp_path, "--no-progress")
    assert code == 0 and (tmp_path / "1-0.mp4").is_file(), (out, err)  # class b is id 1
    pipe = VideoPipeline.from_config(straight[0])
    assert pipe(classes=[1], num_frames=9, steps=2, progress=False).names == ["1 b"]  # the grid's row label
    for size in ((64, 64), (48, 96), (96, 48), (48, 32), (32, 64)):
        assert pipe(classes=[1], num_frames=9, size=size, steps=2, progress=False).videos.shape == (1, 3, 9, *size)
    assert pipe(classes=[0], num_frames=1, resolution="64px", aspect_ratio="2:1", steps=2,
                progress=False).videos.shape == (1, 3, 1, 96, 48)
