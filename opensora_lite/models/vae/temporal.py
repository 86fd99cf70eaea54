"""Open-Sora v1.2's causal temporal VAE: 4x compression in time, none in space.

It runs on the latents of the 2-D VAE (4 channels) and is a MAGVIT-style stack of causal 3-D convs:
a frame never sees the frames after it, except through GroupNorm, whose statistics span the whole clip
(time included), exactly as in Open-Sora.

Parameter names equal Open-Sora's ``VAE_Temporal_SD`` so its checkpoints load with no key map.

Long videos are bounded in memory without anything here: the pipeline cuts a clip into independent
17-frame micro-chunks (``VideoAutoencoderPipeline.micro_frame_size``), and generation decodes window by window.
"""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ...errors import ConfigError, DataError
from ...registry import MODELS
from .distributions import DiagonalGaussian

# PyTorch's default GroupNorm eps, which Open-Sora's temporal VAE keeps (diffusers' 2-D VAE uses 1e-6).
GROUPNORM_EPS = 1e-5
ACTIVATIONS = {"swish": nn.SiLU, "silu": nn.SiLU}


def _as_triple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value, value)


#################################################################################
#                              Causal convolution                               #
#################################################################################


class CausalConv3d(nn.Module):
    """A 3-D conv that pads time with zeros at the front only, so output frame t sees inputs <= t.

    Spatial padding is ``k // 2`` on each side (same size for odd kernels); time is padded at the front by
    ``time_pad = dilation * (kt - 1) + (1 - stride)`` frames (2 for kernel 3, 1 for the stride-2
    downsampler), then an unpadded ``nn.Conv3d`` runs with stride ``(stride, 1, 1)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride: int = 1,
                 dilation: int = 1, bias: bool = True):
        super().__init__()
        kt, kh, kw = _as_triple(kernel_size)
        self.time_pad = dilation * (kt - 1) + (1 - stride)
        if self.time_pad < 0:
            raise ConfigError(f"CausalConv3d: time stride {stride} is larger than the time kernel {kt}")
        self.spatial_pad = (kw // 2, kw // 2, kh // 2, kh // 2)  # F.pad order: W left/right, H top/bottom
        self.conv = nn.Conv3d(in_channels, out_channels, (kt, kh, kw), stride=(stride, 1, 1),
                              dilation=(dilation, 1, 1), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C_in, T, H, W)
        x = F.pad(x, self.spatial_pad + (self.time_pad, 0))  # (N, C_in, time_pad + T, H', W')
        return self.conv(x)  # (N, C_out, T // stride, H, W)


def group_norm(num_groups: int, channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups, channels, eps=GROUPNORM_EPS)


#################################################################################
#                              Encoder and decoder                              #
#################################################################################


class ResBlock(nn.Module):
    """norm -> SiLU -> conv3x3x3 -> norm -> SiLU -> conv3x3x3, plus a 1x1x1 conv shortcut when widths differ."""

    def __init__(self, in_channels: int, out_channels: int, num_groups: int, activation: type):
        super().__init__()
        self.norm1 = group_norm(num_groups, in_channels)
        self.conv1 = CausalConv3d(in_channels, out_channels, 3, bias=False)
        self.norm2 = group_norm(num_groups, out_channels)
        self.conv2 = CausalConv3d(out_channels, out_channels, 3, bias=False)
        if in_channels != out_channels:
            self.conv3 = CausalConv3d(in_channels, out_channels, 1, bias=False)
        self.act = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C_in, T, H, W)
        h = self.conv1(self.act(self.norm1(x)))  # (N, C_out, T, H, W)
        h = self.conv2(self.act(self.norm2(h)))  # (N, C_out, T, H, W)
        shortcut = self.conv3(x) if hasattr(self, "conv3") else x  # (N, C_out, T, H, W)
        return h + shortcut


class Encoder(nn.Module):
    """conv_in -> per level: res blocks (+ stride-2 time downsampling) -> res blocks -> norm -> SiLU -> 1x1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, filters: int, num_res_blocks: int,
                 channel_multipliers: Sequence[int], temporal_downsample: Sequence[bool], num_groups: int,
                 activation: type):
        super().__init__()
        num_levels = len(channel_multipliers)
        self.conv_in = CausalConv3d(in_channels, filters, 3, bias=False)
        self.block_res_blocks = nn.ModuleList()
        self.conv_blocks = nn.ModuleList()  # one entry between consecutive levels (Identity if no downsampling)
        channels = filters
        for level, multiplier in enumerate(channel_multipliers):
            width = filters * multiplier
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(channels, width, num_groups, activation))
                channels = width
            self.block_res_blocks.append(blocks)
            if level < num_levels - 1:
                if temporal_downsample[level]:
                    self.conv_blocks.append(CausalConv3d(channels, channels, 3, stride=2))
                else:
                    self.conv_blocks.append(nn.Identity())
        self.res_blocks = nn.ModuleList(
            [ResBlock(channels, channels, num_groups, activation) for _ in range(num_res_blocks)])
        self.norm1 = group_norm(num_groups, channels)
        self.act = activation()
        self.conv2 = CausalConv3d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C_in, T, H, W), T a multiple of the time factor
        x = self.conv_in(x)  # (N, filters, T, H, W)
        for level, blocks in enumerate(self.block_res_blocks):
            for block in blocks:
                x = block(x)  # (N, filters * multiplier[level], T_level, H, W)
            if level < len(self.conv_blocks):
                x = self.conv_blocks[level](x)  # T_level halves where temporal_downsample[level]
        for block in self.res_blocks:
            x = block(x)  # (N, C_top, T', H, W)
        return self.conv2(self.act(self.norm1(x)))  # (N, C_out, T', H, W)


class Decoder(nn.Module):
    """conv1 -> res blocks -> per level, top first: res blocks (+ time upsampling) -> norm -> SiLU -> conv_out."""

    def __init__(self, in_channels: int, out_channels: int, filters: int, num_res_blocks: int,
                 channel_multipliers: Sequence[int], temporal_downsample: Sequence[bool], num_groups: int,
                 activation: type):
        super().__init__()
        num_levels = len(channel_multipliers)
        top = filters * channel_multipliers[-1]
        self.time_strides = [2 if down else 1 for down in temporal_downsample]
        self.conv1 = CausalConv3d(in_channels, top, 3)
        self.res_blocks = nn.ModuleList([ResBlock(top, top, num_groups, activation) for _ in range(num_res_blocks)])
        # Index i is level i (run from the top level down); level i receives the width of level i + 1.
        self.block_res_blocks = nn.ModuleList()
        for level, multiplier in enumerate(channel_multipliers):
            channels = filters * channel_multipliers[min(level + 1, num_levels - 1)]
            width = filters * multiplier
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(channels, width, num_groups, activation))
                channels = width
            self.block_res_blocks.append(blocks)
        # conv_blocks[i] upsamples time between level i + 1 and level i: conv C -> C * ts, then depth-to-time.
        self.conv_blocks = nn.ModuleList()
        for level in range(num_levels - 1):
            width = filters * channel_multipliers[level + 1]
            if temporal_downsample[level]:
                self.conv_blocks.append(CausalConv3d(width, width * self.time_strides[level], 3))
            else:
                self.conv_blocks.append(nn.Identity())
        self.norm1 = group_norm(num_groups, filters * channel_multipliers[0])
        self.act = activation()
        self.conv_out = CausalConv3d(filters * channel_multipliers[0], out_channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # z: (N, C_latent, T', H, W)
        x = self.conv1(z)  # (N, C_top, T', H, W)
        for block in self.res_blocks:
            x = block(x)  # (N, C_top, T', H, W)
        for level in reversed(range(len(self.block_res_blocks))):
            for block in self.block_res_blocks[level]:
                x = block(x)  # (N, filters * multiplier[level], T_level, H, W)
            if level > 0:
                x = self.conv_blocks[level - 1](x)  # (N, C * ts, T_level, H, W)
                # depth-to-time, ts the inner factor of the channel axis (as Open-Sora)
                x = rearrange(x, "n (c ts) t h w -> n c (t ts) h w", ts=self.time_strides[level - 1])
        return self.conv_out(self.act(self.norm1(x)))  # (N, C_out, T' * time factor, H, W)


#################################################################################
#                                  TemporalVAE                                  #
#################################################################################


@MODELS.register_module(name=["TemporalVAE", "VAE_Temporal_SD"])
class TemporalVAE(nn.Module):
    """Open-Sora v1.2's causal temporal VAE (defaults = ``VAE_Temporal_SD``, its released configuration).

    ``encode`` front-pads T with zeros to a multiple of the time factor (4) and returns the posterior over
    (N, embed_dim, ceil(T / 4), H, W) latents; ``decode(z, num_frames)`` drops the same number of leading
    frames.
    """

    def __init__(self, in_out_channels: int = 4, latent_embed_dim: int = 4, embed_dim: int = 4, filters: int = 128,
                 num_res_blocks: int = 4, channel_multipliers: Sequence[int] = (1, 2, 2, 4),
                 temporal_downsample: Sequence[bool] = (False, True, True), num_groups: int = 32,
                 activation_fn: str = "swish"):
        super().__init__()
        if len(temporal_downsample) != len(channel_multipliers) - 1:
            raise ConfigError(f"TemporalVAE: temporal_downsample needs {len(channel_multipliers) - 1} entries "
                              f"(one between consecutive channel_multipliers), got {len(temporal_downsample)}")
        if activation_fn not in ACTIVATIONS:
            raise ConfigError(f"TemporalVAE: unknown activation_fn {activation_fn!r}; use one of {sorted(ACTIVATIONS)}")
        activation = ACTIVATIONS[activation_fn]
        self.in_channels = self.out_channels = in_out_channels
        self.embed_dim = embed_dim
        self.time_downsample_factor = 2 ** sum(bool(d) for d in temporal_downsample)
        self.patch_size = (self.time_downsample_factor, 1, 1)
        levels = dict(filters=filters, num_res_blocks=num_res_blocks, channel_multipliers=tuple(channel_multipliers),
                      temporal_downsample=tuple(temporal_downsample), num_groups=num_groups, activation=activation)
        self.encoder = Encoder(in_out_channels, 2 * latent_embed_dim, **levels)
        self.quant_conv = CausalConv3d(2 * latent_embed_dim, 2 * embed_dim, 1)
        self.post_quant_conv = CausalConv3d(embed_dim, latent_embed_dim, 1)
        self.decoder = Decoder(latent_embed_dim, in_out_channels, **levels)

    # ----------------------------------------------------------------- sizes
    def time_padding(self, num_frames: int) -> int:
        """Zero frames prepended to a clip of ``num_frames`` frames to reach a multiple of the time factor."""
        return (-num_frames) % self.time_downsample_factor

    def get_latent_size(self, input_size: Sequence[Optional[int]]) -> List[Optional[int]]:
        """[T, H, W] -> [ceil(T / 4), H, W]; None entries pass through."""
        return [None if size is None else math.ceil(size / patch) for size, patch in zip(input_size, self.patch_size)]

    # ---------------------------------------------------------------- encode
    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """Posterior over latents of x (N, C, T, H, W), any T >= 1; moments (N, 2 * embed_dim, ceil(T/4), H, W)."""
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[2] < 1:
            raise DataError(f"TemporalVAE.encode expects (N, {self.in_channels}, T>=1, H, W), got {tuple(x.shape)}")
        x = F.pad(x, (0, 0, 0, 0, self.time_padding(x.shape[2]), 0))  # front-padded: (N, C, T + pad, H, W)
        moments = self.quant_conv(self.encoder(x))  # (N, 2 * embed_dim, T', H, W)
        return DiagonalGaussian(moments.to(x.dtype))

    # ---------------------------------------------------------------- decode
    def decode(self, z: torch.Tensor, num_frames: Optional[int] = None) -> torch.Tensor:
        """Frames (N, C, num_frames, H, W) from latents z (N, embed_dim, T', H, W), ceil(num_frames / 4) == T'.

        ``num_frames`` defaults to 4 * T' (nothing cropped).
        """
        factor = self.time_downsample_factor
        if z.dim() != 5 or z.shape[1] != self.embed_dim or z.shape[2] < 1:
            raise DataError(f"TemporalVAE.decode expects (N, {self.embed_dim}, T'>=1, H, W), got {tuple(z.shape)}")
        latent_frames = z.shape[2]
        if num_frames is None:
            num_frames = latent_frames * factor
        if num_frames < 1 or math.ceil(num_frames / factor) != latent_frames:
            raise DataError(f"TemporalVAE.decode: {latent_frames} latent frames decode to "
                            f"{(latent_frames - 1) * factor + 1}..{latent_frames * factor} frames, not {num_frames}")
        x = self.decoder(self.post_quant_conv(z))  # (N, C, 4 * T', H, W)
        return x[:, :, latent_frames * factor - num_frames:]  # drop the front padding: (N, C, num_frames, H, W)

    def forward(self, x: torch.Tensor, sample_posterior: bool = True, generator: Optional[torch.Generator] = None):
        """Returns (reconstruction (N, C, T, H, W), posterior, z (N, embed_dim, T', H, W))."""
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z, num_frames=x.shape[2]), posterior, z
