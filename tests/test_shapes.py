"""The moving-shapes benchmark (docs/shapes_benchmark.md), its independent judge, and the eval metrics."""
import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from opensora_lite.cli import run_cli
from opensora_lite.data.datasets import VideoClipDataset
from opensora_lite.data.shapes import (
    CLASS_NAMES,
    LONG_FRAMES,
    NUM_CLASSES,
    RADIUS_RANGE,
    SPEED_RANGE,
    class_id,
    generate_clip,
    make_shapes_dataset,
    render_clip,
    sample_clip,
    shape_coverage,
    split_class_id,
    split_clip,
)
from opensora_lite.data.video_read import read_video_frames
from opensora_lite.errors import UserError
from opensora_lite.eval import frechet_distance, judge_accuracy, judge_clip, psnr, ssim

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import make_shapes  # noqa: E402  (tools/make_shapes.py)


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    """A fresh benchmark: 3 training and 2 held-out clips per class (60 MP4 files)."""
    out = tmp_path_factory.mktemp("shapes")
    make_shapes_dataset(out, clips_per_class=3, val_clips_per_class=2, seed=11, progress=False)
    return out


#################################################################################
#                                  Generation                                   #
#################################################################################


def test_class_ids_follow_the_spec():
    assert NUM_CLASSES == 12 and class_id("circle", "right") == 0 and class_id("triangle", "up") == 11
    assert CLASS_NAMES[0] == "circle-right" and CLASS_NAMES[5] == "square-left" and CLASS_NAMES[11] == "triangle-up"
    assert all(class_id(*split_class_id(i)) == i for i in range(12))


def test_clips_are_deterministic_for_a_seed():
    a, params_a = generate_clip(seed=3, label=7, k=2)
    b, params_b = generate_clip(seed=3, label=7, k=2)
    c, _ = generate_clip(seed=4, label=7, k=2)
    assert np.array_equal(a, b) and params_a == params_b
    assert not np.array_equal(a, c)
    assert a.shape == (16, 64, 64, 3) and a.dtype == np.uint8


def test_rasteriser_areas_match_the_geometry():
    r = 10.3
    for shape, area in [("circle", np.pi * r**2), ("square", 4 * r**2), ("triangle", 2 * r**2)]:
        coverage = shape_coverage(shape, 30.4, 31.7, r, 64)
        assert abs(coverage.sum() - area) / area < 0.01, shape
    tri = shape_coverage("triangle", 32.0, 32.0, 10.0, 64)
    assert tri[24].sum() < tri[40].sum()  # apex up: narrow top row, wide bottom row


@pytest.mark.parametrize("label", range(12))
def test_clip_geometry_follows_the_spec(label):
    rng = np.random.default_rng(label)
    shape, direction = split_class_id(label)
    dx, dy = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}[direction]
    for _ in range(3):
        clip = sample_clip(rng, label)
        frames = render_clip(clip)  # (T, H, W, 3)
        assert (clip.shape, clip.direction, clip.label) == (shape, direction, label)
        assert RADIUS_RANGE[0] <= clip.radius <= RADIUS_RANGE[1] and SPEED_RANGE[0] <= clip.speed <= SPEED_RANGE[1]
        assert max(clip.color) == 255 and min(clip.color) == 0  # HSV S = 1, V = 1
        centres = clip.centers()
        assert np.all(centres - clip.radius >= 0) and np.all(centres + clip.radius <= 64)
        # fully inside in every frame: the frame border stays black and no coverage is lost to clipping
        assert frames[:, [0, -1]].max() == 0 and frames[:, :, [0, -1]].max() == 0
        coverage = frames.max(axis=-1).sum(axis=(1, 2)) / 255.0  # (T,) covered pixels per frame
        area = {"circle": np.pi, "square": 4.0, "triangle": 2.0}[shape] * clip.radius**2
        assert np.all(np.abs(coverage - area) / area < 0.03)
        # straight line at constant speed: the intensity centroid moves by speed * direction every frame
        weights = frames.max(axis=-1).astype(np.float64)
        ys, xs = np.indices((64, 64))
        cx = (weights * xs).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))
        cy = (weights * ys).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))
        assert np.allclose(np.diff(cx), dx * clip.speed, atol=0.03)
        assert np.allclose(np.diff(cy), dy * clip.speed, atol=0.03)
        # colour: the fully covered pixels are exactly the clip's colour
        full = frames[0][frames[0].max(axis=-1) == 255]
        assert len(full) > 0 and np.all(full == np.array(clip.color, dtype=np.uint8))


def test_impossible_clip_length_is_a_user_error():
    with pytest.raises(UserError, match="frames"):
        sample_clip(np.random.default_rng(0), 0, num_frames=40, size=64)
    clip = sample_clip(np.random.default_rng(0), 0, num_frames=24, size=64)  # fits with a capped speed
    assert clip.speed * 23 + 2 * clip.radius <= 64


def test_rasteriser_clips_at_the_border():
    r = 10.0
    # a square 3.3 px past each border keeps its inside part, (2r - 3.3) x 2r, to a sub-row (1/32 px) in y
    for cx, cy in [(r - 3.3, 30.0), (64 - r + 3.3, 30.0), (30.0, r - 3.3), (30.0, 64 - r + 3.3)]:
        assert abs(shape_coverage("square", cx, cy, r, 64).sum() - (2 * r - 3.3) * 2 * r) < 2 * r / 32, (cx, cy)
    # a circle centred on the left border: half of it
    assert abs(shape_coverage("circle", 0.0, 30.0, r, 64).sum() - np.pi * r**2 / 2) < 0.5
    # the top half of an apex-up triangle centred on the bottom border: a triangle of width r and height r
    assert abs(shape_coverage("triangle", 30.0, 64.0, r, 64).sum() - r**2 / 2) < 0.5
    for shape in ("circle", "square", "triangle"):  # gone: nothing drawn
        assert shape_coverage(shape, -r - 0.01, 30.0, r, 64).max() == 0.0
        assert shape_coverage(shape, 30.0, 64 + r + 0.01, r, 64).max() == 0.0


def _visible_area(clip) -> np.ndarray:
    """(T,) exact area of a square clip's box inside the frame."""
    lo = np.clip(clip.centers() - clip.radius, 0, clip.size)  # (T, 2)
    hi = np.clip(clip.centers() + clip.radius, 0, clip.size)
    return np.prod(hi - lo, axis=1)


def test_window_clips_enter_and_leave_through_the_borders():
    kinds = set()
    for label in range(NUM_CLASSES):
        for k in range(4):
            frames, clip = generate_clip(5, label, k, "train_window")
            inside, gone = clip.inside(), clip.gone()
            assert frames.shape == (16, 64, 64, 3) and inside.any() and not gone[0]
            assert RADIUS_RANGE[0] <= clip.radius <= RADIUS_RANGE[1] and SPEED_RANGE[0] <= clip.speed <= SPEED_RANGE[1]
            dx, dy = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}[clip.direction]
            assert np.allclose(np.diff(clip.centers(), axis=0), [dx * clip.speed, dy * clip.speed])
            assert frames[gone].max(initial=0) == 0  # once gone the frames are black
            coverage = frames.max(axis=-1).sum(axis=(1, 2)) / 255.0  # (T,)
            assert coverage[0] > 1.0  # frame 0 shows at least MIN_ENTRY_DEPTH (2 px) of it
            if clip.shape == "square":  # partly outside frames are drawn partially
                assert np.allclose(coverage, _visible_area(clip), rtol=0.02, atol=0.5)
            kinds.update({"enters"} if not inside[0] else set())
            kinds.update({"leaves"} if gone.any() else set())
            kinds.update({"inside"} if inside.all() else set())
    assert kinds == {"enters", "leaves", "inside"}


def test_exit_clips_start_as_the_shape_leaves_or_after_and_nothing_enters():
    kinds = set()
    for label in range(NUM_CLASSES):
        for k in range(6):
            frames, clip = generate_clip(5, label, k, "train_exit")
            inside, gone = clip.inside(), clip.gone()
            assert frames.shape == (16, 64, 64, 3) and not inside.any()
            assert frames[gone].max(initial=0) == 0 and np.all(np.diff(gone.astype(int)) >= 0)  # gone stays gone
            coverage = frames.max(axis=-1).astype(np.int64).sum(axis=(1, 2))  # (T,)
            assert np.all(np.diff(coverage) <= 0)  # it only shrinks: leaving, never entering
            kinds.add("black" if gone.all() else "leaving")
    assert kinds == {"black", "leaving"}


def test_long_clips_continue_an_ordinary_clip_until_the_shape_has_left():
    for label in range(NUM_CLASSES):
        frames, clip = generate_clip(5, label, 0, "val_long")
        context = sample_clip(np.random.default_rng([5, 3, label, 0]), label)  # the "val_long" generator
        assert frames.shape == (LONG_FRAMES, 64, 64, 3) and clip.inside()[:16].all() and clip.gone()[-1]
        assert np.array_equal(frames[:16], render_clip(context))
        assert np.array_equal(clip.centers()[:16], context.centers())


#################################################################################
#                                 Dataset files                                 #
#################################################################################


def test_dataset_files_csv_and_classes(shapes_dir):
    assert json.loads((shapes_dir / "classes.json").read_text()) == {str(i): n for i, n in enumerate(CLASS_NAMES)}
    for split, per_class in [("train", 3), ("val", 2)]:
        rows = list(csv.DictReader(open(shapes_dir / f"{split}.csv")))
        assert list(rows[0]) == ["path", "label", "shape", "direction"] and len(rows) == 12 * per_class
        for row in rows:
            assert int(row["label"]) == class_id(row["shape"], row["direction"])
            assert (shapes_dir / row["path"]).is_file() and CLASS_NAMES[int(row["label"])] in row["path"]
    # real H.264 files
    import av

    with av.open(str(shapes_dir / rows[0]["path"])) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].frames == 16


def test_dataset_is_deterministic_and_val_is_held_out(shapes_dir, tmp_path):
    # clip k of a class depends only on (seed, split, class, k): a smaller dataset repeats the same files
    make_shapes_dataset(tmp_path, clips_per_class=1, val_clips_per_class=1, seed=11, progress=False)
    for name in ["train/07_square-up/00000.mp4", "val/11_triangle-up/00000.mp4"]:
        assert (tmp_path / name).read_bytes() == (shapes_dir / name).read_bytes(), name
    full_rows = list(csv.DictReader(open(shapes_dir / "train.csv")))
    assert list(csv.DictReader(open(tmp_path / "train.csv"))) == full_rows[::3]
    train = read_video_frames(shapes_dir / "train/07_square-up/00000.mp4", 16, start=0)
    val = read_video_frames(shapes_dir / "val/07_square-up/00000.mp4", 16, start=0)
    assert not np.array_equal(train, val)


def test_long_options_add_windows_and_val_long_and_keep_the_ordinary_clips(shapes_dir, tmp_path):
    args = ["--out", str(tmp_path), "--clips-per-class", "4", "--long-fraction", "0.5", "--seed", "11",
            "--val-long-clips-per-class", "1"]
    assert run_cli(make_shapes.main, args) == 0
    rows = list(csv.DictReader(open(tmp_path / "train.csv")))
    old_rows = list(csv.DictReader(open(shapes_dir / "train.csv")))  # 3 ordinary clips per class, seed 11
    assert [r["path"] for r in rows[:4]] == [f"train/00_circle-right/{name}.mp4" for name in
                                             ("00000", "00001", "window_00000", "window_00001")]
    assert [r for r in rows if "window" not in r["path"]] == [r for i, r in enumerate(old_rows) if i % 3 < 2]
    # the same ordinary clips as without windows
    same = "train/09_triangle-left/00001.mp4"
    assert np.array_equal(*(read_video_frames(folder / same, 16, start=0) for folder in (tmp_path, shapes_dir)))
    long_rows = list(csv.DictReader(open(tmp_path / "val_long.csv")))
    assert len(long_rows) == 12 and list(long_rows[0]) == ["path", "label", "shape", "direction", "context_frames",
                                                           "exit_frame"]
    row = long_rows[7]
    clip = split_clip(11, 7, 0, "val_long")
    frames = read_video_frames(tmp_path / row["path"], LONG_FRAMES, start=0)
    exit_frame = int(row["exit_frame"])
    assert int(row["context_frames"]) == 16 and exit_frame == int(np.argmax(clip.gone()))
    assert frames[exit_frame:].max() < 16 and frames[exit_frame - 1].max() > 16  # gone (H.264 leaves < 16)


def test_exit_fraction_adds_exit_windows_marked_first_k(tmp_path):
    args = ["--out", str(tmp_path), "--clips-per-class", "4", "--long-fraction", "0.25", "--exit-fraction", "0.25",
            "--seed", "11"]
    assert run_cli(make_shapes.main, args) == 0
    rows = list(csv.DictReader(open(tmp_path / "train.csv")))
    assert [(r["path"], r["frame_mask"]) for r in rows[:4]] == [
        ("train/00_circle-right/00000.mp4", ""), ("train/00_circle-right/00001.mp4", ""),
        ("train/00_circle-right/window_00000.mp4", ""), ("train/00_circle-right/exit_00000.mp4", "first_k")]
    bad = ["--out", str(tmp_path / "x"), "--long-fraction", "0.75", "--exit-fraction", "0.5"]
    assert run_cli(make_shapes.main, bad) == 2


def test_mixed_sizes_and_stills_for_buckets(tmp_path):
    # Clip k of each class gets the k-th size in turn; every clip is judged right at its size (the shape moves
    # its class's way, fully inside); stills are frame 0 of an ordinary clip, as PNG.
    args = ["--out", str(tmp_path), "--clips-per-class", "3", "--sizes", "64x64", "48x96", "96x48",
            "--stills-per-class", "2", "--seed", "5"]
    assert run_cli(make_shapes.main, args) == 0
    rows = list(csv.DictReader(open(tmp_path / "train.csv")))
    assert len(rows) == 12 * 5 and rows[3]["path"] == "train/00_circle-right/still_00000.png"
    dataset = VideoClipDataset(tmp_path / "train.csv", num_frames=16, size=64)
    assert dataset.sizes()[:5] == [(16, 64, 64), (16, 48, 96), (16, 96, 48), (1, 64, 64), (1, 48, 96)]
    videos = {}
    for row in rows:
        if row["path"].endswith(".mp4"):
            frames = read_video_frames(tmp_path / row["path"], 16, start=0)  # (T, H, W, 3)
            videos.setdefault(frames.shape[1:3], []).append((frames, int(row["label"])))
    assert sorted(videos) == [(48, 96), (64, 64), (96, 48)]
    for clips in videos.values():
        assert judge_accuracy([f for f, _ in clips], [label for _, label in clips]) == 1.0
    still = np.asarray(Image.open(tmp_path / rows[4]["path"]))
    clip = split_clip(5, 0, 1, "train_still", 1, (48, 96))
    assert still.shape == (48, 96, 3) and np.array_equal(still, render_clip(clip)[0])
    assert run_cli(make_shapes.main, ["--out", str(tmp_path / "x"), "--sizes", "48by96"]) == 2
    assert run_cli(make_shapes.main, ["--out", str(tmp_path / "x"), "--sizes", "64x20"]) == 2  # too small
    assert not (tmp_path / "x").exists()


def test_folder_layout_gives_the_same_class_ids(shapes_dir):
    dataset = VideoClipDataset(shapes_dir / "train", num_frames=2, size=64)
    assert dataset.classes == [f"{i:02d}_{n}" for i, n in enumerate(CLASS_NAMES)]


def test_existing_dataset_is_not_overwritten(tmp_path, capsys):
    assert run_cli(make_shapes.main, ["--out", str(tmp_path), "--clips-per-class", "1", "--seed", "1"]) == 0
    before = (tmp_path / "train.csv").read_bytes()
    assert run_cli(make_shapes.main, ["--out", str(tmp_path), "--clips-per-class", "1", "--seed", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "train.csv").read_bytes() == before
    argv = ["--out", str(tmp_path), "--clips-per-class", "1", "--seed", "2", "--overwrite"]
    assert run_cli(make_shapes.main, argv) == 0
    assert (tmp_path / "train.csv").read_bytes() == before  # same rows (paths and labels) ...
    now = read_video_frames(tmp_path / "train/00_circle-right/00000.mp4", 16, start=0).astype(int)
    assert np.abs(now - generate_clip(2, 0, 0)[0]).mean() < 1.0  # ... but the seed-2 clips
    assert np.abs(now - generate_clip(1, 0, 0)[0]).mean() > 3.0


#################################################################################
#                                    Judge                                      #
#################################################################################


def test_judge_is_accurate_on_clips_read_back_from_mp4(shapes_dir):
    videos, labels = [], []
    for split in ("train", "val"):
        dataset = VideoClipDataset(shapes_dir / f"{split}.csv", num_frames=16, size=(64, 64), start="center")
        for i in range(len(dataset)):
            item = dataset[i]
            videos.append(item["video"])
            labels.append(item["cond"]["y"])
    assert len(videos) == 60 and sorted(set(labels)) == list(range(12))
    assert judge_accuracy(torch.stack(videos), labels) >= 0.98  # float (N, 3, T, H, W) in [-1, 1]
    verdict = judge_clip(videos[0])
    assert verdict["class_name"] == CLASS_NAMES[labels[0]] and verdict["speed"] > 1.4


def test_judge_sees_wrong_labels_as_wrong(shapes_dir):
    frames = read_video_frames(shapes_dir / "train/10_triangle-down/00001.mp4", 16, start=0)
    assert judge_accuracy([frames], [10]) == 1.0
    assert judge_accuracy([frames], [9]) == 0.0  # same shape, other direction
    assert judge_accuracy([frames], [2]) == 0.0  # same direction, other shape


def test_judge_rejects_garbage():
    rng = np.random.default_rng(0)
    clip, _ = generate_clip(0, 0, 0)
    other, _ = generate_clip(0, 5, 1)
    garbage = {
        "noise": rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8),
        "sparse noise": ((rng.random((16, 64, 64, 3)) > 0.97) * 255).astype(np.uint8),
        "black": np.zeros((16, 64, 64, 3), np.uint8),
        "white": np.full((16, 64, 64, 3), 255, np.uint8),
        "static": np.repeat(clip[:1], 16, axis=0),
        "shuffled frames": clip[rng.permutation(16)],
        "two shapes": np.maximum(clip, other),
        "triangle upside down": generate_clip(0, 8, 0)[0][:, ::-1],
    }
    for name, video in garbage.items():
        verdict = judge_clip(video)
        assert verdict["class_id"] is None, name
        assert judge_accuracy([video], [0]) == 0.0 and judge_accuracy([video], [8]) == 0.0
    assert judge_clip(clip)["class_id"] == 0  # the same machinery accepts the clean clip
    noise = torch.rand(6, 3, 16, 64, 64) * 2 - 1
    assert judge_accuracy(noise, list(range(6))) == 0.0


#################################################################################
#                                    Metrics                                    #
#################################################################################


def test_psnr_per_clip():
    a = torch.rand(2, 3, 4, 16, 16) * 0.8
    b = a.clone()
    b[0] += 0.1  # MSE 0.01 -> 20 dB
    out = psnr(a, b)
    assert out.shape == (2,) and abs(out[0].item() - 20.0) < 1e-3 and torch.isinf(out[1])
    assert abs(psnr(a[0], b[0], data_range=2.0).item() - 26.0206) < 1e-3


def test_ssim_per_clip_matches_torchmetrics_per_frame():
    from torchmetrics.functional.image import structural_similarity_index_measure

    a = torch.rand(2, 3, 3, 24, 24)
    b = (a + 0.1 * torch.randn_like(a)).clamp(0, 1)
    out = ssim(a, b)
    assert out.shape == (2,) and torch.all(out < 0.99)
    frames = [structural_similarity_index_measure(a[1, :, t][None], b[1, :, t][None], data_range=1.0) for t in range(3)]
    assert torch.allclose(out[1], torch.stack(frames).mean(), atol=1e-6)
    assert torch.allclose(ssim(a[0], a[0]), torch.tensor(1.0))


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 0.0, 3.0])
    assert frechet_distance(feats, feats) < 1e-8
    # same covariance, shifted mean: the distance is |shift|^2
    assert abs(frechet_distance(feats, feats + shift) - (shift**2).sum()) < 1e-6
    # scaled by 2: covariance 4S, tr(S + 4S - 2 * 2S) = tr(S), plus the squared mean difference
    cov = np.cov(feats, rowvar=False)
    expected = np.trace(cov) + (feats.mean(0) ** 2).sum()
    assert abs(frechet_distance(feats, 2 * feats) - expected) < 1e-6 * expected


def test_frechet_distance_matches_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 5)), rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5)) + 0.3
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
    assert abs(frechet_distance(a, b) - expected) < 1e-8 * max(1.0, expected)
