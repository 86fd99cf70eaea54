"""Diffusion objectives and samplers, registered in :data:`opensora_lite.registry.SCHEDULERS`.

Both share ``training_losses(model, x0, cond, t=None, noise=None, mask=None, size=None) -> {"loss": (N,), ...}``
and ``sample(model, z, cond, settings=None, *, size=None, given=None, generator=None)``, so a config swaps
them by name: ``dict(type="rflow", ...)`` or ``dict(type="iddpm", ...)``.
"""
from .guidance import GivenFrames, mean_flat, model_output
from .iddpm import IDDPM, DiffusionSchedule, space_timesteps
from .rectified_flow import RectifiedFlow, shift_timesteps, timestep_transform
from .settings import SamplingSettings, VideoSize
from .solvers import integrate

__all__ = ["IDDPM", "DiffusionSchedule", "GivenFrames", "RectifiedFlow", "SamplingSettings", "VideoSize", "integrate",
           "mean_flat", "model_output", "shift_timesteps", "space_timesteps", "timestep_transform"]
