"""What both schedulers share when they call the network: classifier-free guidance and loss reduction.

The network contract (see ``opensora_lite.models.stdit``):

* ``model(x, t, y)`` with x (N, C, T, H, W), t (N,) int or float timesteps, y (N,) class ids;
  it returns (N, C, ...) or (N, 2C, ...) when it also predicts a variance (``learn_sigma``).
* ``model.forward_with_cfg(x2, t2, y2, cfg_scale, cfg_channels=None)`` with DiT's batch layout:
  x2 = cat([x, x]), y2 = cat([y, y_null]); the first ``cfg_channels`` output channels (default: all
  C latent channels) are guided, ``uncond + cfg_scale * (cond - uncond)``, and both halves of the
  output are equal on them.

``model_kwargs`` of a scheduler holds ``y``, ``y_null`` (needed when cfg_scale != 1) and optionally the
pixel size of the video (``height``, ``width``, ``num_frames``), which only the rectified-flow time shift
reads: :func:`split_model_kwargs` takes them out before the network sees the rest.
"""
from typing import Dict, Optional, Tuple

import torch

from ..errors import ConfigError

# Keys that describe the video, not the condition: never passed to the network.
SIZE_KEYS = ("height", "width", "num_frames")


def split_model_kwargs(model_kwargs: Optional[dict]) -> Tuple[Dict, Dict]:
    """Return ``(size, cond)``: the video-size keys and everything else (``y``, ``y_null``, ...).

    The caller's dict is not modified.
    """
    model_kwargs = dict(model_kwargs or {})
    size = {k: model_kwargs.pop(k) for k in SIZE_KEYS if k in model_kwargs}
    return size, model_kwargs


def model_output(model, x: torch.Tensor, t: torch.Tensor, cond: Dict, cfg_scale: Optional[float] = None,
                 cfg_channels: Optional[int] = None) -> torch.Tensor:
    """Call the network on x (N, C, ...) at timesteps t (N,), with classifier-free guidance if asked.

    ``cond`` holds ``y`` (N,) and, when ``cfg_scale`` is not None and not 1, ``y_null`` (N,).
    Returns the network's output for the N rows: (N, C or 2C, ...).
    """
    cond = dict(cond)
    y, y_null = cond.pop("y"), cond.pop("y_null", None)
    if cfg_scale is None or cfg_scale == 1.0:
        return model(x, t, y=y, **cond)  # (N, C or 2C, ...)
    if y_null is None:
        raise ConfigError(f"cfg_scale={cfg_scale} needs the null class ids: pass model_kwargs['y_null'] (N,)")
    n = x.shape[0]
    x2 = torch.cat([x, x])  # (2N, C, ...), first half conditional, second half null
    t2 = torch.cat([t, t])  # (2N,)
    y2 = torch.cat([y, y_null])  # (2N,)
    out = model.forward_with_cfg(x2, t2, y2, cfg_scale, cfg_channels=cfg_channels, **cond)  # (2N, C or 2C, ...)
    return out[:n]


def latent_channels(out: torch.Tensor, channels: int) -> torch.Tensor:
    """The first ``channels`` output channels: drop a learned variance (out has 2C channels)."""
    if out.shape[1] == 2 * channels:
        return out[:, :channels]
    if out.shape[1] != channels:
        raise ValueError(f"network output has {out.shape[1]} channels, expected {channels} or {2 * channels}")
    return out


def mean_flat(x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean over all dimensions but the batch: (N, ...) -> (N,).

    With a frame mask (N, T) (x is (N, C, T, H, W)) only frames where the mask is True count
    (Open-Sora's masked mean_flat).
    """
    if mask is None:
        return x.mean(dim=tuple(range(1, x.ndim)))
    if x.ndim != 5 or mask.shape != (x.shape[0], x.shape[2]):
        raise ValueError(f"mask must be (N, T) = {(x.shape[0], x.shape[2]) if x.ndim == 5 else '?'} for x "
                         f"(N, C, T, H, W), got mask {tuple(mask.shape)} and x {tuple(x.shape)}")
    per_frame = x.transpose(1, 2).flatten(2)  # (N, T, C*H*W)
    total = (per_frame * mask[:, :, None]).flatten(1).sum(dim=1)  # (N,)
    return total / (mask.sum(dim=1).clamp(min=1) * per_frame.shape[-1])  # an all-False row gives 0, not NaN
