"""Train STDiT on video clips (or cached latents), on one process or under torchrun.

A thin entry point: the command lives in
``opensora_lite/commands/train.py`` and is also ``opensora-lite train``.
"""
import sys

from opensora_lite.cli import run_cli
from opensora_lite.commands.train import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
