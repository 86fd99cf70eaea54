"""Frame conditions: given latent frames are clean in the model, held in every sampler, masked in training."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from opensora_lite.data import LatentCacheDataset, VideoClipDataset, build_latent_cache
from opensora_lite.data.shapes import make_shapes_dataset
from opensora_lite.data.video_write import write_video
from opensora_lite.errors import ConfigError, DataError
from opensora_lite.inference.frame_plan import Window
from opensora_lite.models import STDiT
from opensora_lite.schedulers import IDDPM, GivenFrames, RectifiedFlow
from opensora_lite.schedulers.settings import SamplingSettings
from opensora_lite.training.frame_masks import KINDS, FrameMaskSampler

from helpers import ROOT, run, write_config, write_latent_cache

TOOL = "generate"  # the command the tool fixture runs

FRAMES_MODEL = str(ROOT / "configs" / "shapes" / "stdit_shapes_frames.py")  # the frame-masked model (aligned windows)


def tiny_model(learn_sigma=False) -> STDiT:
    torch.manual_seed(0)
    model = STDiT(input_size=(4, 8, 8), patch_size=(1, 2, 2), in_channels=4, hidden_size=32, depth=2, num_heads=2,
                  num_classes=3, learn_sigma=learn_sigma)
    for p in model.parameters():  # adaLN-Zero starts as the identity: randomize so every path matters
        torch.nn.init.normal_(p, std=0.05)
    return model.eval()


def given_frames(n=2, t=4, k=1) -> GivenFrames:
    latents = torch.randn(n, 4, t, 8, 8, generator=torch.Generator().manual_seed(3))
    mask = torch.ones(n, t, dtype=torch.bool)
    mask[:, :k] = False
    return GivenFrames(latents, mask)


#################################################################################
#                                    Model                                      #
#################################################################################

def test_no_condition_is_bit_identical_to_the_unconditioned_model():
    model = tiny_model()
    x, t, y = torch.randn(2, 4, 4, 8, 8), torch.tensor([10.0, 900.0]), torch.tensor([0, 2])
    with torch.no_grad():
        plain = model(x, t, y)
        all_noised = model(x, t, y, frame_mask=torch.ones(2, 4, dtype=torch.bool))
    assert torch.equal(plain, all_noised)


def test_given_frames_are_modulated_with_t_zero():
    model = tiny_model()
    x, t, y = torch.randn(1, 4, 4, 8, 8), torch.tensor([700.0]), torch.tensor([1])
    mask = torch.tensor([[False, True, True, True]])
    with torch.no_grad():
        conditioned = model(x, t, y, frame_mask=mask)
        plain = model(x, t, y)
        all_clean = model(x, t, y, frame_mask=torch.zeros(1, 4, dtype=torch.bool))
        at_zero = model(x, torch.zeros(1), y)
    assert not torch.allclose(conditioned, plain, atol=1e-4)  # the model sees which frame is clean
    torch.testing.assert_close(all_clean, at_zero, atol=1e-5, rtol=1e-5)  # every frame given = every frame at t=0


def test_a_wrong_frame_mask_is_refused():
    with pytest.raises(ValueError, match="frame_mask must be"):
        tiny_model()(torch.randn(1, 4, 4, 8, 8), torch.ones(1), torch.tensor([0]), frame_mask=torch.ones(1, 3).bool())


#################################################################################
#                                   Samplers                                    #
#################################################################################

class MaskRecorder(torch.nn.Module):
    """A network that records the frame masks it is called with."""

    def __init__(self, model):
        super().__init__()
        self.model, self.masks = model, []

    def forward(self, x, t, y, frame_mask=None):
        self.masks.append(frame_mask)
        return self.model(x, t, y, frame_mask=frame_mask)

    def null_cond(self, cond):
        return self.model.null_cond(cond)


@pytest.mark.parametrize("scheduler, sampler", [(RectifiedFlow(num_sampling_steps=3), "euler"),
                                                (RectifiedFlow(num_sampling_steps=3), "heun"),
                                                (IDDPM(num_sampling_steps=3), "ddim"),
                                                (IDDPM(num_sampling_steps=3), "ddpm")])
def test_given_frames_are_held_in_every_sampler_and_both_guidance_branches(scheduler, sampler):
    learn_sigma = isinstance(scheduler, IDDPM)
    net = MaskRecorder(tiny_model(learn_sigma))
    given = given_frames(k=2)
    z = torch.randn(2, 4, 4, 8, 8)
    out = scheduler.sample(net, z, dict(y=torch.tensor([0, 1])), SamplingSettings(cfg_scale=3.0, progress=False,
                           sampler=sampler), generator=torch.Generator().manual_seed(0), given=given)
    assert torch.equal(out[:, :, :2], given.latents[:, :, :2])  # exactly the given latents
    assert not torch.allclose(out[:, :, 2:], z[:, :, 2:])  # the rest was generated
    assert net.masks and all(torch.equal(m, torch.cat([given.mask, given.mask])) for m in net.masks)


#################################################################################
#                                   Training                                    #
#################################################################################

def test_frame_masks_follow_their_probabilities_and_kinds():
    sampler = FrameMaskSampler(dict(none=0.2, first=0.3, first_k=0.3, last_k=0.2, max_k=3))
    masks = sampler.masks(sampler.draw(4000, 9, torch.Generator().manual_seed(0)), 9)  # (n, T) True = generated
    given = ~masks
    none = ~given.any(1)
    first_only = given[:, 0] & (given.sum(1) == 1)
    prefix = given[:, 0] & (given.sum(1) > 1)
    suffix = given[:, -1] & ~given[:, 0]
    assert abs(none.float().mean() - 0.2) < 0.03
    assert given.sum(1).max() <= 3 and masks.any(1).all()  # never more than max_k given, never all
    assert (none | first_only | prefix | suffix).all()
    for rows in (prefix, suffix):  # contiguous runs at the start / the end
        k = given[rows].sum(1)
        expect = torch.arange(9)[None] < k[:, None]
        assert torch.equal(given[rows] if rows is prefix else given[rows].flip(1), expect)
    assert FrameMaskSampler(None).draw(4, 9, torch.Generator()) is None


def test_a_clip_with_its_own_kind_keeps_it_and_the_others_keep_their_draw():
    sampler = FrameMaskSampler(dict(none=0.5, first=0.5, max_k=4))  # never first_k when drawn
    draws = sampler.draw(200, 9, torch.Generator().manual_seed(0))  # (n, 2) kind, k
    forced = torch.full((200,), -1)
    forced[::2] = KINDS.index("first_k")
    masks = sampler.masks(draws, 9, forced)
    given = ~masks
    k = draws[::2, 1]
    assert torch.equal(given[::2], torch.arange(9)[None] < k[:, None])  # the first k, k as drawn
    assert len(set(k.tolist())) == 4
    assert torch.equal(masks[1::2], sampler.masks(draws, 9)[1::2])  # the rest as drawn
    assert torch.equal(sampler.draw(200, 9, torch.Generator().manual_seed(0)), draws)  # the stream is the data's


def write_rows(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_the_frame_mask_column_reaches_the_items_and_the_latent_cache(tmp_path):
    make_shapes_dataset(tmp_path / "d", clips_per_class=4, long_fraction=0.25, exit_fraction=0.5, seed=0,
                        progress=False)
    rows = list(csv.DictReader(open(tmp_path / "d" / "train.csv")))
    exits = [i for i, row in enumerate(rows) if "/exit_" in row["path"]]
    assert len(exits) == 24 and all(rows[i]["frame_mask"] == "first_k" for i in exits)
    assert all(row["frame_mask"] == "" for i, row in enumerate(rows) if i not in exits)
    dataset = VideoClipDataset(tmp_path / "d" / "train.csv", start="center")
    expect = torch.tensor([KINDS.index("first_k") if i in exits else -1 for i in range(len(rows))])
    assert torch.equal(dataset.frame_mask_kinds, expect) and dataset[exits[0]]["frame_mask"] == 2
    cache = build_latent_cache(dataset, lambda v: v[:, :2, ::4, ::8, ::8], tmp_path / "c.safetensors",
                               progress=False)
    latents = LatentCacheDataset(cache)
    assert torch.equal(latents.frame_mask_kinds, expect) and latents[exits[0]]["frame_mask"] == 2
    rows[0]["frame_mask"] = "first_k"  # the CSV changed since the cache was built
    write_rows(tmp_path / "d" / "train.csv", rows)
    with pytest.raises(DataError, match="frame_mask column differs"):
        latents.check_same_clips(VideoClipDataset(tmp_path / "d" / "train.csv"))
    rows[0]["frame_mask"] = "middle"
    write_rows(tmp_path / "d" / "train.csv", rows)
    with pytest.raises(DataError, match=r"train.csv:2: frame_mask must be one of none, first, first_k, last_k"):
        VideoClipDataset(tmp_path / "d" / "train.csv")


@pytest.mark.parametrize("settings, message", [(dict(none=0.5, first=0.2), "sum to 1"),
                                               (dict(none=1.0, middle=0.0), "unknown key"),
                                               (dict(none=1.0, max_k=0), "max_k"), ([0.5, 0.5], "dict")])
def test_bad_frame_mask_settings_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        FrameMaskSampler(settings)


def test_masked_frames_carry_no_loss_in_iddpm():
    x0, noise = torch.randn(2, 4, 3, 4, 4), torch.randn(2, 4, 3, 4, 4)
    mask = torch.tensor([[False, True, True], [True, True, True]])
    seen = []

    def model(x, t, frame_mask=None):
        seen.append((x, frame_mask))
        return torch.zeros(x.shape[0], 8, *x.shape[2:])

    diffusion = IDDPM()
    t = torch.tensor([500, 500])
    a = diffusion.training_losses(model, x0, {}, t=t, noise=noise, mask=mask)["loss"]
    noise2 = noise.clone()
    noise2[0, :, 0] += 1.0  # only the given frame's target changes
    b = diffusion.training_losses(model, x0, {}, t=t, noise=noise2, mask=mask)["loss"]
    torch.testing.assert_close(a, b)
    assert torch.equal(seen[0][0][0, :, 0], x0[0, :, 0]) and torch.equal(seen[0][1], mask)


#################################################################################
#                               Pipeline and CLI                                #
#################################################################################

@pytest.fixture(scope="module")
def pipe():
    from opensora_lite import VideoPipeline

    return VideoPipeline.from_config(FRAMES_MODEL)


def test_image_to_video_starts_from_the_image_within_the_vae_round_trip(pipe):
    real = pipe(classes=[5], num_frames=17, steps=4, progress=False).videos[0]  # (3, T, H, W): frame 0 comes from it
    image = real[:, 0]
    out = pipe(classes=[5, 5], num_frames=16, first_frame=image, steps=4, seed=3, progress=False)
    assert out.videos.shape == (2, 3, 16, 64, 64) and out.given[:, 0].all() and not out.given[:, 1:].any()
    with torch.no_grad():
        round_trip = pipe.decode(pipe.encode(image[None, :, None]), 1)[0, :, 0]  # the image through the VAE alone
    vae_error = (round_trip - image).abs().mean()
    for video in out.videos:  # frame 0 is the image, as far as the VAE can give it back (measured 0.047 vs 0.041)
        assert (video[:, 0] - image).abs().mean() < 1.5 * vae_error + 0.01
    assert not torch.allclose(out.videos[0], out.videos[1], atol=0.05)  # seeds still differ after frame 0


def test_extend_keeps_the_real_frames_and_adds_windows(pipe):
    clip = pipe(classes=[2], num_frames=16, steps=2, progress=False).videos[0]  # (3, 16, H, W)
    out = pipe(classes=[2], extend=clip, num_frames=33, steps=2, progress=False)
    assert out.videos.shape == (1, 3, 33, 64, 64)
    assert torch.equal(out.videos[0, :, :16], clip)  # the given clip comes first, untouched
    assert out.given[0, :16].all() and not out.given[0, 16:].any()
    assert torch.isfinite(out.videos).all()


def test_long_videos_are_made_window_by_window(pipe, monkeypatch):
    plan = pipe.frame_plan(40)
    # 17 frames, then windows of 17 frames given 9 and adding 8: 17 + 8 + 8 + 8 >= 40
    assert plan.windows == (Window(17, 0, 0), Window(17, 9, 9), Window(17, 9, 9), Window(17, 9, 9))
    windows = []
    real_sample = pipe.scheduler.sample

    def counting(model, z, cond, settings=None, **kwargs):
        given = kwargs["given"]
        windows.append((z.shape[2], 0 if given is None else int((~given.mask).sum(1).max())))  # latent frames given
        return real_sample(model, z, cond, settings, **kwargs)

    monkeypatch.setattr(pipe.scheduler, "sample", counting)
    out = pipe(classes=[0], num_frames=40, steps=2, progress=False)
    assert out.videos.shape == (1, 3, 40, 64, 64)
    # every window after the first is given the full overlap (5 latent frames), also when it spans two windows
    assert windows == [(9, 0), (9, 5), (9, 5), (9, 5)]


def test_a_first_frame_file_is_read_upright_in_any_dataset_image_format(tmp_path):
    from opensora_lite.inference.conditions import load_image

    pixels = np.zeros((32, 64, 3), np.uint8)  # (H, W, 3): landscape, white on the left
    pixels[:, :32] = 255
    Image.fromarray(pixels).save(tmp_path / "plain.webp", lossless=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown turned 90 degrees clockwise: portrait, white on top
    Image.fromarray(pixels).save(tmp_path / "turned.jpg", exif=exif, quality=100)
    plain, turned = load_image(tmp_path / "plain.webp", (32, 32)), load_image(tmp_path / "turned.jpg", (32, 32))
    assert plain[:, :, :16].mean() > 0.9 and plain[:, :, 16:].mean() < -0.9  # (3, H, W): left half white
    assert turned[:, :16].mean() > 0.9 and turned[:, 16:].mean() < -0.9  # top half white


def test_windows_with_given_frames_take_their_own_guidance(pipe, monkeypatch):
    scales = []  # the guidance of each window, and whether it had given frames
    real_sample = pipe.scheduler.sample

    def recording(model, z, cond, settings=None, **kwargs):
        scales.append((settings.cfg_scale, kwargs["given"] is not None))
        return real_sample(model, z, cond, settings, **kwargs)

    monkeypatch.setattr(pipe.scheduler, "sample", recording)
    pipe(classes=[0], num_frames=30, steps=1, cfg_scale=3.0, given_cfg_scale=1.5, progress=False)
    assert scales == [(3.0, False), (1.5, True), (1.5, True)]
    scales.clear()
    monkeypatch.setattr(pipe, "given_cfg_scale", 2.0)  # the config's inference.given_cfg_scale
    pipe(classes=[0], num_frames=8, first_frame=-torch.ones(3, 64, 64), steps=1, cfg_scale=3.0, progress=False)
    pipe(classes=[0], num_frames=8, steps=1, cfg_scale=3.0, progress=False)
    assert scales == [(2.0, True), (3.0, False)]
    with pytest.raises(ConfigError, match="cfg_scale must be a finite number"):
        pipe(classes=[0], num_frames=8, steps=1, given_cfg_scale=float("nan"), progress=False)


def test_windows_carry_per_frame_latents_not_pixels(pipe, monkeypatch):
    vae = pipe.vae  # why (docs/conditioning.md): each 2-D round trip of a made frame adds to its drift
    encoded = []  # pixels are encoded once (the clip's overlap), made frames never
    real_encode = vae.image_encode
    monkeypatch.setattr(vae, "image_encode", lambda x: encoded.append(x.shape[2]) or real_encode(x))
    out = pipe(classes=[0], extend=-torch.ones(3, 16, 64, 64), num_frames=40, steps=2, progress=False)
    assert out.videos.shape == (1, 3, 40, 64, 64) and encoded == [9]


def test_bad_conditions_are_one_line_exit_2(tool, capsys, tmp_path):
    not_an_image = tmp_path / "broken.png"
    not_an_image.write_bytes(b"not a png")
    short = tmp_path / "short.mp4"
    write_video(short, np.zeros((4, 64, 64, 3), np.uint8))
    thin = tmp_path / "thin.png"
    Image.new("RGB", (4000, 2)).save(thin)
    cases = [
        (("--first-frame", not_an_image), "cannot read the image"),
        (("--extend", short, "--frames", 40), "fewer than the 9"),
        (("--first-frame", thin), "aspect"),
        (("--first-frame", thin, "--extend", short), "exclude each other"),
        (("--first-frame", tmp_path / "missing.png"), "no such file"),
    ]
    for args, message in cases:
        code, _, err = run(tool, capsys, FRAMES_MODEL, "--class", 1, "--steps", 1, "--save-dir", tmp_path / "out",
                           "--no-progress", *args)
        assert code == 2 and len(err) == 1 and message in err[0], (args, err)


class RecordingFlow(RectifiedFlow):
    """Rectified flow that remembers the clip (its latents' first value) and the mask of every training row."""

    seen = []

    def training_losses(self, model, x0, cond, t=None, noise=None, mask=None):
        RecordingFlow.seen += list(zip(x0[:, 0, 0, 0, 0].tolist(), mask.tolist()))
        return super().training_losses(model, x0, cond, t=t, noise=noise, mask=mask)


def test_training_gives_a_clip_its_own_frame_mask_and_refuses_one_without_train_frame_mask(tmp_path,
                                                                                          in_process_group):
    from opensora_lite.config import load_config
    from opensora_lite.registry import SCHEDULERS
    from opensora_lite.training.train_loop import train

    SCHEDULERS.register_module(name="test_recording_rflow", module=RecordingFlow, force=True)
    cache = write_latent_cache(tmp_path / "latents.safetensors", first_k_every=2)
    tensors = load_file(str(cache))
    tensors["latents"][:, 0, 0, 0, 0] = torch.arange(24).float()  # clip i is recognised by its first value
    save_file(tensors, str(cache), metadata={"meta": "{}"})
    config = write_config(tmp_path, tmp_path / "run", cache, max_steps=3, frame_mask=dict(none=1.0))
    overrides = {"scheduler.type": "test_recording_rflow"}
    RecordingFlow.seen = []
    train(load_config(str(config), overrides), config_path=str(config))
    assert len(RecordingFlow.seen) == 24
    for clip, mask in RecordingFlow.seen:  # 2 latent frames: first_k gives frame 0, the others give none
        assert mask == ([False, True] if int(clip) % 2 == 0 else [True, True]), (clip, mask)
    config = write_config(tmp_path, tmp_path / "run2", cache, frame_mask=None)
    with pytest.raises(ConfigError, match="12 clips of the dataset have their own frame mask .* train.frame_mask "
                                          "is not set"):
        train(load_config(str(config)), config_path=str(config))
