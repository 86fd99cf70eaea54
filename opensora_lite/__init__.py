"""opensora_lite: a compact, readable Open-Sora-style video generator (STDiT + video VAE).

    from opensora_lite import VideoPipeline
    pipe = VideoPipeline.from_config("configs/shapes/stdit_shapes.py")
    out = pipe(classes=["square-left"], num_frames=16)
    out.save("samples/")
"""
__version__ = "0.3.0"

__all__ = ["VideoOutput", "VideoPipeline", "__version__"]


def __getattr__(name):
    # The pipeline pulls in torch and the models: import it on first use, so `opensora_lite.__version__`
    # (read by the packaging) stays free.
    if name in ("VideoPipeline", "VideoOutput"):
        from .inference import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'opensora_lite' has no attribute {name!r}")
