"""The shapes judge's consistency rules for clips of any length, and its image-to-video check (issue #15).

Real clips are written by the benchmark as H.264 and read back through VideoClipDataset; the broken ones
are made from them the way generators break: split, recoloured, jumping back, reappearing, static.
"""
import dataclasses

import numpy as np
import pytest

from opensora_lite.data.datasets import VideoClipDataset
from opensora_lite.data.shapes import LONG_FRAMES, make_shapes_dataset, render_clip, split_clip
from opensora_lite.data.video_write import to_uint8
from opensora_lite.eval.shapes_judge import judge_accuracy, judge_clip, judge_consistency, judge_image_to_video

SEED = 7
MIN_ACCEPTED = 0.97  # of real clips (issue #15's continuation target is 90% of generated ones)


@pytest.fixture(scope="module")
def shapes_long(tmp_path_factory):
    """4 long validation clips (48 frames) and 2 windows (16 frames) per class, as H.264 MP4s."""
    out = tmp_path_factory.mktemp("shapes_long")
    make_shapes_dataset(out, clips_per_class=2, long_fraction=1.0, val_long_clips_per_class=4, seed=SEED,
                        progress=False)
    return out


def _read(csv_path, num_frames):
    """(clips float (3, T, H, W) in [-1, 1], CSV rows), read the way training and eval read them."""
    dataset = VideoClipDataset(csv_path, num_frames=num_frames, size=(64, 64), start="center")
    return [dataset[i]["video"] for i in range(len(dataset))], dataset.rows


@pytest.fixture(scope="module")
def long_clips(shapes_long):
    return _read(shapes_long / "val_long.csv", LONG_FRAMES)


@pytest.fixture(scope="module")
def one_long(long_clips):
    """uint8 (48, 64, 64, 3) of a real circle moving right (class 0, k = 1: ``split_clip(SEED, 0, 1, "val_long")``),
    and its CSV row."""
    videos, rows = long_clips
    return to_uint8(videos[1]), rows[1]


#################################################################################
#                                  Real clips                                   #
#################################################################################


def test_real_long_clips_are_accepted(long_clips):
    videos, rows = long_clips
    verdicts = [judge_consistency(v, int(r["label"])) for v, r in zip(videos, rows)]
    accepted = [v["ok"] and (v["shape"], v["direction"]) == (r["shape"], r["direction"])
                for v, r in zip(verdicts, rows)]
    assert len(videos) == 48 and np.mean(accepted) >= MIN_ACCEPTED, [v["reasons"] for v in verdicts if not v["ok"]]
    for verdict, row in zip(verdicts, rows):  # the judge sees the shape leave where the generator put it
        assert abs(verdict["exit_frame"] - int(row["exit_frame"])) <= 1
        assert verdict["whole"][: int(row["context_frames"])].all() and not verdict["visible"][-1]


def test_real_windows_that_enter_and_leave_are_accepted(shapes_long):
    videos, rows = _read(shapes_long / "train.csv", 16)
    verdicts = [judge_consistency(v, int(r["label"])) for v, r in zip(videos, rows)]
    assert np.mean([v["ok"] for v in verdicts]) >= MIN_ACCEPTED, [v["reasons"] for v in verdicts if not v["ok"]]
    assert sum(not v["whole"].all() for v in verdicts) >= len(videos) // 2  # most of them cross a border
    labels = [int(r["label"]) for r in rows]
    assert judge_accuracy(videos, labels) >= MIN_ACCEPTED  # the unconditional judge classifies them too


def test_ordinary_clips_are_accepted_by_both_judges(one_long):
    frames, row = one_long
    assert judge_consistency(frames[:16])["ok"] and judge_clip(frames[:16])["class_name"] == "circle-right"
    centroids = judge_consistency(frames)["centroids"]  # (T, 2): steps of the speed while whole
    assert np.allclose(np.diff(centroids[:16, 0]), split_clip(SEED, 0, 1, "val_long").speed, atol=0.1)


#################################################################################
#                                 Broken clips                                  #
#################################################################################


def _broken(frames: np.ndarray, row) -> dict:
    """uint8 (T, H, W, 3) clips made from a real one the way generators break it."""
    exit_frame = int(row["exit_frame"])
    clip = split_clip(SEED, 0, 1, "val_long")
    second = np.roll(frames, 26, axis=1)  # the same shape 26 px lower
    recoloured, jumping, reappearing = frames.copy(), frames.copy(), frames.copy()
    recoloured[10:] = frames[10:, :, :, [1, 2, 0]]  # hue turned by 120 degrees
    jumping[10:] = frames[7:-3]  # falls 3 frames back at frame 10
    reappearing[exit_frame + 2: exit_frame + 8] = frames[:6]  # a shape again where the clip began
    resized = render_clip(dataclasses.replace(clip, radius=clip.radius * 1.3))
    return {
        "split": np.where(np.arange(len(frames))[:, None, None, None] >= 8, np.maximum(frames, second), frames),
        "recoloured": recoloured,
        "jumping": jumping,
        "reappearing": reappearing,
        "static": np.repeat(frames[:1], len(frames), axis=0),
        "vanishing": np.where(np.isin(np.arange(len(frames)), [8, 9])[:, None, None, None], 0, frames),
        "growing": np.concatenate([frames[:12], resized[12:]]),
        "slowing": np.concatenate([frames[:12], render_clip(dataclasses.replace(
            clip, start=tuple(clip.centers()[12]), speed=clip.speed / 2))[:-12]]),
        "black": np.zeros_like(frames),
    }


EXPECTED_REASON = {
    "split": "more than one object",
    "recoloured": "colour changes",
    "jumping": "off a constant-velocity track",
    "reappearing": "after its track has left",
    "static": "static",
    "vanishing": "vanishes",
    "growing": "size changes",
    "slowing": "off a constant-velocity track",
    "black": "no frame shows one whole shape",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_REASON))
def test_broken_clips_are_rejected_for_their_fault(one_long, name):
    frames, row = one_long
    verdict = judge_consistency(_broken(frames, row)[name])
    assert not verdict["ok"] and any(EXPECTED_REASON[name] in r for r in verdict["reasons"]), verdict["reasons"]


def test_wrong_class_is_rejected(one_long):
    frames, _ = one_long
    assert judge_consistency(frames, label=0)["ok"]  # circle-right
    assert any("not the class's left" in r for r in judge_consistency(frames, label=1)["reasons"])
    assert any("not the class's square" in r for r in judge_consistency(frames, label=4)["reasons"])


#################################################################################
#                                Image-to-video                                 #
#################################################################################


def test_image_to_video_keeps_shape_colour_and_start(long_clips):
    videos, rows = long_clips
    video, label = videos[1], int(rows[1]["label"])
    verdict = judge_image_to_video(video, video[:, 0], label)  # float (3, T, H, W) and its first frame (3, H, W)
    assert verdict["ok"] and verdict["start_offset"] < 0.5 and verdict["given_shape"] == "circle"
    frames = to_uint8(video)
    moved = judge_image_to_video(frames, np.roll(frames[0], 3, axis=1), label)  # given 3 px to the right
    assert not moved["ok"] and any("from the given frame's position" in r for r in moved["reasons"])
    recoloured = judge_image_to_video(frames, frames[0, :, :, [2, 0, 1]].transpose(1, 2, 0), label)
    assert not recoloured["ok"] and any("colour" in r for r in recoloured["reasons"])
    square_start = to_uint8(videos[rows.index(next(r for r in rows if r["shape"] == "square"))])[0]
    other = judge_image_to_video(frames, square_start)
    assert not other["ok"] and any("the given frame a square" in r for r in other["reasons"])
    assert not judge_image_to_video(np.zeros_like(frames), frames[0])["ok"]
