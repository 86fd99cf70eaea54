"""The spatial VAE of Open-Sora v1.2: a 2-D ``AutoencoderKL`` (SD/SDXL layout) applied to every frame of a clip.

The network is :class:`~opensora_lite.models.vae.autoencoder_kl.AutoencoderKL`, this project's own module with
diffusers' parameter names, held as ``self.module`` so Open-Sora pipeline checkpoints (``spatial_vae.module.*``)
load as they are. Weights come from nowhere but local files: a diffusers folder (``config.json`` and
``diffusion_pytorch_model.safetensors``), a single ``.safetensors`` file, or random initialisation from a config.
diffusers itself is imported only to convert a single file in the original (LDM) key layout.
"""
import json
import os
from typing import List, Mapping, Optional, Sequence

import torch
from einops import rearrange
from torch import nn

from ...errors import CheckpointError, ConfigError, DataError
from ...registry import MODELS
from ...storage import load_state_dict
from .autoencoder_kl import AutoencoderKL
from .distributions import DiagonalGaussian

# The SDXL VAE (also PixArt-Sigma's "sdxlvae"), the spatial VAE of Open-Sora v1.2: 8x spatial downsampling.
SDXL_VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=1024,
    scaling_factor=0.13025,  # the SDXL VAE's own factor: Open-Sora ignores it (see OPEN_SORA_LATENT_SCALE)
    force_upcast=True,
)
# Open-Sora v1.2 hard-codes Stable Diffusion 1.x's latent scale, even for the SDXL VAE.
OPEN_SORA_LATENT_SCALE = 0.18215
# Frames per call of the 2-D VAE in Open-Sora v1.2 (OpenSoraVAE_V1_2 and inference/sample.py).
OPEN_SORA_MICRO_BATCH_SIZE = 4
# A diffusers folder's weights, in the order they are looked for.
FOLDER_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def _diffusers_state_dict(path: str, model: AutoencoderKL) -> dict:
    """Read a single-file VAE checkpoint, converting original (LDM) key names to diffusers' if needed."""
    state_dict = load_state_dict(path)
    if not any(key.startswith("encoder.down_blocks.") for key in state_dict):
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

        state_dict = convert_ldm_vae_checkpoint(state_dict, dict(model.config))
    return state_dict


def _load_into(model: AutoencoderKL, state_dict: dict, path: str) -> AutoencoderKL:
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise CheckpointError(f"VAE weights {path!r} do not fit the AutoencoderKL config: {err}") from None
    if missing or unexpected:
        raise CheckpointError(f"VAE weights {path!r} do not fit the AutoencoderKL config: {len(missing)} missing "
                              f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}) keys")
    return model


def _from_folder(folder: str) -> AutoencoderKL:
    """An AutoencoderKL from a diffusers folder: its ``config.json`` and weights."""
    config_path = os.path.join(folder, "config.json")
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot load a diffusers AutoencoderKL from folder {folder!r}: {config_path} is "
                              f"missing or not JSON ({type(err).__name__})") from None
    weights = [os.path.join(folder, name) for name in FOLDER_WEIGHTS if os.path.exists(os.path.join(folder, name))]
    if not weights:
        raise CheckpointError(f"cannot load a diffusers AutoencoderKL from folder {folder!r}: no weights "
                              f"({' or '.join(FOLDER_WEIGHTS)})")
    return _load_into(AutoencoderKL(**config), load_state_dict(weights[0]), weights[0])


def build_autoencoder_kl(from_pretrained: Optional[str] = None, config: Optional[Mapping] = None,
                         subfolder: Optional[str] = None) -> AutoencoderKL:
    """An :class:`AutoencoderKL` from a local diffusers folder, a local ``.safetensors`` file (architecture from
    ``config``, default SDXL), or, when ``from_pretrained`` is None, random weights from ``config``."""
    if from_pretrained is None:
        return AutoencoderKL(**dict(SDXL_VAE_CONFIG if config is None else config))
    path = os.path.expanduser(str(from_pretrained))
    if not os.path.exists(path):
        raise CheckpointError(f"VAE weights {path!r} not found: from_pretrained must be a local diffusers folder "
                              f"or .safetensors file (nothing is downloaded; fetch it first, e.g. with "
                              f"'huggingface-cli download', and pass the local path)")
    if os.path.isdir(path):
        if config is not None:
            raise ConfigError("VideoAutoencoderKL: give either a diffusers folder (from_pretrained) or a config, "
                              "not both: the folder has its own config.json")
        return _from_folder(os.path.join(path, subfolder) if subfolder else path)
    model = AutoencoderKL(**dict(SDXL_VAE_CONFIG if config is None else config))
    return _load_into(model, _diffusers_state_dict(path, model), path)


@MODELS.register_module("VideoAutoencoderKL")
class VideoAutoencoderKL(nn.Module):
    """A 2-D AutoencoderKL applied frame by frame to (N, C, T, H, W) clips, in micro-batches of frames.

    Args:
        from_pretrained: local diffusers folder or single ``.safetensors`` file; None for random weights.
        config: AutoencoderKL kwargs (default: :data:`SDXL_VAE_CONFIG`); for a single file, its architecture.
        micro_batch_size: frames per 2-D VAE call (None: all frames at once).
        scaling_factor: encode multiplies latents by it, decode divides (Open-Sora: 0.18215).
        patch_size: (1, f, f) used by ``get_latent_size``; default: the real downsampling factor
            f = 2 ** (len(block_out_channels) - 1). Open-Sora hard-codes (1, 8, 8).
        subfolder: subfolder of a diffusers repository folder (e.g. ``"vae"``).
    """

    def __init__(self, from_pretrained: Optional[str] = None, config: Optional[Mapping] = None,
                 micro_batch_size: Optional[int] = OPEN_SORA_MICRO_BATCH_SIZE,
                 scaling_factor: float = OPEN_SORA_LATENT_SCALE, patch_size: Optional[Sequence[int]] = None,
                 subfolder: Optional[str] = None):
        super().__init__()
        if micro_batch_size is not None and micro_batch_size < 1:
            raise ConfigError(f"VideoAutoencoderKL: micro_batch_size must be >= 1 or None, got {micro_batch_size}")
        self.module = build_autoencoder_kl(from_pretrained, config, subfolder)
        self.spatial_factor = 2 ** (len(self.module.config.block_out_channels) - 1)
        self.temporal_factor = 1  # every frame has its own latent frame
        self.patch_size = tuple(patch_size) if patch_size is not None else (1, self.spatial_factor, self.spatial_factor)
        self.in_channels = self.module.config.in_channels
        self.out_channels = self.module.config.latent_channels
        self.micro_batch_size = micro_batch_size
        self.scaling_factor = scaling_factor

    def _micro_batches(self, frames: torch.Tensor) -> List[torch.Tensor]:
        step = self.micro_batch_size or frames.shape[0]
        return [frames[i:i + step] for i in range(0, frames.shape[0], step)]

    def encode(self, x: torch.Tensor, sample_posterior: bool = False,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Scaled latents (N, latent_channels, T, H/f, W/f) of x (N, C, T, H, W) in [-1, 1].

        ``sample_posterior`` draws from each frame's posterior (Open-Sora's behaviour) instead of its mean.
        """
        f = self.spatial_factor
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise DataError(f"VideoAutoencoderKL.encode expects (N, {self.in_channels}, T, H, W), got {tuple(x.shape)}")
        if x.shape[3] % f or x.shape[4] % f:
            raise DataError(f"VideoAutoencoderKL: height and width must be multiples of {f} (the spatial "
                            f"downsampling factor), got {x.shape[3]}x{x.shape[4]}")
        frames = rearrange(x, "n c t h w -> (n t) c h w")  # (N*T, C, H, W)
        latents = []
        for batch in self._micro_batches(frames):
            posterior = self.encode_frames(batch)  # over (B, 4, H/f, W/f)
            z = posterior.sample(generator) if sample_posterior else posterior.mode()
            latents.append(z * self.scaling_factor)
        return rearrange(torch.cat(latents), "(n t) c h w -> n c t h w", n=x.shape[0])  # (N, 4, T, H/f, W/f)

    image_encode = encode  # per-frame latents are the latents: no temporal half

    def time_encode(self, frames: torch.Tensor) -> torch.Tensor:
        """The identity: every frame is its own latent frame (the :class:`VideoVAE` interface)."""
        return frames

    def time_decode(self, z: torch.Tensor, num_frames: Optional[int] = None) -> torch.Tensor:
        """The identity: every latent frame is one frame (the :class:`VideoVAE` interface)."""
        return z

    def encode_frames(self, frames: torch.Tensor) -> DiagonalGaussian:
        """The unscaled posterior over (B, latent_channels, H/f, W/f) of frames (B, C, H, W): VAE training."""
        return DiagonalGaussian(self.module.encode(frames))

    def decode_frames(self, z: torch.Tensor) -> torch.Tensor:
        """Frames (B, C, H, W) from unscaled latents (B, latent_channels, h, w): VAE training."""
        return self.module.decode(z)

    def decode(self, z: torch.Tensor, num_frames: Optional[int] = None) -> torch.Tensor:
        """Frames (N, C, T, H, W) from scaled latents z (N, latent_channels, T, h, w).

        ``num_frames`` is accepted for interface parity with the pipeline; here T frames come from T latents.
        """
        if z.dim() != 5 or z.shape[1] != self.out_channels:
            raise DataError(f"VideoAutoencoderKL.decode expects (N, {self.out_channels}, T, h, w), "
                            f"got {tuple(z.shape)}")
        latents = rearrange(z, "n c t h w -> (n t) c h w")  # (N*T, 4, h, w)
        frames = [self.decode_frames(batch / self.scaling_factor) for batch in self._micro_batches(latents)]
        return rearrange(torch.cat(frames), "(n t) c h w -> n c t h w", n=z.shape[0])  # (N, C, T, H, W)

    def get_latent_size(self, input_size: Sequence[Optional[int]]) -> List[Optional[int]]:
        """[T, H, W] -> [T, H // p, W // p] with ``patch_size`` (floor, as Open-Sora); None passes through."""
        return [None if size is None else size // patch for size, patch in zip(input_size, self.patch_size)]

    image_decode = decode
