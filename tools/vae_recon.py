"""Reconstruct videos through the VAE of a config; print PSNR / SSIM and write original | reconstruction MP4s.

A thin entry point: the command lives in
``opensora_lite/commands/vae_recon.py`` and is also ``opensora-lite vae-recon``.
"""
import sys

from opensora_lite.cli import run_cli
from opensora_lite.commands.vae_recon import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
