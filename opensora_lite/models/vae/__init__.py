"""Video VAEs of Open-Sora v1.2: the per-frame 2-D KL VAE, the causal temporal VAE, and the pipeline of both."""
from .autoencoder_kl import AutoencoderKL
from .distributions import DiagonalGaussian
from .interface import VideoVAE
from .kl2d import VideoAutoencoderKL
from .temporal import CausalConv3d, TemporalVAE
from .vae_pipeline import VideoAutoencoderPipeline

__all__ = ["AutoencoderKL", "CausalConv3d", "DiagonalGaussian", "TemporalVAE", "VideoAutoencoderKL",
           "VideoAutoencoderPipeline", "VideoVAE"]
