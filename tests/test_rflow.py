"""RectifiedFlow against Open-Sora v1.2 (fixture ``rflow``), plus the behaviours we add on purpose."""
import math

import pytest
import torch

from opensora_lite.errors import ConfigError
from opensora_lite.registry import MODELS, SCHEDULERS, build_module
from opensora_lite.schedulers import RectifiedFlow, shift_timesteps, timestep_transform
from opensora_lite.schedulers.settings import SamplingSettings, VideoSize

from conftest import dit_tiny_stdit, fixture_atol, load_fixture
from helpers import TINY_VAE

NULL_CLASS = 10  # dit_tiny has 10 classes; id 10 is the null class
TT_CASES = ["img256", "img512", "img1024", "vid240p_17f", "vid240p_51f", "vid480p_102f", "vid720p_204f",
            "vid144p_34f_int64", "vid240p_51f_scale2"]


@pytest.fixture(scope="module")
def rflow():
    return load_fixture("rflow")


@pytest.fixture(scope="module")
def toy(rflow):
    """STDiT loaded with the dit_tiny weights: on (N, 4, 2, 8, 8) clips it is the fixture's DiTVideoToy."""
    return dit_tiny_stdit(rflow[0], frames=2)


@pytest.fixture(scope="module")
def opensora_vae():
    """A tiny VAE of Open-Sora v1.2's layout (17-frame micro chunks, 4x in time). The time shift takes a clip's
    latent frames from its VAE; upstream recomputes them from the frame count (5 per 17 frames)."""
    cfg = {}
    exec(TINY_VAE, cfg)
    return build_module(cfg["vae"], MODELS)


def latent_frames(vae, num_frames) -> torch.Tensor:
    """The VAE's latent frame count of each entry of num_frames (a number or a tensor), as a float tensor."""
    frames = torch.as_tensor(num_frames)
    counts = [vae.get_latent_size([int(f), None, None])[0] for f in frames.flatten().tolist()]
    return torch.tensor(counts, dtype=torch.float32).reshape(frames.shape)


def close(actual, meta, name, expected):
    torch.testing.assert_close(actual, expected, atol=fixture_atol(meta, name), rtol=1e-5, equal_nan=True)


class Recorder(torch.nn.Module):
    """Wraps a network and logs the timesteps it sees (both guidance halves, as DiT's forward_with_cfg
    gets them) and the latent entering each step (its first ``n`` rows)."""

    def __init__(self, model, n: int):
        super().__init__()
        self.model, self.n, self.t, self.x = model, n, [], []

    def forward(self, x, t, y, **frames):
        self.t.append(t.clone())
        self.x.append(x[: self.n].clone())
        return self.model(x, t, y, **frames)

    def null_cond(self, cond):
        return self.model.null_cond(cond)


def train_size(inputs, vae) -> VideoSize:
    """The fixture's training clips: 240x426, 51 frames (15 latent frames)."""
    n = inputs["train.y"].shape[0]
    return VideoSize(torch.full((n,), 240.0), torch.full((n,), 426.0), latent_frames(vae, torch.full((n,), 51)))


##################################################################################
#                             timestep_transform                                 #
##################################################################################

@pytest.mark.parametrize("case", TT_CASES)
def test_timestep_transform_matches_upstream(rflow, opensora_vae, case):
    _, inputs, outputs, meta = rflow
    arg = {k: inputs[f"tt.{case}.{k}"] for k in ("t", "height", "width", "num_frames", "scale")}
    out = timestep_transform(arg["t"], arg["height"], arg["width"], latent_frames(opensora_vae, arg["num_frames"]),
                             scale=float(arg["scale"]), num_timesteps=1000)
    close(out, meta, f"tt.{case}", outputs[f"tt.{case}"])


def test_short_clip_uses_true_latent_length_instead_of_upstream_quirk(rflow, opensora_vae):
    """Upstream gives 16 frames 0 latent frames (t collapses to 0, NaN at 1000); the VAE makes ceil(16/4) = 4."""
    _, inputs, outputs, _ = rflow
    arg = {k: inputs[f"tt.vid360p_16f_QUIRK.{k}"] for k in ("t", "height", "width", "num_frames")}
    upstream = outputs["tt.vid360p_16f_QUIRK"]
    assert torch.isnan(upstream[0]) and (upstream[1:] == 0).all()  # the quirk we deliberately differ from

    ours = timestep_transform(arg["t"], arg["height"], arg["width"], latent_frames(opensora_vae, arg["num_frames"]),
                              num_timesteps=1000)
    ratio = math.sqrt(360 * 640 / 512 ** 2) * math.sqrt(4)
    s = arg["t"].double() / 1000
    expected = 1000 * ratio * s / (1 + (ratio - 1) * s)
    torch.testing.assert_close(ours.double(), expected, atol=5e-4, rtol=1e-5)
    assert torch.isfinite(ours).all()
    assert (ours[:-1] > 0).all() and ours[0] == 1000  # not collapsed; the ends stay fixed


@pytest.mark.parametrize("frames", range(0, 6))  # 0: a size nobody set; still no NaN
def test_timestep_transform_never_nan_for_short_clips(frames):
    t = torch.tensor([1000.0, 999.0, 500.0, 1.0, 0.0])
    out = timestep_transform(t, 144, 256, frames, num_timesteps=1000)
    assert torch.isfinite(out).all()
    assert out[0] == 1000 and out[-1] == 0
    assert (out[:-1] > out[1:]).all()  # still strictly monotone: nothing collapsed


##################################################################################
#                                  Training                                      #
##################################################################################

def test_add_noise_and_velocity_target(rflow):
    _, inputs, outputs, meta = rflow
    rf = RectifiedFlow(use_timestep_transform=True, sample_method="logit-normal")
    x0, noise, t = inputs["train.x_start"], inputs["train.noise"], inputs["train.t"]
    close(rf.add_noise(x0, noise, t), meta, "train.x_t", outputs["train.x_t"])
    close(x0 - noise, meta, "train.velocity_target", outputs["train.velocity_target"])


def test_model_velocity(rflow, toy):
    _, inputs, outputs, meta = rflow
    x_t, t, y = outputs["train.x_t"], inputs["train.t"], inputs["train.y"]
    with torch.no_grad():
        velocity = toy(x_t, t, y)[:, :4]
    close(velocity, meta, "train.model_velocity", outputs["train.model_velocity"])


@pytest.mark.parametrize("masked", [False, True])
def test_training_loss(rflow, toy, opensora_vae, masked):
    _, inputs, outputs, meta = rflow
    rf = RectifiedFlow(use_timestep_transform=True, sample_method="logit-normal")
    mask = inputs["train.mask"] if masked else None
    with torch.no_grad():
        loss = rf.training_losses(toy, inputs["train.x_start"], dict(y=inputs["train.y"]), t=inputs["train.t"],
                                  noise=inputs["train.noise"], mask=mask, size=train_size(inputs, opensora_vae))["loss"]
    name = "train.loss_masked" if masked else "train.loss"
    assert loss.shape == (2,)
    close(loss, meta, name, outputs[name])


def test_masked_frames_stay_clean_and_do_not_count(rflow):
    """A frame with mask False is fed as x0, and changing it leaves the loss unchanged."""
    _, inputs, _, _ = rflow
    x0, noise, t, mask = inputs["train.x_start"], inputs["train.noise"], inputs["train.t"], inputs["train.mask"]
    seen = []

    def model(x, t, y, frame_mask=None):
        seen.append((x, frame_mask))
        return x.sum(dim=2, keepdim=True).expand_as(x) * 0.1  # couples frames, like temporal attention

    rf = RectifiedFlow()
    loss = rf.training_losses(model, x0, dict(y=inputs["train.y"]), t=t, noise=noise, mask=mask)["loss"]
    x_seen, frame_mask = seen[0]
    torch.testing.assert_close(x_seen[0, :, 1], x0[0, :, 1], atol=0, rtol=0)  # masked frame: clean
    assert not torch.allclose(x_seen[0, :, 0], x0[0, :, 0])  # unmasked frame: noised
    assert torch.equal(frame_mask, mask)  # and the model is told which frames are clean
    noise2 = noise.clone()
    noise2[0, :, 1] += 1.0  # only the masked frame's target changes
    loss2 = rf.training_losses(lambda x, t, y, frame_mask: torch.zeros_like(x), x0, dict(y=inputs["train.y"]), t=t,
                               noise=noise2, mask=mask)["loss"]
    loss1 = rf.training_losses(lambda x, t, y, frame_mask: torch.zeros_like(x), x0, dict(y=inputs["train.y"]), t=t,
                               noise=noise, mask=mask)["loss"]
    torch.testing.assert_close(loss2, loss1)
    assert loss.shape == (2,)


def test_logit_normal_t(rflow, opensora_vae):
    _, inputs, outputs, meta = rflow
    rf = RectifiedFlow(use_timestep_transform=True, sample_method="logit-normal")
    torch.manual_seed(2025)
    t = rf.sample_t(2)
    close(t, meta, "train.t_logitnormal", outputs["train.t_logitnormal"])
    size = train_size(inputs, opensora_vae)
    shifted = timestep_transform(t, size.height, size.width, size.latent_frames, scale=1.0, num_timesteps=1000)
    close(shifted, meta, "train.t_logitnormal_transformed", outputs["train.t_logitnormal_transformed"])


def test_sampled_training_t_is_shifted_but_explicit_t_is_not(rflow, opensora_vae):
    _, inputs, outputs, meta = rflow
    rf = RectifiedFlow(use_timestep_transform=True, sample_method="logit-normal")
    rec = Recorder(lambda x, t, y: torch.zeros_like(x), n=2)
    x0, cond, size = inputs["train.x_start"], dict(y=inputs["train.y"]), train_size(inputs, opensora_vae)
    torch.manual_seed(2025)
    rf.training_losses(rec, x0, cond, noise=inputs["train.noise"], size=size)
    close(rec.t[0], meta, "train.t_logitnormal_transformed", outputs["train.t_logitnormal_transformed"])
    rf.training_losses(rec, x0, cond, t=inputs["train.t"], noise=inputs["train.noise"], size=size)
    torch.testing.assert_close(rec.t[1], inputs["train.t"], atol=0, rtol=0)


def test_uniform_t_range_and_seed_determinism():
    rf = RectifiedFlow(sample_method="uniform")
    torch.manual_seed(3)
    t = rf.sample_t(4096)
    assert t.min() >= 0 and t.max() <= 1000 and abs(t.mean().item() - 500) < 20
    x0 = torch.randn(3, 4, 2, 4, 4)

    def model(x, t, y):
        return x * 0.5

    losses = []
    for _ in range(2):
        torch.manual_seed(11)
        losses.append(rf.training_losses(model, x0, dict(y=torch.zeros(3, dtype=torch.long)))["loss"])
    torch.testing.assert_close(losses[0], losses[1], atol=0, rtol=0)
    torch.manual_seed(12)
    assert not torch.equal(rf.training_losses(model, x0, dict(y=torch.zeros(3, dtype=torch.long)))["loss"], losses[0])


def test_constant_shift_moves_training_and_solver_t_towards_noise():
    t = torch.linspace(0, 1000, 11)
    shifted = shift_timesteps(t, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1000 and (shifted[1:-1] > t[1:-1]).all()
    assert (shifted.diff() > 0).all()  # still an order-preserving map of [0, 1000]
    torch.testing.assert_close(shift_timesteps(torch.tensor([500.0]), 3.0), torch.tensor([750.0]))  # 3*.5/(1+2*.5)
    torch.testing.assert_close(shift_timesteps(shifted, 1 / 3.0), t)  # r and 1/r undo each other
    plain, shifted_rf = RectifiedFlow(sample_method="uniform"), RectifiedFlow(sample_method="uniform", shift=3.0)
    draws = [rf.sample_timesteps(4096, generator=torch.Generator().manual_seed(0)) for rf in (plain, shifted_rf)]
    torch.testing.assert_close(draws[1], shift_timesteps(draws[0], 3.0))
    ts = [torch.cat(rf.sampling_timesteps(1, num_steps=10)) for rf in (plain, shifted_rf)]
    torch.testing.assert_close(ts[1], shift_timesteps(ts[0], 3.0))
    with pytest.raises(ConfigError, match="shift"):
        RectifiedFlow(shift=0.0)


##################################################################################
#                                  Sampling                                      #
##################################################################################

@pytest.mark.parametrize("tag,use_tt", [("sample_tt", True), ("sample_no_tt", False)])
def test_euler_cfg_sampling(rflow, toy, opensora_vae, tag, use_tt):
    _, inputs, outputs, meta = rflow
    z, y = inputs["sample.z"], inputs["sample.y"]
    size = VideoSize(240, 426, latent_frames(opensora_vae, 51))  # a 240p 51-frame video: 15 latent frames
    rec = Recorder(toy, n=z.shape[0])
    rf = RectifiedFlow(num_sampling_steps=10, num_timesteps=1000, cfg_scale=4.0, use_timestep_transform=use_tt)
    out = rf.sample(rec, z.clone(), dict(y=y), SamplingSettings(progress=False), size=size)
    close(out, meta, f"{tag}.z", outputs[f"{tag}.z"])
    close(torch.stack(rec.t), meta, f"{tag}.model_t", outputs[f"{tag}.model_t"])
    close(torch.stack(rec.x), meta, f"{tag}.z_before_step", outputs[f"{tag}.z_before_step"])


def test_sampling_is_deterministic_and_guidance_matters(rflow, toy):
    _, inputs, _, _ = rflow
    z, y = inputs["sample.z"], inputs["sample.y"]
    kw = dict(y=y)
    rf = RectifiedFlow(num_sampling_steps=3)
    a = rf.sample(toy, z, kw, SamplingSettings(progress=False), generator=torch.Generator().manual_seed(1))
    b = rf.sample(toy, z, kw, SamplingSettings(progress=False), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, rf.sample(toy, z, kw, SamplingSettings(cfg_scale=1.0, progress=False)))


def test_cfg_scale_one_calls_the_plain_forward(rflow, toy):
    """cfg_scale 1 needs no null ids and equals the conditional flow."""
    _, inputs, _, _ = rflow
    z, y = inputs["sample.z"], inputs["sample.y"]
    calls = []

    class NoCfg(torch.nn.Module):
        def forward(self, x, t, y):
            calls.append(x.shape[0])
            return toy(x, t, y)

        def null_cond(self, cond):
            raise AssertionError("null_cond asked for at cfg_scale 1")

    RectifiedFlow(num_sampling_steps=2).sample(NoCfg(), z, dict(y=y), SamplingSettings(cfg_scale=1.0, progress=False))
    assert calls == [2, 2]
    with pytest.raises(ConfigError, match="null_cond"):
        RectifiedFlow(num_sampling_steps=2).sample(lambda x, t, y: x, z, dict(y=y), SamplingSettings(cfg_scale=4.0,
                                                   progress=False))


@pytest.mark.parametrize("num_frames", [1, 2, 5, 16])
def test_sampling_short_clips_with_time_shift_is_finite(rflow, toy, opensora_vae, num_frames):
    _, inputs, _, _ = rflow
    z, y = inputs["sample.z"], inputs["sample.y"]
    size = VideoSize(240, 426, latent_frames(opensora_vae, num_frames))
    rf = RectifiedFlow(num_sampling_steps=4, use_timestep_transform=True)
    ts = rf.sampling_timesteps(2, size=size)
    assert all(torch.isfinite(t).all() and (t > 0).all() for t in ts)
    assert torch.isfinite(rf.sample(toy, z, dict(y=y), SamplingSettings(progress=False), size=size)).all()


def test_time_shift_needs_the_video_size(rflow, toy):
    _, inputs, _, _ = rflow
    rf = RectifiedFlow(num_sampling_steps=2, use_timestep_transform=True)
    with pytest.raises(ConfigError, match="needs the video size"):
        rf.sample(toy, inputs["sample.z"], dict(y=inputs["sample.y"]), SamplingSettings(cfg_scale=1.0, progress=False))


@pytest.mark.parametrize("bad", [dict(cfg_scale=float("nan")), dict(cfg_scale=float("inf")), dict(steps=0),
                                 dict(steps=2.5), dict(sampler=3)])
def test_bad_sampling_settings_are_refused(bad):
    """NaN and infinite guidance used to sample an all-black video and exit 0."""
    with pytest.raises(ConfigError, match="sampling."):
        SamplingSettings(**bad)
    with pytest.raises(ConfigError, match="unknown sampler 'plms'"):
        SamplingSettings(sampler="plms").resolved(RectifiedFlow())


##################################################################################
#                              Config and registry                               #
##################################################################################

def test_bad_sample_method_is_rejected():
    with pytest.raises(ConfigError, match="sample_method"):
        RectifiedFlow(sample_method="cosine")
    with pytest.raises(ConfigError, match="sample_method"):
        build_module(dict(type="rflow", sample_method="bogus"), SCHEDULERS)


def test_registered_as_rflow():
    rf = build_module(dict(type="rflow", num_sampling_steps=7, use_timestep_transform=True), SCHEDULERS)
    assert isinstance(rf, RectifiedFlow) and rf.num_sampling_steps == 7 and rf.use_timestep_transform
