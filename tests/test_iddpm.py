"""IDDPM against facebookresearch/DiT's diffusion (fixture ``iddpm``), run through STDiT on 1-frame clips."""
import pytest
import torch

from opensora_lite.errors import ConfigError
from opensora_lite.registry import SCHEDULERS, build_module
from opensora_lite.schedulers import IDDPM, space_timesteps
from opensora_lite.schedulers.iddpm import discretized_gaussian_log_likelihood
from opensora_lite.schedulers.settings import SamplingSettings

from conftest import dit_tiny_stdit, fixture_atol, load_fixture

NULL_CLASS = 10
DIT_CFG_CHANNELS = 3  # DiT's forward_with_cfg guides only the first 3 of 4 latent channels


@pytest.fixture(scope="module")
def iddpm():
    return load_fixture("iddpm")


@pytest.fixture(scope="module")
def dit(iddpm):
    """STDiT with the dit_tiny weights; on (N, 4, 1, 8, 8) clips it is the fixture's DiT on (N, 4, 8, 8)."""
    return dit_tiny_stdit(iddpm[0], frames=1)


def clip(images):
    """(N, C, H, W) images -> (N, C, 1, H, W) one-frame clips."""
    return images.unsqueeze(2)


def close(actual, meta, name, expected):
    actual = actual.reshape(expected.shape) if actual.numel() == expected.numel() else actual
    torch.testing.assert_close(actual, expected, atol=fixture_atol(meta, name), rtol=1e-5, equal_nan=True)


def sample_kwargs(inputs):
    y = inputs["y_sample"]
    return dict(y=y)  # the null class (NULL_CLASS) comes from the model's null_cond


##################################################################################
#                           Schedules and respacing                              #
##################################################################################

@pytest.mark.parametrize("name,spec", [("1000", ""), ("10", "10"), ("250", "250")])
def test_schedules(iddpm, name, spec):
    _, _, outputs, meta = iddpm
    schedule = IDDPM(timestep_respacing=spec).schedule
    for key in ("betas", "alphas_cumprod", "posterior_log_variance_clipped"):
        ours = getattr(schedule, key)
        assert ours.dtype == torch.float64
        close(ours, meta, f"sched_{name}_{key}", outputs[f"sched_{name}_{key}"])
    assert torch.equal(schedule.timestep_map, outputs[f"sched_{name}_timestep_map"])


def test_num_sampling_steps_equals_respacing():
    by_steps, by_spec = IDDPM(num_sampling_steps=10).schedule, IDDPM(timestep_respacing="10").schedule
    assert torch.equal(by_steps.timestep_map, by_spec.timestep_map)
    with pytest.raises(ConfigError):
        IDDPM(num_sampling_steps=10, timestep_respacing="250")


def test_timestep_maps():
    assert space_timesteps(1000, "10") == [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
    m250 = space_timesteps(1000, "250")  # float stride 999/249, rounded
    assert len(m250) == 250 and m250[:4] == [0, 4, 8, 12] and m250[-2:] == [995, 999]
    m25 = space_timesteps(1000, "25")  # float stride 999/24 = 41.625
    assert len(m25) == 25 and m25[:4] == [0, 42, 83, 125] and m25[-1] == 999
    assert space_timesteps(1000, "ddim50") == list(range(0, 1000, 20))
    assert torch.equal(IDDPM(timestep_respacing="").schedule.timestep_map, torch.arange(1000))
    sections = space_timesteps(1000, "5,10")  # two halves of 500 steps: 5 from the first, 10 from the second
    assert len(sections) == 15 and sections[:5] == [0, 125, 250, 374, 499]
    assert sections[5] == 500 and sections[-1] == 999
    with pytest.raises(ConfigError):
        space_timesteps(1000, "ddim999")  # no stride gives exactly 999 steps
    with pytest.raises(ConfigError):
        space_timesteps(10, "11")


def test_respaced_chain_keeps_alphas_cumprod_of_kept_steps():
    full, spaced = IDDPM().schedule, IDDPM(timestep_respacing="ddim50").schedule
    torch.testing.assert_close(spaced.alphas_cumprod, full.alphas_cumprod[spaced.timestep_map], atol=1e-12, rtol=0)


def test_bad_noise_schedule_is_rejected():
    with pytest.raises(ConfigError, match="noise_schedule"):
        IDDPM(noise_schedule="quadratic")


##################################################################################
#                                  Training                                      #
##################################################################################

def test_q_sample(iddpm):
    _, inputs, outputs, meta = iddpm
    x_t = IDDPM(timestep_respacing="").q_sample(inputs["x_start"], inputs["t_train"], inputs["noise_train"])
    close(x_t, meta, "train_x_t", outputs["train_x_t"])


def test_training_losses(iddpm, dit):
    """MSE + VB; t_train = [0, 1, 500, 999] covers the t=0 decoder NLL and the KL branch."""
    _, inputs, outputs, meta = iddpm
    assert inputs["t_train"][0] == 0
    diffusion = IDDPM(timestep_respacing="")
    with torch.no_grad():
        terms = diffusion.training_losses(dit, clip(inputs["x_start"]), dict(y=inputs["y_train"]),
                                          t=inputs["t_train"], noise=clip(inputs["noise_train"]))
    for key in ("loss", "mse", "vb"):
        assert terms[key].shape == (4,)
        close(terms[key], meta, f"train_{key}", outputs[f"train_{key}"])


def test_vb_trains_only_the_variance():
    """The VB sees the predicted mean detached: its gradient reaches only the variance channels."""
    out = torch.randn(2, 8, 1, 4, 4, requires_grad=True)
    diffusion = IDDPM()
    terms = diffusion.training_losses(lambda x, t, y: out, torch.randn(2, 4, 1, 4, 4), dict(y=torch.zeros(2)),
                                      t=torch.tensor([0, 500]))
    (grad,) = torch.autograd.grad(terms["vb"].sum(), out)
    assert grad[:, :4].abs().max() == 0 and grad[:, 4:].abs().max() > 0
    (grad,) = torch.autograd.grad(terms["mse"].sum(), out)
    assert grad[:, :4].abs().max() > 0 and grad[:, 4:].abs().max() == 0


def test_decoder_nll_branches():
    """Edge bins (|x| > 0.999) take the open-ended tail; a centred bin of a narrow Gaussian is ~certain."""
    x = torch.tensor([-1.0, 0.0, 1.0])
    logp = discretized_gaussian_log_likelihood(x, x, torch.full((3,), -8.0))
    torch.testing.assert_close(logp, torch.zeros(3), atol=1e-6, rtol=0)
    wide = discretized_gaussian_log_likelihood(x, torch.zeros(3), torch.zeros(3))
    assert wide[0] > wide[1] and wide[2] > wide[1]  # the open tails hold more mass than one bin


def test_training_samples_t_and_noise_from_the_seed():
    x0 = torch.randn(3, 4, 2, 4, 4)

    def model(x, t, y):
        return torch.cat([x * 0.1, torch.zeros_like(x)], dim=1)

    diffusion = IDDPM()
    torch.manual_seed(5)
    a = diffusion.training_losses(model, x0, dict(y=torch.zeros(3, dtype=torch.long)))["loss"]
    torch.manual_seed(5)
    b = diffusion.training_losses(model, x0, dict(y=torch.zeros(3, dtype=torch.long)))["loss"]
    torch.manual_seed(6)
    c = diffusion.training_losses(model, x0, dict(y=torch.zeros(3, dtype=torch.long)))["loss"]
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.equal(a, c)


def test_respaced_training_feeds_original_timesteps():
    seen = []

    def model(x, t, y):
        seen.append(t)
        return torch.cat([x, torch.zeros_like(x)], dim=1)

    IDDPM(timestep_respacing="10").training_losses(model, torch.randn(3, 4, 1, 4, 4), dict(y=torch.zeros(3)),
                                                  t=torch.tensor([0, 1, 9]))
    assert seen[0].tolist() == [0, 111, 999]


##################################################################################
#                                  Sampling                                      #
##################################################################################

def test_ddim_sample_trajectory_and_pred_xstart(iddpm, dit):
    _, inputs, outputs, meta = iddpm
    diffusion = IDDPM(num_sampling_steps=10)
    steps = list(diffusion.sample_steps(dit, clip(inputs["z_sample"]), sample_kwargs(inputs),
                                        SamplingSettings(cfg_scale=1.0, sampler="ddim", progress=False), eta=0.0))
    close(torch.stack([s["sample"] for s in steps]), meta, "ddim10_trajectory", outputs["ddim10_trajectory"])
    close(torch.stack([s["pred_xstart"] for s in steps]), meta, "ddim10_pred_xstart", outputs["ddim10_pred_xstart"])
    final = diffusion.sample(dit, clip(inputs["z_sample"]), sample_kwargs(inputs), SamplingSettings(cfg_scale=1.0,
                             sampler="ddim", progress=False))
    close(final, meta, "ddim10_sample", outputs["ddim10_sample"])


def test_ddim_clip_denoised(iddpm, dit):
    _, inputs, outputs, meta = iddpm
    out = IDDPM(num_sampling_steps=10).sample(dit, clip(inputs["z_sample"]), sample_kwargs(inputs),
                                              SamplingSettings(cfg_scale=1.0, sampler="ddim", progress=False),
                                              clip_denoised=True)
    close(out, meta, "ddim10_clip_sample", outputs["ddim10_clip_sample"])


def test_ddim_cfg_matches_dit_forward_with_cfg(iddpm, dit):
    """DiT's sample.py layout: rows [:2] of a (4,...) batch [z, z] with labels [y, null]."""
    _, inputs, outputs, meta = iddpm
    diffusion = IDDPM(num_sampling_steps=10, cfg_channel=DIT_CFG_CHANNELS)
    out = diffusion.sample(dit, clip(inputs["z_sample"]), sample_kwargs(inputs), SamplingSettings(cfg_scale=4.0,
                           sampler="ddim", progress=False))
    close(out, meta, "ddim10_cfg_sample", outputs["ddim10_cfg_sample"][:2])


def test_ddpm_sample_with_recorded_noise(iddpm, dit):
    _, inputs, outputs, meta = iddpm
    recorded = inputs["psample10_noise_per_step"]  # draw k belongs to loop step k; the last is masked
    asked = []

    def noise_fn(step, shape):
        asked.append(step)
        return recorded[step].reshape(shape)

    out = IDDPM(num_sampling_steps=10).sample(dit, clip(inputs["z_sample"]), sample_kwargs(inputs),
                                              SamplingSettings(cfg_scale=1.0, progress=False), noise_fn=noise_fn)
    assert asked == list(range(10))
    close(out, meta, "psample10_sample", outputs["psample10_sample"])


def test_ddpm_draws_noise_in_upstream_order(iddpm, dit):
    """Without a hook the draws are randn of z's shape, one per step: upstream's seed gives its sample."""
    _, inputs, outputs, meta = iddpm
    torch.manual_seed(4242)
    out = IDDPM(num_sampling_steps=10).sample(dit, clip(inputs["z_sample"]), sample_kwargs(inputs),
                                              SamplingSettings(cfg_scale=1.0, progress=False))
    close(out, meta, "psample10_sample", outputs["psample10_sample"])


def test_ddpm_cfg_sample_with_recorded_noise(iddpm, dit):
    _, inputs, outputs, meta = iddpm
    recorded = inputs["psample10_cfg_noise_per_step"]  # (10, 4, ...): rows [:2] drive the kept half

    diffusion = IDDPM(num_sampling_steps=10, cfg_channel=DIT_CFG_CHANNELS)
    out = diffusion.sample(dit, clip(inputs["z_sample"]), sample_kwargs(inputs), SamplingSettings(cfg_scale=4.0,
                           progress=False), noise_fn=lambda step, shape: recorded[step, :2].reshape(shape))
    close(out, meta, "psample10_cfg_sample", outputs["psample10_cfg_sample"][:2])


def test_final_ddpm_step_adds_no_noise(iddpm, dit):
    _, inputs, _, _ = iddpm
    diffusion = IDDPM(num_sampling_steps=3)
    z, kw = clip(inputs["z_sample"]), sample_kwargs(inputs)

    def noise(scale):
        return lambda step, shape: torch.full(shape, scale if step == 2 else 0.0)

    a = diffusion.sample(dit, z, kw, SamplingSettings(cfg_scale=1.0, progress=False), noise_fn=noise(0.0))
    b = diffusion.sample(dit, z, kw, SamplingSettings(cfg_scale=1.0, progress=False), noise_fn=noise(100.0))
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    c = diffusion.sample(dit, z, kw, SamplingSettings(cfg_scale=1.0, progress=False), noise_fn=lambda s,
                         shape: torch.full(shape, float(s == 1)))
    assert not torch.allclose(a, c)


def test_sampling_seed_determinism(iddpm, dit):
    _, inputs, _, _ = iddpm
    diffusion = IDDPM(num_sampling_steps=4)
    z, kw = clip(inputs["z_sample"]), sample_kwargs(inputs)
    runs = [diffusion.sample(dit, z, kw, SamplingSettings(progress=False),
                             generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    torch.testing.assert_close(runs[0], runs[1], atol=0, rtol=0)
    assert not torch.allclose(runs[0], runs[2])
    ddim = [diffusion.sample(dit, z, kw, SamplingSettings(sampler="ddim", progress=False), eta=1.0,
                             generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    torch.testing.assert_close(ddim[0], ddim[1], atol=0, rtol=0)
    assert not torch.allclose(ddim[0], ddim[2])


def test_num_steps_respaces_one_call(iddpm, dit):
    _, inputs, outputs, meta = iddpm
    out = IDDPM().sample(dit, clip(inputs["z_sample"]), sample_kwargs(inputs), SamplingSettings(cfg_scale=1.0,
                         steps=10, sampler="ddim", progress=False))
    close(out, meta, "ddim10_sample", outputs["ddim10_sample"])


def test_bad_method_and_missing_null_ids(iddpm, dit):
    _, inputs, _, _ = iddpm
    z = clip(inputs["z_sample"])
    with pytest.raises(ConfigError, match="sampler"):
        IDDPM(num_sampling_steps=2).sample(dit, z, sample_kwargs(inputs), SamplingSettings(sampler="plms",
                                           progress=False))
    with pytest.raises(ConfigError, match="null_cond"):
        IDDPM(num_sampling_steps=2).sample(lambda x, t, y: x, z, dict(y=inputs["y_sample"]),
                                           SamplingSettings(cfg_scale=4.0, progress=False))


def test_registered_as_iddpm():
    diffusion = build_module(dict(type="iddpm", timestep_respacing="250", cfg_channel=3), SCHEDULERS)
    assert isinstance(diffusion, IDDPM) and diffusion.schedule.num_steps == 250 and diffusion.cfg_channel == 3
