"""Evaluate the shipped shapes model: judged accuracy, Frechet distance, VAE reconstruction.

A thin entry point: the command lives in
``opensora_lite/commands/eval.py`` and is also ``opensora-lite eval``.
"""
import sys

from opensora_lite.cli import run_cli
from opensora_lite.commands.eval import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
