"""The two small objects a sampling call takes besides the model, the noise and the condition.

* :class:`SamplingSettings`: how to sample (steps, guidance, sampler, progress bar); what is left None is the
  scheduler's own default. One object travels from the CLI or ``VideoPipeline.__call__`` to the solver loop.
* :class:`VideoSize`: what the latents stand for (pixel height and width, latent frames as the VAE made them).
  Only the rectified-flow time shift reads it; it is never mixed into the condition the network sees.
"""
from dataclasses import dataclass, replace
from typing import Optional, Union

import torch

from ..config import check_settings
from ..errors import ConfigError

Number = Union[int, float, torch.Tensor]  # a number, or (N,) values, one per sample


@dataclass(frozen=True)
class SamplingSettings:
    """Settings of one sampling call. ``None``: the scheduler's default (``num_sampling_steps``, ``cfg_scale``,
    ``sampler``). A non-positive step count, a non-finite guidance scale (NaN or inf used to give an all-black
    video) or a sampler name of the wrong type is a ConfigError."""

    steps: Optional[int] = None  # solver steps (network calls for first-order solvers)
    cfg_scale: Optional[float] = None  # classifier-free guidance scale; 1 = the conditional output alone
    sampler: Optional[str] = None  # one of the scheduler's SAMPLERS
    progress: bool = True  # a tqdm bar over the steps

    def __post_init__(self):
        if self.steps is not None:
            check_settings(dict(steps=self.steps), "sampling", positive_ints=("steps",))
        if self.cfg_scale is not None:
            check_settings(dict(cfg_scale=self.cfg_scale), "sampling", numbers=("cfg_scale",))
        if self.sampler is not None and not isinstance(self.sampler, str):
            raise ConfigError(f"sampling.sampler must be a sampler name, got {self.sampler!r}")

    def resolved(self, scheduler) -> "SamplingSettings":
        """These settings with the scheduler's defaults filled in; an unknown sampler is a ConfigError."""
        sampler = self.sampler or scheduler.sampler
        if sampler not in scheduler.SAMPLERS:
            raise ConfigError(f"unknown sampler {sampler!r} for {type(scheduler).__name__}; choose one of "
                              f"{', '.join(scheduler.SAMPLERS)}")
        cfg_scale = scheduler.cfg_scale if self.cfg_scale is None else self.cfg_scale
        return replace(self, cfg_scale=cfg_scale, sampler=sampler)


@dataclass(frozen=True)
class VideoSize:
    """The video latents stand for: ``height`` and ``width`` in pixels, ``latent_frames`` as its VAE made them
    (``vae.get_latent_size``, or the latents' own time axis). Each is a number or (N,) values."""

    height: Number
    width: Number
    latent_frames: Number
