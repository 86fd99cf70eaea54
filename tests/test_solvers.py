"""The Heun and DPM-Solver++(2M) solvers for rectified flow on a Gaussian toy flow whose exact ODE solution is known.

Data: x0 ~ N(mu[y], diag(sigma^2)) per class y. Along x_s = (1 - s) x0 + s noise (s = t / 1000) the
marginal is N((1 - s) mu, var_s) with var_s = (1 - s)^2 sigma^2 + s^2, and the optimal velocity
E[x0 - noise | x_s] is mu + ((1 - s) sigma^2 - s) / var_s * (x - (1 - s) mu). The flow maps noise z at
s = 1 to x0 = mu + sigma * z exactly, so every solver's error is measured against the truth.
"""
import pytest
import torch

from opensora_lite.errors import ConfigError
from opensora_lite.schedulers import RectifiedFlow, integrate
from opensora_lite.schedulers.settings import SamplingSettings, VideoSize

SIGMA = (0.05, 0.3, 1.0, 2.0)  # per channel; the narrow one makes the flow bend hard near the data


class GaussianFlow(torch.nn.Module):
    """The exact velocity of the toy data, shaped like a learn_sigma network (2C channels); counts calls."""

    def __init__(self, mu: torch.Tensor, sigma: torch.Tensor):
        super().__init__()
        self.mu, self.sigma, self.calls = mu, sigma, 0

    def forward(self, x, t, y):
        self.calls += 1
        s = (t.double() / 1000).view(-1, 1, 1, 1, 1)  # (N, 1, 1, 1, 1)
        mu = self.mu[y].view(*y.shape, -1, 1, 1, 1)  # (N, C, 1, 1, 1)
        sigma2 = self.sigma.view(1, -1, 1, 1, 1) ** 2
        var = (1 - s) ** 2 * sigma2 + s ** 2
        v = mu + ((1 - s) * sigma2 - s) / var * (x - (1 - s) * mu)  # (N, C, T, H, W)
        return torch.cat([v, torch.zeros_like(v)], dim=1)  # (N, 2C, T, H, W)


@pytest.fixture(scope="module")
def problem():
    g = torch.Generator().manual_seed(0)
    mu = 2 * torch.randn(3, 4, generator=g, dtype=torch.float64)  # 3 classes, 4 channels
    sigma = torch.tensor(SIGMA, dtype=torch.float64)
    z = torch.randn(6, 4, 2, 4, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    exact = mu[y].view(6, 4, 1, 1, 1) + sigma.view(1, 4, 1, 1, 1) * z
    return mu, sigma, z, y, exact


def solve(problem, solver, steps, **kwargs):
    """(max error vs the exact solution, network calls)."""
    mu, sigma, z, y, exact = problem
    flow = GaussianFlow(mu, sigma)
    rf = RectifiedFlow(num_sampling_steps=steps, cfg_scale=1.0, sampler=solver, **kwargs)
    out = rf.sample(flow, z, dict(y=y), SamplingSettings(progress=False), size=VideoSize(240, 426, latent_frames=15))
    return (out - exact).abs().max().item(), flow.calls


def test_call_counts(problem):
    assert solve(problem, "euler", 7)[1] == 7
    assert solve(problem, "heun", 7)[1] == 14
    assert solve(problem, "dpm++2m", 7)[1] == 7


def test_heun_beats_1000_step_euler_with_10x_fewer_calls(problem):
    euler_err, euler_calls = solve(problem, "euler", 1000)
    heun_err, heun_calls = solve(problem, "heun", 50)
    assert heun_calls == 100 and euler_calls == 1000
    assert heun_err < euler_err  # measured: 2.3e-3 vs 8.9e-3


def test_heun_matches_euler_error_with_fewer_calls(problem):
    """At equal error (about 0.045), Heun needs 20 calls and Euler 200."""
    euler_err, euler_calls = solve(problem, "euler", 100)
    heun_err, heun_calls = solve(problem, "heun", 10)
    assert heun_calls == 20 and euler_calls == 100
    assert heun_err < euler_err  # measured: 0.047 vs 0.088


def test_convergence_orders(problem):
    """Halving the step size divides the error by ~2 for Euler (1st order) and by ~4 for Heun (2nd order)."""
    euler = [solve(problem, "euler", n)[0] for n in (100, 200)]
    heun = [solve(problem, "heun", n)[0] for n in (100, 200)]
    assert 1.8 < euler[0] / euler[1] < 2.2
    assert 3.5 < heun[0] / heun[1] < 4.5


def test_dpm_solver_at_8_calls_beats_euler_at_16(problem):
    dpm_err, dpm_calls = solve(problem, "dpm++2m", 8)
    euler8_err, _ = solve(problem, "euler", 8)
    euler16_err, euler16_calls = solve(problem, "euler", 16)
    assert dpm_calls == 8 and euler16_calls == 16
    assert dpm_err < 0.4 * euler8_err  # measured: 0.36 vs 1.02
    assert dpm_err < euler16_err  # measured: 0.36 vs 0.53


def test_dpm_solver_converges_at_second_order(problem):
    """Halving the step divides DPM-Solver++(2M)'s error by ~4 (measured 3.4-3.5 from 50 to 400 steps).

    Channels with sigma >= 0.3 only: on the narrowest one (sigma 0.05) the first-order final step (the
    data prediction at t = 1000 / n) dominates until 1 / n << 0.05, so its ratio reaches 4 only far beyond.
    """
    mu, sigma, z, y, exact = problem

    def wide_error(steps):
        out = RectifiedFlow(num_sampling_steps=steps, cfg_scale=1.0, sampler="dpm++2m").sample(GaussianFlow(mu,
                            sigma), z, dict(y=y), SamplingSettings(progress=False))
        return (out - exact)[:, 1:].abs().max().item()

    assert 3.0 < wide_error(200) / wide_error(400) < 4.5


def test_heun_with_time_shift_still_beats_euler(problem):
    euler_err, _ = solve(problem, "euler", 1000, use_timestep_transform=True)
    heun_err, heun_calls = solve(problem, "heun", 100, use_timestep_transform=True)
    assert heun_calls == 200 and heun_err < euler_err  # measured: 2.9e-3 vs 7.8e-3


def test_solver_is_chosen_per_call(problem):
    mu, sigma, z, y, _ = problem
    flow = GaussianFlow(mu, sigma)
    rf = RectifiedFlow(num_sampling_steps=5, cfg_scale=1.0)  # euler by default
    heun = rf.sample(flow, z, dict(y=y), SamplingSettings(sampler="heun", progress=False))
    assert flow.calls == 10
    assert not torch.allclose(heun, rf.sample(flow, z, dict(y=y), SamplingSettings(progress=False)))


def test_integrate_ends_at_t_zero():
    """A constant velocity v moves z by exactly v * t0 / 1000, whatever the grid and the solver."""
    z = torch.zeros(2, 3, dtype=torch.float64)
    ts = [torch.full((2,), t) for t in (1000.0, 700.0, 250.0)]
    for solver in ("euler", "heun", "dpm++2m"):
        out = integrate(lambda x, t: torch.ones_like(x), z, ts, 1000, solver=solver, progress=False)
        torch.testing.assert_close(out, torch.ones_like(z), atol=1e-6, rtol=0)


def test_unknown_solver_is_rejected():
    with pytest.raises(ConfigError, match="sampler"):
        RectifiedFlow(sampler="rk4")
    with pytest.raises(ConfigError, match="solver"):
        integrate(lambda x, t: x, torch.zeros(1), [torch.ones(1)], 1000, solver="rk4", progress=False)
