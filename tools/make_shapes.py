"""Write the synthetic moving-shapes benchmark (docs/shapes_benchmark.md) as MP4 files + CSV.

A thin entry point: the command lives in
``opensora_lite/commands/make_shapes.py`` and is also ``opensora-lite make-shapes``.
"""
import sys

from opensora_lite.cli import run_cli
from opensora_lite.commands.make_shapes import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
