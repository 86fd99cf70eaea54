"""Rectified flow, Open-Sora v1.2 convention (fixture ``rflow``).

* Time: t in [0, num_timesteps] (1000); t = 1000 is pure noise, t = 0 is data.
* Path: x_t = (1 - t/1000) x0 + (t/1000) noise.
* Target: the network predicts the velocity v = x0 - noise (its first C output channels).
* Training t: uniform or logit-normal (sigmoid of N(loc, scale)) times 1000, optionally shifted
  towards noise for large videos (:func:`timestep_transform`) and/or by a constant ``shift``.
* Sampling: an ODE solver (Euler as Open-Sora, Heun, or DPM-Solver++(2M)) from t = 1000 to 0 with classifier-free
  guidance on all latent channels.
"""
from typing import Optional

import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..registry import SCHEDULERS
from .guidance import GivenFrames, latent_channels, mean_flat, model_output
from .settings import SamplingSettings, VideoSize
from .solvers import SOLVERS, integrate

# The time shift compares a video with a 512x512 image (Open-Sora v1.2 `timestep_transform`).
BASE_RESOLUTION = 512 * 512
BASE_NUM_FRAMES = 1

SAMPLE_METHODS = ("uniform", "logit-normal")


def timestep_transform(t: torch.Tensor, height, width, latent_frames, scale: float = 1.0,
                       num_timesteps: int = 1000) -> torch.Tensor:
    """Shift timesteps t (N,) in [0, num_timesteps] towards noise for large inputs.

    ratio = sqrt(H W / 512^2) * sqrt(latent frames) * scale;  s = t / num_timesteps;
    t' = num_timesteps * ratio s / (1 + (ratio - 1) s). height/width are the pixel size of the video and
    latent_frames its length as the VAE made it (Open-Sora's v1.2 VAE: 5 per 17 frames, so 15 for 51 frames;
    upstream recomputes that from the pixel frame count, and gets 0 below 17 frames, a NaN here): numbers or
    (N,) tensors. The map fixes 0 and num_timesteps and is never NaN.
    """
    def as_tensor(v):
        return torch.as_tensor(v, device=t.device).float().expand(t.shape)  # (N,)

    ratio_space = (as_tensor(height) * as_tensor(width) / BASE_RESOLUTION).sqrt()
    ratio_time = (as_tensor(latent_frames).clamp(min=1.0) / BASE_NUM_FRAMES).sqrt()  # images count 1
    return shift_timesteps(t, ratio_space * ratio_time * scale, num_timesteps)


def shift_timesteps(t: torch.Tensor, ratio, num_timesteps: int = 1000) -> torch.Tensor:
    """t' = T r s / (1 + (r - 1) s) with s = t / T, for t (N,) and a ratio r > 0 (number or (N,)).

    r > 1 moves every t towards noise (SD3's "shift"), r < 1 towards data; 0 and T stay fixed.
    """
    s = t / num_timesteps  # (N,) in [0, 1]
    return ratio * s / (1 + (ratio - 1) * s) * num_timesteps


@SCHEDULERS.register_module("rflow")
class RectifiedFlow:
    """Rectified-flow objective and sampler with the same interface as :class:`IDDPM`.

    Args:
        num_timesteps: the length of the time axis (t = num_timesteps is noise).
        num_sampling_steps: solver steps of :meth:`sample`.
        cfg_scale: default classifier-free guidance scale of :meth:`sample` (1 = no guidance).
        sample_method: training t distribution, "uniform" or "logit-normal" (sigmoid(N(loc, scale))).
        use_timestep_transform: shift t towards noise by the video size (training and sampling).
        transform_scale: extra factor on the shift ratio during training.
        shift: a constant ratio r (:func:`shift_timesteps`) applied to training and sampling t after
            any size transform. Where a clip's content is already visible at high noise (small,
            high-contrast latents), r > 1 puts training and solver steps where the layout is decided.
        use_discrete_timesteps: integer timesteps (training: randint; sampling: rounded).
        sampler: the default ODE solver of :meth:`sample`, one of ``SAMPLERS``: "euler" (Open-Sora, one
            network call per step), "heun" (2nd order, two calls per step) or "dpm++2m" (2nd order
            multistep, one call per step; :func:`~opensora_lite.schedulers.solvers.integrate`).
    """

    SAMPLERS = SOLVERS

    def __init__(self, num_timesteps: int = 1000, num_sampling_steps: int = 10, cfg_scale: float = 4.0,
                 sample_method: str = "uniform", loc: float = 0.0, scale: float = 1.0,
                 use_timestep_transform: bool = False, transform_scale: float = 1.0,
                 use_discrete_timesteps: bool = False, sampler: str = "euler", shift: float = 1.0):
        if sample_method not in SAMPLE_METHODS:
            raise ConfigError(f"unknown rflow sample_method '{sample_method}'; choose one of {SAMPLE_METHODS}")
        if sampler not in SOLVERS:
            raise ConfigError(f"unknown rflow sampler '{sampler}'; choose one of {SOLVERS}")
        if not shift > 0:
            raise ConfigError(f"rflow shift must be a positive number, got {shift!r}")
        if not (num_timesteps >= 1 and num_sampling_steps >= 1):
            raise ConfigError(f"rflow num_timesteps and num_sampling_steps must be >= 1, got {num_timesteps} "
                              f"and {num_sampling_steps}")
        self.num_timesteps = num_timesteps
        self.num_sampling_steps = num_sampling_steps
        self.cfg_scale = cfg_scale
        self.sample_method = sample_method
        self.loc, self.scale = loc, scale
        self.use_timestep_transform = use_timestep_transform
        self.transform_scale = transform_scale
        self.use_discrete_timesteps = use_discrete_timesteps
        self.sampler = sampler
        self.shift = float(shift)

    ##################################################################################
    #                                   Training                                     #
    ##################################################################################

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = (1 - t/T) x0 + (t/T) noise, for x0, noise (N, ...) and t (N,)."""
        keep = 1 - t.float() / self.num_timesteps  # (N,), 1 at data, 0 at noise
        keep = keep.view(-1, *([1] * (x0.ndim - 1)))  # (N, 1, ...)
        return keep * x0 + (1 - keep) * noise

    def sample_t(self, n: int, device=None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Training timesteps (n,) in [0, num_timesteps], before any time shift."""
        if self.use_discrete_timesteps:
            return torch.randint(0, self.num_timesteps, (n,), device=device, generator=generator)
        if self.sample_method == "uniform":
            return torch.rand(n, device=device, generator=generator) * self.num_timesteps
        normal = torch.randn(n, device=device, generator=generator) * self.scale + self.loc
        return torch.sigmoid(normal) * self.num_timesteps  # logit-normal

    def sample_timesteps(self, n: int, size: Optional[VideoSize] = None, device=None,
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Training timesteps (n,) as ``training_losses`` draws them: sampled, then shifted by the video
        ``size`` when ``use_timestep_transform`` and by ``shift``."""
        t = self.sample_t(n, device=device, generator=generator)
        if self.use_timestep_transform:
            t = self._shift(t, size, self.transform_scale)
        return shift_timesteps(t, self.shift, self.num_timesteps) if self.shift != 1.0 else t

    def training_losses(self, model, x0: torch.Tensor, cond: dict, t: Optional[torch.Tensor] = None,
                        noise: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None,
                        size: Optional[VideoSize] = None) -> dict:
        """Velocity regression loss, ``{"loss": (N,)}``.

        x0 (N, C, T, H, W) clean latents; ``cond`` the condition the network reads. An explicit t (N,) is
        used as is; otherwise t is sampled and shifted (by ``size`` when ``use_timestep_transform``).
        mask (N, T) bool: frames where it is False are given, stay clean (x0), do not count in the loss, and
        the model is told so (``frame_mask``).
        """
        if t is None:
            t = self.sample_timesteps(x0.shape[0], size, device=x0.device)
        if noise is None:
            noise = torch.randn_like(x0)
        x_t = self.add_noise(x0, noise, t)  # (N, C, T, H, W)
        if mask is not None:
            x_t = torch.where(mask[:, None, :, None, None], x_t, x0)
        v_pred = latent_channels(model_output(model, x_t, t, cond, frame_mask=mask), x0.shape[1])  # (N, C, T, H, W)
        loss = mean_flat((v_pred - (x0 - noise)).pow(2), mask=mask)  # (N,)
        return {"loss": loss}

    def _shift(self, t: torch.Tensor, size: Optional[VideoSize], scale: float = 1.0) -> torch.Tensor:
        if size is None:
            raise ConfigError("use_timestep_transform needs the video size: pass size=VideoSize(height, width, "
                              "latent_frames)")
        return timestep_transform(t, size.height, size.width, size.latent_frames, scale=scale,
                                  num_timesteps=self.num_timesteps)

    ##################################################################################
    #                                   Sampling                                     #
    ##################################################################################

    def sampling_timesteps(self, n: int, num_steps: Optional[int] = None, size: Optional[VideoSize] = None,
                           device=None) -> list:
        """The solver's timesteps: a list of num_steps (n,) float tensors from num_timesteps down.

        ts_i = (1 - i / num_steps) * num_timesteps (rounded if discrete), shifted if
        ``use_timestep_transform`` and by ``shift``; the solver's last step ends at t = 0.
        """
        num_steps = num_steps or self.num_sampling_steps
        ts = [(1.0 - i / num_steps) * self.num_timesteps for i in range(num_steps)]
        if self.use_discrete_timesteps:
            ts = [float(round(t)) for t in ts]
        ts = [torch.full((n,), t, dtype=torch.float32, device=device) for t in ts]
        if self.use_timestep_transform:
            ts = [self._shift(t, size) for t in ts]
        if self.shift != 1.0:
            ts = [shift_timesteps(t, self.shift, self.num_timesteps) for t in ts]
        return ts

    @torch.no_grad()
    def sample(self, model, z: torch.Tensor, cond: dict, settings: Optional[SamplingSettings] = None, *,
               size: Optional[VideoSize] = None, given: Optional[GivenFrames] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Integrate noise z (N, C, T, H, W) to clean latents (N, C, T, H, W).

        ``cond``: the condition (guidance asks the model for its null counterpart); ``settings``: steps,
        guidance, solver and progress bar (None fields: this scheduler's defaults); ``size``: the video, read
        by the time shift when ``use_timestep_transform``. ``given`` frames are held at their clean latents at
        every step, in both guidance branches. The flow is deterministic given z: ``generator`` is used only
        to re-noise given frames with a ``strength`` (Open-Sora's partial conditioning).
        """
        settings = (settings or SamplingSettings()).resolved(self)
        channels = z.shape[1]
        timesteps = self.sampling_timesteps(z.shape[0], settings.steps, size, device=z.device)

        if given is not None and given.strength is not None:
            if settings.sampler != "euler":
                raise ConfigError(f"given frames with a strength (re-noised part way) need the euler sampler, "
                                  f"not {settings.sampler!r}")
            return self._sample_partly_given(model, z, cond, settings, timesteps, given, generator)
        if given is None:
            def velocity(x, t):
                return latent_channels(model_output(model, x, t, cond, settings.cfg_scale), channels)  # (N, C, T, H, W)
        else:
            z = given.hold(z)  # (N, C, T, H, W): given frames start, and stay, clean

            def velocity(x, t):
                v = model_output(model, x, t, cond, settings.cfg_scale, frame_mask=given.mask)  # (N, C or 2C, ...)
                return given.zero_given(latent_channels(v, channels))  # (N, C, T, H, W)

        return integrate(velocity, z, timesteps, self.num_timesteps, settings.sampler, settings.progress)

    def _sample_partly_given(self, model, z, cond, settings, timesteps, given: GivenFrames, generator):
        """Open-Sora 1.2's Euler loop with frame conditioning: at every step the frames active at t
        (:meth:`GivenFrames.active`) are generated, those that just became active are first re-noised to t,
        and the others end the step where they began. One noise draw per step, as upstream."""
        channels, frames = z.shape[1], (slice(None), None, slice(None), None, None)  # (N, T) -> (N, 1, T, 1, 1)
        z = given.hold(z)  # (N, C, T, H, W)
        was_active = given.mask
        steps = list(zip(timesteps, [*timesteps[1:], torch.zeros_like(timesteps[0])]))
        for t, t_next in tqdm(steps, disable=not settings.progress, desc="rflow euler"):
            start = z
            active = given.active(t, self.num_timesteps)  # (N, T)
            noise = renoise_draw(z, generator)  # (N, C, T, H, W)
            z = torch.where((active & ~was_active)[frames], self.add_noise(start, noise, t), start)
            was_active = active
            v = latent_channels(model_output(model, z, t, cond, settings.cfg_scale, frame_mask=active), channels)
            z = z + v * ((t - t_next) / self.num_timesteps).view(-1, 1, 1, 1, 1)
            z = torch.where(active[frames], z, start)
        return z


def renoise_draw(like: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    """The noise of one step of :meth:`RectifiedFlow._sample_partly_given`, shaped like ``like``."""
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
