"""Networks, registered in :data:`opensora_lite.registry.MODELS`."""
from .stdit import STDiT, STDiT_B_2, STDiT_L_2, STDiT_S_2, STDiT_XL_2
from .vae import TemporalVAE, VideoAutoencoderKL, VideoAutoencoderPipeline  # noqa: F401
