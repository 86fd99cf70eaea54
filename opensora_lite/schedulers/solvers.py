"""ODE solvers for rectified-flow sampling: Euler (Open-Sora's), Heun (2nd order, 2 calls per step) and
DPM-Solver++(2M) (2nd order multistep, 1 call per step).

Time convention (Open-Sora v1.2): t in [0, T_max] with T_max = num_timesteps = 1000, t = T_max is pure
noise, t = 0 is data. The network predicts v = x0 - noise, so along x_t = (1 - t/T_max) x0 + (t/T_max) noise
the latent moves as dz = v * dt / T_max when t *decreases* by dt > 0.

A solver integrates from ``timesteps[0]`` down to 0 through the given (descending) timesteps; the last
interval ends at t = 0. ``velocity(z, t)`` is called with z (N, ...) and t (N,) float.
"""
from typing import Callable, List

import torch
from tqdm.auto import tqdm

from ..errors import ConfigError

SOLVERS = ("euler", "heun", "dpm++2m")


def _intervals(timesteps: List[torch.Tensor]):
    """Yield (t, t_next, dt) with dt = t - t_next; the last interval ends at t_next = 0."""
    for i, t in enumerate(timesteps):
        t_next = timesteps[i + 1] if i + 1 < len(timesteps) else torch.zeros_like(t)
        yield t, t_next, t - t_next


def _per_sample(dt: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1, 1, ...) to broadcast against z."""
    return dt.view(-1, *([1] * (z.ndim - 1)))


def flow_log_snr(s: torch.Tensor) -> torch.Tensor:
    """lambda = log(alpha / sigma) of x_s = (1 - s) x0 + s noise, for s = t / T_max in [0, 1] (float64).

    -inf at pure noise (s = 1), +inf at data (s = 0); DPM-Solver++ steps are uniform-order in lambda.
    """
    s = s.double()
    return torch.log1p(-s) - torch.log(s)


def integrate(velocity: Callable, z: torch.Tensor, timesteps: List[torch.Tensor], num_timesteps: int,
              solver: str = "euler", progress: bool = True) -> torch.Tensor:
    """Integrate the flow from noise z (at ``timesteps[0]``) to data (t = 0).

    * ``euler``: z <- z + v(z, t) dt; one network call per step (Open-Sora's sampler).
    * ``heun``: the trapezoid rule with an Euler predictor (Karras et al. 2022, Alg. 1):
      z' = z + v(z, t) dt, z <- z + (v(z, t) + v(z', t_next)) dt / 2; two calls per step, error O(dt^2).
    * ``dpm++2m``: DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) on the data prediction; one call per step,
      error O(dt^2). See :func:`_dpm_solver_2m`.
    """
    if solver not in SOLVERS:
        raise ConfigError(f"unknown rectified-flow solver '{solver}'; choose one of {SOLVERS}")
    if solver == "dpm++2m":
        return _dpm_solver_2m(velocity, z, timesteps, num_timesteps, progress)
    for t, t_next, dt in tqdm(list(_intervals(timesteps)), disable=not progress, desc=f"rflow {solver}"):
        dt = _per_sample(dt / num_timesteps, z)  # (N, 1, ...), fraction of the whole path
        v = velocity(z, t)  # (N, C, ...)
        if solver == "euler":
            z = z + v * dt
        else:
            v_next = velocity(z + v * dt, t_next)  # slope at the Euler prediction
            z = z + 0.5 * (v + v_next) * dt
    return z


def _dpm_solver_2m(velocity: Callable, z: torch.Tensor, timesteps: List[torch.Tensor], num_timesteps: int,
                   progress: bool) -> torch.Tensor:
    """DPM-Solver++(2M) for the flow x_s = (1 - s) x0 + s noise (alpha = 1 - s, sigma = s, s = t / T_max).

    The data prediction is x0 = x_s + s v (since v = x0 - noise). The first-order DPM-Solver++ step from s
    to s' is x' = (s'/s) x + (1 - s'/s) x0, which for this path *is* the Euler step x + v (s - s'). 2M
    replaces x0 by the extrapolation D = x0_i + (x0_i - x0_{i-1}) / (2 r), r = h_{i-1} / h_i with
    h_i = lambda(s_{i+1}) - lambda(s_i) (:func:`flow_log_snr`). Written as an Euler step with a corrected
    velocity, x' = x + (s - s') (D - x) / s = x + (s - s') (v_i + (x0_i - x0_{i-1}) / (2 r s)):

    * a given frame (velocity exactly 0, so x0_i = x0_{i-1} = x) moves by exactly 0;
    * the first step (no history) is Euler, and so is the second when the first starts at pure noise
      (lambda = -inf, r = inf); the last step (s' = 0, h = inf) is Euler too ("lower order final",
      DPM-Solver++ and diffusers), which lands on the data prediction x0_i.
    """
    x0_prev, h_prev = None, None
    steps = list(_intervals(timesteps))
    for i, (t, t_next, dt) in enumerate(tqdm(steps, disable=not progress, desc="rflow dpm++2m")):
        s, s_next = t.double() / num_timesteps, t_next.double() / num_timesteps  # (N,) float64
        v = velocity(z, t)  # (N, C, ...)
        x0 = z + _per_sample(s.to(z.dtype), z) * v  # (N, C, ...) data prediction
        h = flow_log_snr(s_next) - flow_log_snr(s)  # (N,), inf on the final step
        if x0_prev is not None and i < len(steps) - 1:
            correction = h / (2 * h_prev * s)  # (N,) = 1 / (2 r s); 0 where h_prev = inf
            v = v + _per_sample(correction.to(z.dtype), z) * (x0 - x0_prev)
        z = z + v * _per_sample((dt / num_timesteps).to(z.dtype), z)
        x0_prev, h_prev = x0, h
    return z
