"""VideoClipDataset (CSV / folders, bad files, fuzzing) and the latent cache."""
import csv
import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from opensora_lite.data.datasets import LatentCacheDataset, VideoClipDataset, build_latent_cache
from opensora_lite.data.video_read import read_video
from opensora_lite.data.video_write import write_video
from opensora_lite.errors import DataError, UserError
from opensora_lite.registry import DATASETS, build_module

T, H, W = 8, 24, 32  # clip files: 8 frames of 24 x 32


def coloured_clip(label: int, k: int) -> np.ndarray:
    """uint8 (T, H, W, 3): a flat colour identifying (label, k), so a returned clip reveals its file."""
    colour = np.array([40 + 60 * label, 40 + 30 * k, 200 - 40 * label], dtype=np.uint8)
    return np.broadcast_to(colour, (T, H, W, 3)).copy()


def clip_identity(video: torch.Tensor):
    """(label, k) of a clip read back from a coloured_clip file."""
    r, g, _ = ((video + 1) * 127.5).mean(dim=(1, 2, 3)).tolist()
    return round((r - 40) / 60), round((g - 40) / 30)


def write_csv(path, rows, header=("path", "label", "note")):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def corrupt_files(folder, good_path):
    """Four bad videos: empty, truncated MP4, a text file renamed .mp4, random bytes."""
    good = good_path.read_bytes()
    data = {
        "empty.mp4": b"",
        "truncated.mp4": good[: len(good) // 3],
        "text.mp4": b"path,label\nnot,a video\n" * 10,
        "random.mp4": np.random.default_rng(1).bytes(2000),
    }
    for name, content in data.items():
        (folder / name).write_bytes(content)
    return [folder / name for name in data]


@pytest.fixture
def clip_folder(tmp_path):
    """tmp/clips/<b_second|a_first>/<k>.mp4 and tmp/clips.csv (relative paths, extra column)."""
    root = tmp_path / "clips"
    rows = []
    for label, name in enumerate(["a_first", "b_second"]):
        for k in range(3):
            write_video(root / name / f"{k}.mp4", coloured_clip(label, k), quality="near_lossless")
            rows.append((f"clips/{name}/{k}.mp4", label, f"clip {k}"))
    (root / "a_first" / "notes.txt").write_text("not a video extension: ignored")
    write_csv(tmp_path / "clips.csv", rows)
    return tmp_path


@pytest.fixture
def with_bad_files(clip_folder):
    """clips.csv plus four corrupt files: returns (csv path, bad paths)."""
    bad = corrupt_files(clip_folder, clip_folder / "clips/a_first/0.mp4")
    rows = list(csv.reader(open(clip_folder / "clips.csv")))[1:]
    rows += [(p.name, 1, "bad") for p in bad]
    return write_csv(clip_folder / "mixed.csv", rows), bad


#################################################################################
#                                   Sources                                     #
#################################################################################


def test_csv_dataset_resolves_relative_paths_and_returns_items(clip_folder):
    dataset = VideoClipDataset(clip_folder / "clips.csv", num_frames=4, size=(16, 16), start="center")
    assert len(dataset) == 6 and dataset.num_classes == 2
    item = dataset[4]
    assert item["video"].shape == (3, 4, 16, 16) and item["video"].dtype == torch.float32
    assert item["cond"]["y"] == 1 and item["index"] == 4
    assert clip_identity(item["video"]) == (1, 1)
    assert dataset.rows[4]["note"] == "clip 1"  # extra columns are kept


def test_folder_dataset_sorts_classes_by_name(clip_folder):
    dataset = VideoClipDataset(clip_folder / "clips", num_frames=2, size=16)
    assert dataset.classes == ["a_first", "b_second"]
    assert len(dataset) == 6  # notes.txt is not a video
    for i in range(len(dataset)):
        item = dataset[i]
        assert clip_identity(item["video"])[0] == item["cond"]["y"] == (0 if "a_first" in str(dataset.paths[i]) else 1)


def test_built_from_the_registry(clip_folder):
    assert DATASETS.get("VideoClipDataset") is VideoClipDataset
    assert DATASETS.get("LatentCacheDataset") is LatentCacheDataset
    dataset = build_module(dict(type="VideoClipDataset", source=str(clip_folder / "clips.csv"), num_frames=2), DATASETS)
    assert isinstance(dataset, VideoClipDataset) and len(dataset) == 6


@pytest.mark.parametrize(
    "rows, header, message",
    [
        ([("a.mp4", 0)], ("path", "class"), "label"),
        ([("a.mp4", "cat")], ("path", "label"), "integer"),
        ([], ("path", "label"), "no rows"),
    ],
)
def test_bad_csv_is_a_data_error(tmp_path, rows, header, message):
    path = write_csv(tmp_path / "x.csv", rows, header)
    with pytest.raises(DataError, match=message):
        VideoClipDataset(path)


def test_missing_source_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no such"):
        VideoClipDataset(tmp_path / "nope.csv")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataError, match="no videos"):
        VideoClipDataset(tmp_path)


def test_small_dataset_still_gives_a_batch(clip_folder):
    dataset = VideoClipDataset(clip_folder / "clips.csv", num_frames=2, size=8)
    batches = list(DataLoader(dataset, batch_size=16, drop_last=False))
    assert len(batches) == 1 and batches[0]["video"].shape == (6, 3, 2, 8, 8)


def test_random_start_depends_on_seed_index_and_epoch(tmp_path):
    frames = np.broadcast_to((8 + 10 * np.arange(24))[:, None, None, None], (24, 16, 16, 3)).astype(np.uint8)
    write_video(tmp_path / "v" / "c" / "long.mp4", frames)
    first_frame = lambda d: round((((d[0]["video"][:, 0] + 1) * 127.5).mean().item() - 8) / 10)  # noqa: E731
    a = VideoClipDataset(tmp_path / "v", num_frames=4, size=16, start="random", seed=3)
    b = VideoClipDataset(tmp_path / "v", num_frames=4, size=16, start="random", seed=3)
    assert torch.equal(a[0]["video"], b[0]["video"])
    starts = set()
    for epoch in range(8):
        a.set_epoch(epoch)
        starts.add(first_frame(a))
    assert len(starts) > 2 and max(starts) <= 20


#################################################################################
#                                   Bad files                                   #
#################################################################################


def test_bad_files_are_skipped_counted_and_reported_once(with_bad_files, caplog):
    csv_path, bad = with_bad_files
    dataset = VideoClipDataset(csv_path, num_frames=4, size=16, start="center", seed=0)
    assert len(dataset) == 10
    with caplog.at_level(logging.WARNING, logger="opensora_lite.data.datasets"):
        for _ in range(2):  # two epochs: still one warning per bad file
            for i in range(len(dataset)):
                item = dataset[i]
                assert item["index"] < 6  # a good clip, never a placeholder
                label, k = clip_identity(item["video"])
                assert label == item["cond"]["y"] == dataset.labels[item["index"]] and k == item["index"] % 3
                assert item["video"].std() > 0 or item["video"].abs().max() > 0.1
    assert sorted(dataset.bad_files) == sorted(str(p) for p in bad)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert all(any(p.name in r.getMessage() for r in warnings) for p in bad)


def test_replacement_is_deterministic_given_index_and_seed(with_bad_files):
    csv_path, _ = with_bad_files
    replacements = []
    for _ in range(2):
        dataset = VideoClipDataset(csv_path, num_frames=2, size=8, seed=5)
        replacements.append([dataset[i]["index"] for i in (9, 6, 8, 7)])
    assert replacements[0] == replacements[1]
    dataset = VideoClipDataset(csv_path, num_frames=2, size=8, seed=5)
    dataset[6], dataset[7]  # discovering other bad files first must not change the answer for 9
    assert dataset[9]["index"] == replacements[0][0]


def test_all_bad_files_raise_data_error(tmp_path, clip_folder):
    bad = corrupt_files(tmp_path, clip_folder / "clips/a_first/0.mp4")
    csv_path = write_csv(tmp_path / "bad.csv", [(p.name, 0, "") for p in bad])
    dataset = VideoClipDataset(csv_path, num_frames=2)
    with pytest.raises(DataError, match="every one of the 4"):
        dataset[0]
    assert len(dataset.bad_files) == 4
    with pytest.raises(DataError, match="every one of the 4"):
        VideoClipDataset(csv_path, num_frames=2, check_files=True)


def test_check_files_drops_bad_files_with_one_warning(with_bad_files, caplog):
    csv_path, bad = with_bad_files
    with caplog.at_level(logging.WARNING, logger="opensora_lite.data.datasets"):
        dataset = VideoClipDataset(csv_path, num_frames=2, size=8, check_files=True)
    assert len(dataset) == 6 and len(dataset.rows) == 6
    assert sorted(dataset.bad_files) == sorted(str(p) for p in bad)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert [dataset[i]["index"] for i in range(6)] == list(range(6))


@pytest.mark.parametrize("backend", ["av", "decord"])
def test_check_files_keeps_stills_and_drops_a_broken_image(tmp_path, clip_folder, backend):
    """Stills are read with PIL whatever the video backend (decord cannot open a PNG), and one frame is never too
    short for short_policy="error"; a truncated PNG is a bad file like a broken video."""
    from PIL import Image

    Image.fromarray(np.full((12, 20, 3), 200, np.uint8)).save(tmp_path / "still.png")
    (tmp_path / "broken.png").write_bytes((tmp_path / "still.png").read_bytes()[:40])
    video = clip_folder / "clips/a_first/0.mp4"
    csv_path = write_csv(tmp_path / "mixed.csv", [(str(video), 0, ""), ("still.png", 1, ""), ("broken.png", 1, "")])
    dataset = VideoClipDataset(csv_path, num_frames=2, size=8, backend=backend, short_policy="error",
                               check_files=True)
    assert dataset.bad_files == [str(tmp_path / "broken.png")]
    assert [p.name for p in dataset.paths] == ["0.mp4", "still.png"]
    assert dataset[1]["video"].shape == (3, 1, 8, 8)


def test_too_short_files_follow_the_short_policy(clip_folder):
    with pytest.raises(DataError, match="every one"):  # 8-frame files, 12 needed
        VideoClipDataset(clip_folder / "clips.csv", num_frames=12, short_policy="error", check_files=True)
    looped = VideoClipDataset(clip_folder / "clips.csv", num_frames=12, short_policy="loop", size=8)
    assert looped[0]["video"].shape[1] == 12


@pytest.mark.parametrize("backend", ["av", "decord"])
def test_fuzzed_files_never_crash(tmp_path, clip_folder, backend):
    """20 seeded cases of random bytes, truncations and byte flips: only DataError or a valid clip."""
    rng = np.random.default_rng(1234)
    good_path = clip_folder / "clips/b_second/2.mp4"
    good = good_path.read_bytes()
    for case in range(20):
        kind = case % 3
        if kind == 0:
            data = rng.bytes(int(rng.integers(1, 3000)))
        elif kind == 1:
            data = good[: int(rng.integers(1, len(good)))]
        else:
            data = bytearray(good)
            for _ in range(int(rng.integers(1, 30))):
                data[int(rng.integers(len(data)))] = int(rng.integers(256))
            data = bytes(data)
        path = tmp_path / f"fuzz{case}.mp4"
        path.write_bytes(data)
        try:
            video = read_video(path, 4, size=(8, 8), backend=backend)
            assert video.shape == (3, 4, 8, 8) and torch.isfinite(video).all()
        except DataError as e:
            assert path.name in str(e)
        pair = write_csv(tmp_path / "f.csv", [(path.name, 0, ""), (str(good_path), 1, "")])
        dataset = VideoClipDataset(pair, num_frames=4, size=8, backend=backend)
        item = dataset[0]
        assert item["video"].shape == (3, 4, 8, 8)
        assert item["index"] == 0 or (item["index"] == 1 and dataset.bad_files == [str(path)])


#################################################################################
#                                 Latent cache                                  #
#################################################################################


def fake_encode(video: torch.Tensor) -> torch.Tensor:
    """(N, 3, T, H, W) -> (N, 4, T/2, H/4, W/4): a stand-in VAE."""
    pooled = torch.nn.functional.avg_pool3d(video, (2, 4, 4))
    return torch.cat([pooled, pooled.mean(dim=1, keepdim=True)], dim=1)


def test_latent_cache_round_trip(clip_folder, tmp_path):
    dataset = VideoClipDataset(clip_folder / "clips.csv", num_frames=4, size=16, start="center")
    path = build_latent_cache(
        dataset, fake_encode, tmp_path / "cache.safetensors", meta={"vae": "abc123"}, batch_size=4, progress=False
    )
    cache = LatentCacheDataset(path)
    assert len(cache) == 6 and cache.latents.shape == (6, 4, 2, 4, 4)
    for i in range(6):
        item = cache[i]
        expected = fake_encode(dataset[i]["video"][None])[0]
        assert torch.allclose(item["latent"], expected, atol=1e-6) and item["cond"]["y"] == dataset.labels[i]
    assert cache.meta["vae"] == "abc123" and cache.meta["num_frames"] == 4 and cache.meta["size"] == [16, 16]
    cache.check_compatible({"vae": "abc123", "num_frames": 4, "size": (16, 16)})  # tuples equal lists
    with pytest.raises(DataError, match="vae"):
        cache.check_compatible({"vae": "other", "num_frames": 4})
    with pytest.raises(DataError, match="missing"):
        cache.check_compatible({"latent_scale": 0.18215})
    with pytest.raises(FileExistsError):
        build_latent_cache(dataset, fake_encode, path, progress=False)


def test_video_dataset_reads_a_matching_latent_cache(clip_folder, tmp_path):
    dataset = VideoClipDataset(clip_folder / "clips.csv", num_frames=4, size=16, start="center")
    path = build_latent_cache(dataset, fake_encode, tmp_path / "c.safetensors", meta={"vae": "x"}, progress=False)
    cached = VideoClipDataset(clip_folder / "clips.csv", num_frames=4, size=16, latent_cache=path)
    assert cached[3]["latent"].shape == (4, 2, 4, 4) and cached[3]["cond"]["y"] == 1 and "video" not in cached[3]
    with pytest.raises(DataError, match="num_frames"):
        VideoClipDataset(clip_folder / "clips.csv", num_frames=8, size=16, latent_cache=path)


def test_unreadable_latent_cache_is_a_data_error(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(DataError, match="junk"):
        LatentCacheDataset(tmp_path / "junk.safetensors")
    with pytest.raises(DataError, match="no such"):
        LatentCacheDataset(tmp_path / "none.safetensors")


def test_start_must_be_known(clip_folder):
    with pytest.raises(UserError):
        VideoClipDataset(clip_folder / "clips.csv", start="middle")
