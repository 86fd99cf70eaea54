"""Generate videos of the requested classes with a trained (or random) STDiT + video VAE.

A thin entry point: the command lives in
``opensora_lite/commands/generate.py`` and is also ``opensora-lite generate``.
"""
import sys

from opensora_lite.cli import run_cli
from opensora_lite.commands.generate import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
