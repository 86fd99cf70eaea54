"""The one interface every video VAE of the project offers, and the only one its callers use.

Generation, training, the latent cache and the evaluation tools see a VAE through :class:`VideoVAE`
alone; nothing reaches into a VAE's parts. Both :class:`~.kl2d.VideoAutoencoderKL` (per frame, no
temporal compression) and :class:`~.pipeline.VideoAutoencoderPipeline` (2-D then causal temporal VAE)
implement it.
"""
from typing import List, Optional, Protocol, Sequence, runtime_checkable

import torch


@runtime_checkable
class VideoVAE(Protocol):
    """A video autoencoder: pixels (N, 3, T, H, W) in [-1, 1] <-> latents (N, C, T', H', W')."""

    out_channels: int  # C: latent channels
    spatial_factor: int  # H / H' (and W / W')
    temporal_factor: int  # about T / T'; the exact count is get_latent_size's

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents (N, C, T', H', W') of clips x (N, 3, T, H, W) in [-1, 1] (posterior means)."""

    def decode(self, z: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Clips (N, 3, num_frames, H, W) from latents z (N, C, T', H', W')."""

    # The two halves of encode and decode: encode(x) = time_encode(image_encode(x)) and
    # decode(z, T) = image_decode(time_decode(z, T)). Per-frame latents (N, c, T, h, w) are what the 2-D VAE
    # makes of each frame (a VAE without temporal compression: its latents, the time halves the identity).
    # Window-by-window generation carries the frames it conditions the next window on in them, so that
    # they are not decoded to pixels and encoded again (docs/conditioning.md).

    def image_encode(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame latents (N, c, T, h, w) of clips x (N, 3, T, H, W) in [-1, 1]."""

    def time_encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Latents (N, C, T', h, w) of per-frame latents (N, c, T, h, w)."""

    def time_decode(self, z: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Per-frame latents (N, c, num_frames, h, w) of latents z (N, C, T', h, w)."""

    def image_decode(self, frames: torch.Tensor) -> torch.Tensor:
        """Clips (N, 3, T, H, W) from per-frame latents (N, c, T, h, w)."""

    def get_latent_size(self, input_size: Sequence[Optional[int]]) -> List[Optional[int]]:
        """[T, H, W] of a clip -> [T', H', W'] of its latents (None passes through)."""
