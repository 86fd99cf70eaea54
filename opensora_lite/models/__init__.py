"""Networks, registered in :data:`opensora_lite.registry.MODELS`."""
from .stdit import STDiT, STDiT3_XL_2, STDiT_B_2, STDiT_L_2, STDiT_S_2, STDiT_XL_2
from .text_encoder import T5TextEncoder  # noqa: F401  ("t5", "t5-tiny"; transformers is imported on first use)
from .vae import TemporalVAE, VideoAutoencoderKL, VideoAutoencoderPipeline  # noqa: F401
