"""A 2-D KL autoencoder with the layout of diffusers' ``AutoencoderKL`` (the SD / SDXL VAE), written for this project.

The parameter names are diffusers' (``encoder.down_blocks.0.resnets.0.conv1.weight``, ...), so diffusers folders,
single-file diffusers checkpoints and Open-Sora pipeline checkpoints (``spatial_vae.module.*``) load as they
are, and its outputs equal diffusers' (``tests/test_autoencoder_kl.py`` checks this against diffusers itself).
Owning these ~150 lines keeps diffusers off the inference path: importing diffusers' class costs seconds
(it pulls in ``torch._dynamo`` and diffusers' UNet and transformer modules), most of a first video's wall
time (issue #17, ``benchmarks/bench_first_video.py``).

Only the configuration the SD-family VAEs use is built: ``DownEncoderBlock2D`` / ``UpDecoderBlock2D`` blocks,
SiLU, an optional single-head attention in the middle blocks, optional 1x1 quant convs. Anything else is
refused by name (:func:`check_config`).
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError

DEFAULTS = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",),
    up_block_types=("UpDecoderBlock2D",),
    block_out_channels=(64,),
    layers_per_block=1,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=32,
    scaling_factor=0.18215,
    shift_factor=None,
    latents_mean=None,
    latents_std=None,
    force_upcast=True,
    use_quant_conv=True,
    use_post_quant_conv=True,
    mid_block_add_attention=True,
)
# diffusers' bookkeeping keys in a config.json, which say nothing about the network.
IGNORED_KEYS = ("_class_name", "_diffusers_version", "_name_or_path", "_use_default_values")
EPS = 1e-6  # the GroupNorm eps of every norm in the SD VAEs


class Config(dict):
    """The architecture as a dict with attribute access (``vae.config.block_out_channels``), as diffusers has it."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None  # copy.deepcopy and pickle probe for __deepcopy__ etc.


def check_config(config: dict) -> Config:
    """DEFAULTS updated with ``config``; unknown keys and block types, activations this module lacks: ConfigError."""
    config = {key: value for key, value in config.items() if key not in IGNORED_KEYS}
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"AutoencoderKL got unexpected keyword argument(s) {unknown}; known: {sorted(DEFAULTS)}")
    config = Config(DEFAULTS, **config)
    levels = len(config.block_out_channels)
    for key, block in (("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")):
        if tuple(config[key]) != (block,) * levels:
            raise ConfigError(f"AutoencoderKL: {key} must be ({block!r},) x {levels} (one per block_out_channels "
                              f"entry), got {tuple(config[key])}")
    if config.act_fn != "silu":
        raise ConfigError(f"AutoencoderKL: only act_fn='silu' (every SD-family VAE) is built, got {config.act_fn!r}")
    bad = [c for c in config.block_out_channels if c % config.norm_num_groups]
    if bad:
        raise ConfigError(f"AutoencoderKL: block_out_channels {bad} are not multiples of norm_num_groups="
                          f"{config.norm_num_groups}")
    return config


def _norm(groups: int, channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=EPS)


class ResnetBlock(nn.Module):
    """norm-SiLU-conv twice plus a shortcut (1x1 conv when the width changes): diffusers' ResnetBlock2D, no time."""

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.norm1 = _norm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H, W)
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the H*W positions of a feature map, with a residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.group_norm = _norm(groups, channels)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])  # diffusers' key: to_out.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        b, c, h, w = x.shape
        tokens = self.group_norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C)
        out = F.scaled_dot_product_attention(self.to_q(tokens), self.to_k(tokens), self.to_v(tokens))
        out = self.to_out[0](out).transpose(1, 2).reshape(b, c, h, w)  # (B, C, H, W)
        return x + out


class MidBlock(nn.Module):
    """resnet, (attention), resnet at the lowest resolution."""

    def __init__(self, channels: int, groups: int, attention: bool):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, groups) for _ in range(2)])
        self.attentions = nn.ModuleList([SelfAttention(channels, groups)] if attention else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        for attention in self.attentions:
            x = attention(x)
        return self.resnets[1](x)


class Downsample(nn.Module):
    """Stride-2 3x3 conv after padding one pixel on the right and bottom (halves H and W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H/2, W/2)
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest 2x then a 3x3 conv (doubles H and W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, 2H, 2W)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution level: resnets, then an optional resampler (``downsamplers`` or ``upsamplers``)."""

    def __init__(self, in_channels: int, out_channels: int, layers: int, groups: int, resample: str = ""):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(in_channels if i == 0 else out_channels, out_channels, groups)
                                      for i in range(layers)])
        if resample == "down":
            self.downsamplers = nn.ModuleList([Downsample(out_channels)])
        elif resample == "up":
            self.upsamplers = nn.ModuleList([Upsample(out_channels)])
        self.resample = resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        if self.resample:
            x = (self.downsamplers if self.resample == "down" else self.upsamplers)[0](x)
        return x


class Encoder(nn.Module):
    """(B, in_channels, H, W) -> (B, 2 latent_channels, H/f, W/f): the posterior's mean and log-variance."""

    def __init__(self, c: Config):
        super().__init__()
        widths, groups = c.block_out_channels, c.norm_num_groups
        self.conv_in = nn.Conv2d(c.in_channels, widths[0], 3, padding=1)
        self.down_blocks = nn.ModuleList([
            Level(widths[max(i - 1, 0)], width, c.layers_per_block, groups, "down" if i < len(widths) - 1 else "")
            for i, width in enumerate(widths)])
        self.mid_block = MidBlock(widths[-1], groups, c.mid_block_add_attention)
        self.conv_norm_out = _norm(groups, widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], 2 * c.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    """(B, latent_channels, h, w) -> (B, out_channels, h f, w f)."""

    def __init__(self, c: Config):
        super().__init__()
        widths, groups = tuple(reversed(c.block_out_channels)), c.norm_num_groups
        self.conv_in = nn.Conv2d(c.latent_channels, widths[0], 3, padding=1)
        self.mid_block = MidBlock(widths[0], groups, c.mid_block_add_attention)
        self.up_blocks = nn.ModuleList([
            Level(widths[max(i - 1, 0)], width, c.layers_per_block + 1, groups, "up" if i < len(widths) - 1 else "")
            for i, width in enumerate(widths)])
        self.conv_norm_out = _norm(groups, widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], c.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    """The SD-family VAE: ``encode`` gives the posterior's moments, ``decode`` the image; unscaled latents.

    Args: the keys of :data:`DEFAULTS` (diffusers' ``AutoencoderKL`` arguments). ``scaling_factor``,
    ``shift_factor``, ``latents_mean/std``, ``force_upcast`` and ``sample_size`` are kept in ``config`` for
    the caller; the network does not use them.
    """

    def __init__(self, **config):
        super().__init__()
        self.config = check_config(config)
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        moments, latent = 2 * self.config.latent_channels, self.config.latent_channels
        self.quant_conv = nn.Conv2d(moments, moments, 1) if self.config.use_quant_conv else None
        self.post_quant_conv = nn.Conv2d(latent, latent, 1) if self.config.use_post_quant_conv else None

    # Activations run channels-last inside encode and decode (oneDNN's and cuDNN's preferred conv layout; on the
    # 2-core AMD EPYC of benchmarks/README.md the Open-Sora pipeline's 256x256 decode is 1.16x faster in fp32 and
    # 1.11x in bf16 than with NCHW, medians of 2 alternated rounds: `python benchmarks/bench_vae.py --ops decode
    # --frames 8 --repeats 2 --layouts channels_last nchw --no-memory --psnr-clips 0`). Outputs are NCHW.
    channels_last = True

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2 latent_channels, H/f, W/f): mean and log-variance (unclamped) of x (B, C, H, W) in [-1, 1]."""
        moments = self.encoder(self._layout(x))
        return (moments if self.quant_conv is None else self.quant_conv(moments)).contiguous()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) from unscaled latents z (B, latent_channels, h, w)."""
        z = self._layout(z)
        return self.decoder(z if self.post_quant_conv is None else self.post_quant_conv(z)).contiguous()
