"""What every objective shares when it calls the network: guidance, frame conditions and loss reduction.

The network contract (see ``opensora_lite.models.stdit``):

* ``model(x, t, frame_mask=None, **cond)`` with x (N, C, T, H, W), t (N,) int or float timesteps and
  ``cond`` a dict of (N, ...) tensors that only the model reads (for STDiT: ``y``, class ids). It returns
  (N, C, ...) or (N, 2C, ...) when it also predicts a variance (``learn_sigma``).
* ``frame_mask`` (N, T) bool marks the latent frames being generated (noised); the others are given,
  clean latents (image-to-video, continuation). The objectives hold given frames at their clean values
  and leave them out of the loss; the model sees which frames are clean.
* ``model.null_cond(cond)``: the unconditional counterpart of ``cond``, for classifier-free guidance.

The size of the video (``settings.VideoSize``) and the sampling settings (``settings.SamplingSettings``)
are arguments of their own: ``cond`` holds only what the network reads.
"""
from dataclasses import dataclass
from typing import Dict, Optional

import torch

from ..errors import ConfigError, ShapeError


@dataclass
class GivenFrames:
    """Latent frames given as a condition: ``latents`` (N, C, T, H, W) hold the clean values where
    ``mask`` (N, T) bool is False; frames where it is True are generated.

    ``strength`` (N, T) in [0, 1], optional, is Open-Sora 1.2's partial conditioning (its mask values between
    0 and 1): a given frame with strength s > 0 is held until the solver reaches t = s * num_timesteps, then
    re-noised to that t and generated from there on (s = 0: given throughout).
    """

    latents: torch.Tensor
    mask: torch.Tensor
    strength: Optional[torch.Tensor] = None

    def __post_init__(self):
        n, _, t = self.latents.shape[:3]
        if self.mask.shape != (n, t) or self.mask.dtype != torch.bool:
            raise ShapeError(f"GivenFrames.mask must be a bool (N, T) = {(n, t)} tensor, "
                             f"got {self.mask.dtype} {tuple(self.mask.shape)}")
        if self.strength is not None:
            if self.strength.shape != (n, t):
                raise ShapeError(f"GivenFrames.strength must be (N, T) = {(n, t)}, got {tuple(self.strength.shape)}")
            if not bool(((self.strength >= 0) & (self.strength <= 1)).all()):
                raise ConfigError("GivenFrames.strength must lie in [0, 1] (0: given throughout, 1: generated)")

    def active(self, t: torch.Tensor, num_timesteps: int) -> torch.Tensor:
        """(N, T) bool: the frames generated at solver time t (N,): masked ones, and partial ones once
        t <= strength * num_timesteps."""
        if self.strength is None:
            return self.mask
        return self.mask | (self.strength.float() * num_timesteps >= t[:, None])

    def hold(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, C, T, H, W) with the given frames set to their clean latents."""
        return torch.where(self.mask[:, None, :, None, None], x, self.latents.to(x.dtype))

    def zero_given(self, v: torch.Tensor) -> torch.Tensor:
        """An update v (N, C, T, H, W) that leaves the given frames where they are."""
        return torch.where(self.mask[:, None, :, None, None], v, torch.zeros((), dtype=v.dtype, device=v.device))


def combine_guided(out: torch.Tensor, channels: int, cfg_scale: float) -> torch.Tensor:
    """Classifier-free guidance on a (2N, C_out, ...) output whose halves are conditional and null.

    The first ``channels`` output channels become ``uncond + cfg_scale * (cond - uncond)`` in both halves;
    the others (a learned variance) are returned unguided. Returns (2N, C_out, ...).
    """
    if not 1 <= channels <= out.shape[1]:
        raise ConfigError(f"cfg_channels must be in [1, {out.shape[1]}], got {channels}")
    guided, rest = out[:, :channels], out[:, channels:]  # (2N, c, ...), (2N, C_out - c, ...)
    cond, uncond = guided.chunk(2, dim=0)  # each (N, c, ...)
    # lerp(uncond, cond, s) = uncond + s * (cond - uncond), and it is exact at s = 1 (returns cond).
    guided = torch.lerp(uncond, cond, float(cfg_scale))  # (N, c, ...)
    return torch.cat([torch.cat([guided, guided], dim=0), rest], dim=1)  # (2N, C_out, ...)


def _cat_cond(cond: Dict, null: Dict) -> Dict:
    if set(cond) != set(null):
        raise ShapeError(f"the null condition has keys {sorted(null)}, the condition {sorted(cond)}")
    return {k: torch.cat([cond[k], null[k]]) for k in cond}  # each (2N, ...)


def model_output(model, x: torch.Tensor, t: torch.Tensor, cond: Dict, cfg_scale: Optional[float] = None,
                 cfg_channels: Optional[int] = None, frame_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Call the network on x (N, C, ...) at timesteps t (N,), with classifier-free guidance if asked.

    With ``cfg_scale`` not None and not 1 the model runs once on the conditional and null halves
    (``model.null_cond(cond)``) and the first ``cfg_channels`` channels (default: all latent channels)
    are guided. Frame conditions go to both halves. Returns the output for the N rows: (N, C or 2C, ...).
    """
    frames = {} if frame_mask is None else {"frame_mask": frame_mask}
    if cfg_scale is None or cfg_scale == 1.0:
        return model(x, t, **frames, **cond)  # (N, C or 2C, ...)
    null_cond = getattr(model, "null_cond", None)
    if null_cond is None:
        raise ConfigError(f"cfg_scale={cfg_scale} needs a model with null_cond(cond) (the unconditional "
                          f"branch); this one has none: sample with cfg_scale 1")
    n = x.shape[0]
    frames = {k: torch.cat([v, v]) for k, v in frames.items()}  # (2N, T): the same given frames in both halves
    out = model(torch.cat([x, x]), torch.cat([t, t]), **frames, **_cat_cond(cond, null_cond(cond)))  # (2N, ...)
    return combine_guided(out, x.shape[1] if cfg_channels is None else cfg_channels, cfg_scale)[:n]


def latent_channels(out: torch.Tensor, channels: int) -> torch.Tensor:
    """The first ``channels`` output channels: drop a learned variance (out has 2C channels)."""
    if out.shape[1] == 2 * channels:
        return out[:, :channels]
    if out.shape[1] != channels:
        raise ShapeError(f"network output has {out.shape[1]} channels, expected {channels} or {2 * channels}")
    return out


def mean_flat(x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean over all dimensions but the batch: (N, ...) -> (N,).

    With a frame mask (N, T) (x is (N, C, T, H, W)) only frames where the mask is True count
    (Open-Sora's masked mean_flat).
    """
    if mask is None:
        return x.mean(dim=tuple(range(1, x.ndim)))
    if x.ndim != 5 or mask.shape != (x.shape[0], x.shape[2]):
        raise ShapeError(f"mask must be (N, T) = {(x.shape[0], x.shape[2]) if x.ndim == 5 else '?'} for x "
                         f"(N, C, T, H, W), got mask {tuple(mask.shape)} and x {tuple(x.shape)}")
    per_frame = x.transpose(1, 2).flatten(2)  # (N, T, C*H*W)
    total = (per_frame * mask[:, :, None]).flatten(1).sum(dim=1)  # (N,)
    return total / (mask.sum(dim=1).clamp(min=1) * per_frame.shape[-1])  # an all-False row gives 0, not NaN
