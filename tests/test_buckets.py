"""Buckets of resolution, frames and aspect ratio (issue #26): assignment, no zero batches, deterministic batches."""
import pytest

from opensora_lite.data.buckets import Bucket, BucketAssigner, BucketBatchSampler, bucket_table
from opensora_lite.errors import ConfigError, DataError

CONFIG = {"144p": {1: (1.0, 4), 17: (1.0, 2)}, "240p": {17: (1.0, 2), 51: (1.0, 2)}}


def test_a_clip_goes_to_the_largest_bucket_it_fits():
    a = BucketAssigner(CONFIG)
    assert a.assign(0, 60, 240, 426, 0, 0) == Bucket("240p", 51, "0.56")  # a 240p landscape clip of 60 frames
    assert a.assign(0, 20, 240, 426, 0, 0) == Bucket("240p", 17, "0.56")  # too short for 51
    assert a.assign(0, 60, 160, 284, 0, 0) == Bucket("144p", 17, "0.56")  # below 240p's pixels
    assert a.assign(0, 60, 426, 240, 0, 0) == Bucket("240p", 51, "1.78")  # portrait: its own ratio
    assert a.assign(0, 1, 480, 480, 0, 0) == Bucket("144p", 1, "1.00")  # images go to 1-frame buckets only
    assert a.assign(0, 10, 480, 480, 0, 0) is None  # shorter than every video bucket
    assert a.assign(0, 60, 64, 64, 0, 0) is None  # smaller than every resolution
    assert Bucket("240p", 51, "0.56").size == (240, 426)


def test_probability_is_per_clip_and_epoch_and_reproducible():
    a = BucketAssigner({"240p": {17: (0.5, 1)}, "144p": {17: (1.0, 1)}})
    first = [a.assign(i, 17, 240, 426, seed=0, epoch=0).resolution for i in range(400)]
    assert 0.4 < first.count("240p") / 400 < 0.6  # about half stay, the rest fall to 144p
    assert first == [a.assign(i, 17, 240, 426, seed=0, epoch=0).resolution for i in range(400)]
    assert first != [a.assign(i, 17, 240, 426, seed=0, epoch=1).resolution for i in range(400)]


def test_no_zero_batches_small_buckets_merge_or_drop():
    a = BucketAssigner({"240p": {17: (1.0, 4)}, "144p": {17: (1.0, 2), 1: (1.0, 8)}})
    sizes = [(17, 240, 426)] * 3 + [(17, 144, 256)] * 2 + [(1, 200, 200)] * 3 + [(5, 200, 200)]
    plan = a.plan(sizes)
    # three 240p clips cannot fill a batch of 4: they join the 144p 17-frame bucket of their ratio
    assert plan.merged[Bucket("240p", 17, "0.56")] == Bucket("144p", 17, "0.56")
    assert plan.clips[Bucket("144p", 17, "0.56")] == [0, 1, 2, 3, 4]
    assert plan.merged[Bucket("144p", 1, "1.00")] is None  # 3 images for a batch of 8, nothing smaller: dropped
    assert plan.unfit == [5, 6, 7, 8]
    table = bucket_table(plan)
    assert "| 144p 17f 144x256 | 5 | 3 | 2 | 100% |" in table
    assert "240p 17f 240x426: too few clips for one batch, merged into 144p 17f 144x256" in table
    assert "144p 1f 192x192: too few clips for one batch, dropped" in table


def test_token_budget_sets_batch_sizes():
    tokens = {17: 100, 1: 10}
    a = BucketAssigner({"144p": {1: (1.0, None), 17: (1.0, None)}}, batch_tokens=400,
                       tokens=lambda b: tokens[b.frames], world_size=2)
    assert a.batch_size(Bucket("144p", 17, "0.56")) == 4 and a.batch_size(Bucket("144p", 1, "0.56")) == 40
    with pytest.raises(ConfigError, match="no batch size for 144p 17f"):
        BucketAssigner({"144p": {17: (1.0, None)}})


def sizes_mixed():
    return [(17 + i % 40, 240, 426) if i % 3 else (1, 320, 320) for i in range(60)] + [(20, 426, 240)] * 10


def test_every_fitting_clip_once_an_epoch_and_batches_are_one_bucket():
    config = {"240p": {17: (1.0, 4), 51: (1.0, 2)}, "144p": {1: (1.0, 8)}}
    sampler = BucketBatchSampler(sizes_mixed(), BucketAssigner(config), seed=3, num_steps=0)
    batches = sampler.epoch_batches(0)
    seen = [c for _, clips in batches for c in clips]
    assert set(seen) == set(range(70))  # all clips fit, all are used
    assert len(seen) - len(set(seen)) < 4 * 4  # only last batches are filled up
    for bucket, clips in batches:
        assert len(clips) == config[bucket.resolution][bucket.frames][1]
        assert all(sampler.assigner.assign(c, *sampler.sizes[c], 3, 0) == bucket for c in clips)


def test_resume_and_two_processes_equal_one():
    config = {"240p": {17: (1.0, 4), 51: (1.0, 2)}, "144p": {1: (1.0, 8)}}
    one = BucketBatchSampler(sizes_mixed(), BucketAssigner(config), seed=1, num_steps=40)
    steps = list(one)  # 40 steps: several epochs
    resumed = BucketBatchSampler(sizes_mixed(), BucketAssigner(config), seed=1, start_step=25, num_steps=15)
    assert list(resumed) == steps[25:]
    ranks = [list(BucketBatchSampler(sizes_mixed(), BucketAssigner(config, world_size=2), rank=r, world_size=2,
                                     seed=1, num_steps=40)) for r in (0, 1)]
    assert [a + b for a, b in zip(*ranks)] == steps


def test_nothing_fits_is_one_clear_error():
    with pytest.raises(DataError, match="no bucket holds enough clips"):
        BucketBatchSampler([(17, 64, 64)] * 4, BucketAssigner({"144p": {17: (1.0, 2)}}))
    with pytest.raises(ConfigError, match="unknown resolution '100p'"):
        BucketAssigner({"100p": {17: (1.0, 2)}})
    with pytest.raises(ConfigError, match=r"probability must be in \(0, 1\]"):
        BucketAssigner({"144p": {17: (1.5, 2)}})


def test_small_models_name_a_square_side():
    from opensora_lite.aspect import image_size, pixels

    assert pixels("64px") == 4096 and image_size("64px", "1:1") == (64, 64)
    assert image_size("64px", "1:2") == (48, 96) and image_size("64px", "2:1") == (96, 48)
    a = BucketAssigner({"64px": {17: (1.0, 2)}})
    assert a.assign(0, 20, 60, 120, 0, 0) == Bucket("64px", 17, "0.50")  # 60x120 (7,200 px) -> 48x96
    assert a.assign(0, 20, 40, 40, 0, 0) is None  # under 64x64
    with pytest.raises(ConfigError, match="or <N>px"):
        BucketAssigner({"8px": {17: (1.0, 2)}})
