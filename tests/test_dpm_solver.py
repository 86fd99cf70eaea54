"""DPM-Solver++(2M) for epsilon-prediction IDDPM, and given frames under the multistep samplers of both objectives.

Accuracy is measured on Gaussian data with the exact noise prediction, where the probability-flow ODE's
solution is known: x0 ~ N(mu[y], diag(sigma^2)) gives x_t ~ N(a mu, a^2 sigma^2 + s^2) (a = sqrt(abar_t),
s = sqrt(1 - abar_t)), E[noise | x_t] = s (x - a mu) / (a^2 sigma^2 + s^2), and the ODE maps x_T to
mu + sigma (x_T - a_T mu) / sqrt(a_T^2 sigma^2 + s_T^2).
"""
import pytest
import torch

from opensora_lite.errors import ConfigError
from opensora_lite.schedulers import IDDPM, GivenFrames, RectifiedFlow
from opensora_lite.schedulers.settings import SamplingSettings

from conftest import dit_tiny_stdit, load_fixture

SIGMA = (0.025, 0.15, 0.5, 1.0)  # per channel, data scale of a VAE latent
ABAR = torch.cumprod(1 - IDDPM().base_betas, dim=0)  # (1000,) float64, DiT's linear schedule


class GaussianEps(torch.nn.Module):
    """The exact noise prediction of the toy data, shaped like a learn_sigma network (2C channels);
    records the timesteps it is called at."""

    def __init__(self, mu: torch.Tensor, sigma: torch.Tensor):
        super().__init__()
        self.mu, self.sigma, self.seen = mu, sigma, []

    def forward(self, x, t, y):
        self.seen.append(int(t[0]))
        a = ABAR[t].sqrt().view(-1, 1, 1, 1, 1)  # (N, 1, 1, 1, 1)
        s = (1 - ABAR[t]).sqrt().view(-1, 1, 1, 1, 1)
        mu = self.mu[y].view(*y.shape, -1, 1, 1, 1)  # (N, C, 1, 1, 1)
        var = a ** 2 * self.sigma.view(1, -1, 1, 1, 1) ** 2 + s ** 2
        eps = s * (x - a * mu) / var  # (N, C, T, H, W)
        return torch.cat([eps, torch.zeros_like(eps)], dim=1)  # (N, 2C, T, H, W)


@pytest.fixture(scope="module")
def problem():
    g = torch.Generator().manual_seed(0)
    mu = 0.5 * torch.randn(3, 4, generator=g, dtype=torch.float64)  # 3 classes, 4 channels
    sigma = torch.tensor(SIGMA, dtype=torch.float64)
    z = torch.randn(6, 4, 2, 4, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    a, s = ABAR[-1].sqrt(), (1 - ABAR[-1]).sqrt()
    m, sd = mu[y].view(6, 4, 1, 1, 1), sigma.view(1, 4, 1, 1, 1)
    exact = m + sd * (z - a * m) / (a ** 2 * sd ** 2 + s ** 2).sqrt()
    return mu, sigma, z, y, exact


def solve(problem, sampler, steps):
    """(max error vs the exact ODE solution, timesteps the network saw)."""
    mu, sigma, z, y, exact = problem
    eps = GaussianEps(mu, sigma)
    out = IDDPM().sample(eps, z, dict(y=y), SamplingSettings(cfg_scale=1.0, steps=steps, sampler=sampler,
                         progress=False))
    return (out - exact).abs().max().item(), eps.seen


def test_one_call_per_step_at_its_timesteps(problem):
    diffusion = IDDPM()
    _, seen = solve(problem, "dpm++2m", 8)
    assert seen == diffusion.dpm_solver_timesteps(8) == [999, 765, 562, 390, 250, 140, 62, 16]
    assert diffusion.dpm_solver_timesteps(1000) == list(range(999, -1, -1))  # distinct even where the grid < 1
    with pytest.raises(ConfigError, match="dpm\\+\\+2m"):
        diffusion.dpm_solver_timesteps(1001)


def test_dpm_solver_20_beats_ddim_50(problem):
    dpm_err, dpm_seen = solve(problem, "dpm++2m", 20)
    ddim_err, ddim_seen = solve(problem, "ddim", 50)
    assert len(dpm_seen) == 20 and len(ddim_seen) == 50
    assert dpm_err < ddim_err / 3  # measured: 0.025 vs 0.110 (DDIM 250: 0.022)


def test_dpm_solver_8_beats_ddim_20(problem):
    assert solve(problem, "dpm++2m", 8)[0] < solve(problem, "ddim", 20)[0] / 2  # measured: 0.068 vs 0.275


##################################################################################
#                     The DiT fixture network, and given frames                  #
##################################################################################

@pytest.fixture(scope="module")
def dit2():
    """STDiT with the dit_tiny fixture weights on 2-frame clips: learned sigma (2C outputs), null class."""
    return dit_tiny_stdit(load_fixture("iddpm")[0], frames=2)


def given_frames(n=2):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(n, 4, 2, 8, 8, generator=g)  # (N, C, T, H, W)
    clean = torch.randn(n, 4, 2, 8, 8, generator=g)
    mask = torch.tensor([[False, True]] * n)  # frame 0 given, frame 1 generated
    return z, GivenFrames(clean, mask)


@pytest.mark.parametrize("scheduler", [IDDPM(), RectifiedFlow()], ids=["iddpm", "rflow"])
def test_given_frames_come_back_exactly(dit2, scheduler):
    z, given = given_frames()
    y = torch.tensor([3, 7])
    out = scheduler.sample(dit2, z, dict(y=y), SamplingSettings(cfg_scale=4.0, steps=6, sampler="dpm++2m",
                           progress=False), given=given)
    assert torch.equal(out[:, :, 0], given.latents[:, :, 0])
    assert torch.isfinite(out).all() and not torch.allclose(out[:, :, 1], z[:, :, 1])  # frame 1 was sampled


def test_iddpm_dpm_solver_is_deterministic_and_the_sampler_default(dit2):
    z, _ = given_frames()
    kw = dict(y=torch.tensor([3, 7]))
    by_default = IDDPM(sampler="dpm++2m").sample(dit2, z, kw, SamplingSettings(steps=5, progress=False))
    by_call = IDDPM().sample(dit2, z, kw, SamplingSettings(steps=5, sampler="dpm++2m", progress=False),
                             generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(by_default, by_call, atol=0, rtol=0)
