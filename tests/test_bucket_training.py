"""Your own videos in buckets (issue #26): a folder of mixed sizes, ratios, lengths and stills -> make-csv ->
training one bucket per batch -> generation at each trained size."""
import numpy as np
import pytest
from PIL import Image
from video_fixtures import encode, patterned_clip

from opensora_lite.data.folder_scan import scan_folder, write_csv

from helpers import TINY_VAE, losses, run_train


@pytest.fixture(scope="module")
def mixed_csv(tmp_path_factory):
    """Two classes; each: 64x64 and 48x96 and 96x48 clips of 12 frames, and 64x64 stills."""
    root = tmp_path_factory.mktemp("mixed")
    for label in ("a", "b"):
        (root / "clips" / label).mkdir(parents=True)
        for k, (h, w) in enumerate([(64, 64), (64, 64), (48, 96), (48, 96), (96, 48), (96, 48)]):
            clip = patterned_clip(12, h, w)
            if label == "b":
                clip = clip[:, ::-1]  # the other class: upside down
            encode(root / "clips" / label / f"{k}.mp4", np.ascontiguousarray(clip))
        for k in range(4):
            Image.fromarray(np.full((64, 64, 3), 60 if label == "a" else 200, np.uint8)).save(
                root / "clips" / label / f"still{k}.png")
    rows, skipped, classes = scan_folder(root / "clips", label_from_folder=True)
    assert not skipped
    return write_csv(rows, root / "data.csv", classes)


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


def bucket_config(tmp_path, csv, vae, outputs, **train):
    settings = dict(outputs=str(outputs), plugin="ddp", precision="fp32", seed=0, batch_size=2, max_steps=8,
                    lr=1e-3, warmup_steps=2, ema_decay=0.9, ckpt_every=4, log_every=4,
                    frame_mask=dict(none=0.5, first=0.5))
    settings.update(train)
    path = tmp_path / f"bucket_{outputs.name}.py"
    path.write_text(TINY_VAE + f"""
num_classes = 2
num_frames = 9
image_size = (64, 64)
model = dict(type="STDiT", input_size=(3, 32, 32), patch_size=(1, 2, 2), in_channels=4, hidden_size=32, depth=1,
             num_heads=2, num_classes=num_classes, learn_sigma=False, class_dropout_prob=0.1)
scheduler = dict(type="rflow", num_sampling_steps=2, cfg_scale=2.0)
inference = dict(num_frames=9, fps=4)
dataset = dict(type="VideoClipDataset", source={str(csv)!r}, num_frames=9, size=(64, 64), start="center")
bucket_config = {{"64px": {{1: (1.0, 4), 9: (1.0, 2)}}}}
train = {settings!r}
ckpt = dict(vae={str(vae)!r})
""")
    return path


def test_mixed_clips_train_in_buckets_resume_exactly_and_generate_at_each_size(tmp_path, mixed_csv, tiny_vae):
    straight = run_train(bucket_config(tmp_path, mixed_csv, tiny_vae, tmp_path / "straight"))
    table = straight.stdout + straight.stderr
    for line in ("| 64px 1f 64x64 | 8 | 2 | 4 |", "| 64px 9f 48x96 | 4 | 2 | 2 |", "| 64px 9f 64x64 | 4 | 2 | 2 |",
                 "| 64px 9f 96x48 | 4 | 2 | 2 |"):
        assert line in table, table[-3000:]
    curve = losses(tmp_path / "straight")
    assert sorted(curve) == list(range(1, 9)) and all(np.isfinite(list(curve.values())))

    run_train(bucket_config(tmp_path, mixed_csv, tiny_vae, tmp_path / "cut", max_steps=4))
    run_train(bucket_config(tmp_path, mixed_csv, tiny_vae, tmp_path / "more"), "--resume",
              str(tmp_path / "cut/checkpoints/step_00000004"))
    assert losses(tmp_path / "more") == {s: curve[s] for s in (5, 6, 7, 8)}  # the same batches, the same steps

    from opensora_lite import VideoPipeline

    pipe = VideoPipeline.from_config(tmp_path / "straight")
    for size in ((64, 64), (48, 96), (96, 48)):
        assert pipe(classes=[1], num_frames=9, size=size, steps=2, progress=False).videos.shape == (1, 3, 9, *size)
    assert pipe(classes=[0], num_frames=1, resolution="64px", aspect_ratio="2:1", steps=2,
                progress=False).videos.shape == (1, 3, 1, 96, 48)


def test_buckets_refuse_a_latent_cache(tmp_path, mixed_csv, tiny_vae):
    config = bucket_config(tmp_path, mixed_csv, tiny_vae, tmp_path / "run", latent_cache=str(tmp_path / "c.st"))
    result = run_train(config, check=False)
    assert result.returncode == 2 and "latent_cache does not work with bucket_config" in result.stderr
