"""opensora_lite: a compact, readable Open-Sora-style video diffusion library (STDiT + video VAE)."""

__version__ = "0.1.0"
