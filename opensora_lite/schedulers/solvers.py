"""ODE solvers for rectified-flow sampling: Euler (Open-Sora's) and Heun (2nd order).

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

SOLVERS = ("euler", "heun")


def _intervals(timesteps: List[torch.Tensor]):
    """Yield (t, t_next, dt) with dt = t - t_next; the last interval ends at t_next = 0."""
    for i, t in enumerate(timesteps):
        t_next = timesteps[i + 1] if i + 1 < len(timesteps) else torch.zeros_like(t)
        yield t, t_next, t - t_next


def _per_sample(dt: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1, 1, ...) to broadcast against z."""
    return dt.view(-1, *([1] * (z.ndim - 1)))


def integrate(velocity: Callable, z: torch.Tensor, timesteps: List[torch.Tensor], num_timesteps: int,
              solver: str = "euler", progress: bool = True) -> torch.Tensor:
    """Integrate the flow from noise z (at ``timesteps[0]``) to data (t = 0).

    * ``euler``: z <- z + v(z, t) dt; one network call per step (Open-Sora's sampler).
    * ``heun``: the trapezoid rule with an Euler predictor (Karras et al. 2022, Alg. 1):
      z' = z + v(z, t) dt, z <- z + (v(z, t) + v(z', t_next)) dt / 2; two calls per step, error O(dt^2).
    """
    if solver not in SOLVERS:
        raise ConfigError(f"unknown rectified-flow solver '{solver}'; choose one of {SOLVERS}")
    for t, t_next, dt in tqdm(list(_intervals(timesteps)), disable=not progress, desc=f"rflow {solver}"):
        dt = _per_sample(dt / num_timesteps, z)  # (N, 1, ...), fraction of the whole path
        v = velocity(z, t)  # (N, C, ...)
        if solver == "euler":
            z = z + v * dt
        else:
            v_next = velocity(z + v * dt, t_next)  # slope at the Euler prediction
            z = z + 0.5 * (v + v_next) * dt
    return z
