"""Open-Sora v1.2's video VAE: the per-frame 2-D VAE, then the temporal VAE on micro-chunks, then scale/shift.

encode: x (N, 3, T, H, W) -> spatial VAE per frame (x scaling_factor) -> (N, 4, T, H/8, W/8)
        -> temporal VAE on independent chunks of ``micro_frame_size`` frames (17 -> 5 latent frames each)
        -> z = (z - shift) / scale, (N, 4, T', H/8, W/8) with T' = 5 * (T // 17) + ceil((T % 17) / 4).
decode mirrors it. Attribute and buffer names equal Open-Sora's (``spatial_vae.module.*``,
``temporal_vae.*``, ``scale``, ``shift``) so its checkpoints load with no key map.
"""
from typing import List, Optional, Sequence, Union

import torch
from torch import nn

from ...errors import ConfigError, DataError
from ...registry import MODELS, build_module

# Open-Sora v1.2 runs the temporal VAE on chunks of 17 frames (5 latent frames each).
OPEN_SORA_MICRO_FRAME_SIZE = 17


def _channel_vector(value: Union[float, Sequence[float]], channels: int, name: str) -> torch.Tensor:
    """A scalar or per-channel sequence as a (1, C, 1, 1, 1) float32 tensor."""
    vector = torch.as_tensor(value, dtype=torch.float32).flatten()
    if vector.numel() == 1:
        vector = vector.expand(channels)
    if vector.numel() != channels:
        raise ConfigError(f"VideoAutoencoderPipeline: {name} needs 1 or {channels} values, got {vector.numel()}")
    return vector.clone().view(1, channels, 1, 1, 1)


@MODELS.register_module("VideoAutoencoderPipeline")
class VideoAutoencoderPipeline(nn.Module):
    """Spatial VAE + temporal VAE with per-channel latent normalisation ``(z - shift) / scale``.

    Args:
        vae_2d, vae_temporal: config dicts (built through the MODELS registry) or modules.
        micro_frame_size: frames per independent temporal-VAE chunk (Open-Sora: 17); None runs the
            temporal VAE over the whole clip at once.
        shift, scale: scalars or per-latent-channel values (Open-Sora v1.2: see configs/vae/opensora_v1_2.py).
        freeze_vae_2d: turn off gradients of the spatial VAE.
    """

    def __init__(self, vae_2d, vae_temporal, micro_frame_size: Optional[int] = OPEN_SORA_MICRO_FRAME_SIZE,
                 shift: Union[float, Sequence[float]] = 0.0, scale: Union[float, Sequence[float]] = 1.0,
                 freeze_vae_2d: bool = False):
        super().__init__()
        self.spatial_vae = build_module(vae_2d, MODELS, where="vae_2d")
        self.temporal_vae = build_module(vae_temporal, MODELS, where="vae_temporal")
        if self.spatial_vae.out_channels != self.temporal_vae.in_channels:
            raise ConfigError(f"VideoAutoencoderPipeline: the 2-D VAE gives {self.spatial_vae.out_channels} latent "
                              f"channels but the temporal VAE takes {self.temporal_vae.in_channels}")
        if micro_frame_size is not None and micro_frame_size < 1:
            raise ConfigError(f"VideoAutoencoderPipeline: micro_frame_size must be >= 1 or None, "
                              f"got {micro_frame_size}")
        self.micro_frame_size = micro_frame_size
        self.micro_z_frame_size = (None if micro_frame_size is None
                                   else self.temporal_vae.get_latent_size([micro_frame_size, None, None])[0])
        if freeze_vae_2d:
            self.spatial_vae.requires_grad_(False)
        self.out_channels = self.temporal_vae.embed_dim
        self.spatial_factor = self.spatial_vae.spatial_factor
        self.temporal_factor = self.temporal_vae.time_downsample_factor
        self.register_buffer("scale", _channel_vector(scale, self.out_channels, "scale"))  # (1, C, 1, 1, 1)
        self.register_buffer("shift", _channel_vector(shift, self.out_channels, "shift"))  # (1, C, 1, 1, 1)

    def get_latent_size(self, input_size: Sequence[Optional[int]]) -> List[Optional[int]]:
        """[T, H, W] -> [T', H', W']: T' = 5 * (T // 17) + ceil((T % 17) / 4) for micro_frame_size 17."""
        size = self.temporal_vae.get_latent_size(self.spatial_vae.get_latent_size(input_size))
        if self.micro_frame_size is None or input_size[0] is None:
            return size
        full_chunks, rest = divmod(input_size[0], self.micro_frame_size)
        rest_latent = self.temporal_vae.get_latent_size([rest, None, None])[0] if rest else 0
        size[0] = self.micro_z_frame_size * full_chunks + rest_latent
        return size

    def _frame_chunks(self, num_frames: int) -> List[slice]:
        step = self.micro_frame_size or num_frames
        return [slice(i, min(i + step, num_frames)) for i in range(0, num_frames, step)]

    def encode(self, x: torch.Tensor, sample_posterior: bool = False,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Normalised latents (N, C, T', H', W') of x (N, 3, T, H, W) in [-1, 1].

        ``sample_posterior=True`` samples both posteriors, as Open-Sora always does (2-D draws first, one per
        micro-batch, then one temporal draw per micro-chunk); the default uses their means.
        """
        frames = self.image_encode(x, sample_posterior=sample_posterior, generator=generator)
        return self.time_encode(frames, sample_posterior=sample_posterior, generator=generator)

    def image_encode(self, x: torch.Tensor, sample_posterior: bool = False,
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The 2-D half of :meth:`encode`: per-frame latents (N, c, T, h, w) of x (N, 3, T, H, W)."""
        return self.spatial_vae.encode(x, sample_posterior=sample_posterior, generator=generator)

    def time_encode(self, frames: torch.Tensor, sample_posterior: bool = False,
                    generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The temporal half of :meth:`encode`: normalised latents (N, C, T', h, w) of per-frame latents
        (N, c, T, h, w), micro-chunk by micro-chunk."""
        latents = []
        for chunk in self._frame_chunks(frames.shape[2]):
            posterior = self.temporal_vae.encode(frames[:, :, chunk])
            latents.append(posterior.sample(generator) if sample_posterior else posterior.mode())  # (N, C, t', h, w)
        z = torch.cat(latents, dim=2)  # (N, C, T', h, w)
        return (z - self.shift.to(z.dtype)) / self.scale.to(z.dtype)

    def decode(self, z: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Frames (N, 3, num_frames, H, W) from normalised latents z (N, C, T', h, w)."""
        return self.image_decode(self.time_decode(z, num_frames))

    def time_decode(self, z: torch.Tensor, num_frames: int) -> torch.Tensor:
        """The temporal half of :meth:`decode`: per-frame latents (N, c, num_frames, h, w) from normalised
        latents z (N, C, T', h, w)."""
        expected = self.get_latent_size([num_frames, None, None])[0]
        if z.dim() != 5 or z.shape[2] != expected:
            raise DataError(f"VideoAutoencoderPipeline.decode: {num_frames} frames need {expected} latent frames, "
                            f"got latents of shape {tuple(z.shape)}")
        z = z * self.scale.to(z.dtype) + self.shift.to(z.dtype)
        pieces, remaining = [], num_frames
        step = self.micro_z_frame_size or z.shape[2]
        for start in range(0, z.shape[2], step):
            frames = min(self.micro_frame_size or num_frames, remaining)
            pieces.append(self.temporal_vae.decode(z[:, :, start:start + step], num_frames=frames))  # (N, c, ...)
            remaining -= frames
        return torch.cat(pieces, dim=2)  # (N, c, num_frames, h, w)

    def image_decode(self, frames: torch.Tensor) -> torch.Tensor:
        """The 2-D half of :meth:`decode`: frames (N, 3, T, H, W) from per-frame latents (N, c, T, h, w)."""
        return self.spatial_vae.decode(frames)
