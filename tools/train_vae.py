"""Train the video VAE (2-D per frame, temporal, or both) on clips; exports ``<outputs>/vae.safetensors``.

A thin entry point: the command lives in
``opensora_lite/commands/train_vae.py`` and is also ``opensora-lite train-vae``.
"""
import sys

from opensora_lite.cli import run_cli
from opensora_lite.commands.train_vae import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
