from setuptools import find_packages, setup

setup(
    name="opensora_lite",
    version="0.1.0",
    description="A compact, readable, working Open-Sora-style video diffusion transformer (STDiT + video VAE).",
    packages=find_packages(include=["opensora_lite", "opensora_lite.*"]),
    python_requires=">=3.10",
    # torch is deliberately unpinned: the Makefile pins the CPU build used here, GPU users bring their own.
    install_requires=[
        "torch>=2.1",
        "numpy",
        "safetensors",
        "einops",
        "tqdm",
        "mmengine-lite",
        "diffusers>=0.27",
        "av",
        "pillow",
        "torchmetrics",
    ],
    extras_require={
        "decord": ["decord"],
        "test": ["pytest", "decord", "scikit-video", "psutil"],
    },
)
