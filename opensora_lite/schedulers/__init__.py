"""Diffusion objectives and samplers, registered in :data:`opensora_lite.registry.SCHEDULERS`.

Both share ``training_losses(model, x0, model_kwargs, t=None, noise=None, mask=None) -> {"loss": (N,), ...}``
and ``sample(model, z, model_kwargs, cfg_scale=None, num_steps=None, progress=True, generator=None, ...)``,
so a config swaps them by name: ``dict(type="rflow", ...)`` or ``dict(type="iddpm", ...)``.
"""
from .guidance import GivenFrames, mean_flat, model_output, split_model_kwargs
from .iddpm import IDDPM, DiffusionSchedule, space_timesteps
from .rectified_flow import RectifiedFlow, shift_timesteps, timestep_transform
from .solvers import integrate

__all__ = ["IDDPM", "DiffusionSchedule", "RectifiedFlow", "integrate", "mean_flat", "model_output",
           "shift_timesteps", "space_timesteps", "split_model_kwargs", "timestep_transform"]
