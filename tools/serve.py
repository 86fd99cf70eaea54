"""The local web demo.

A thin entry point: the command lives in
``opensora_lite/commands/serve.py`` and is also ``opensora-lite serve``.
"""
import sys

from opensora_lite.cli import run_cli
from opensora_lite.commands.serve import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
