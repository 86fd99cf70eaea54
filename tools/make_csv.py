"""Make a dataset CSV from a folder of videos and images (Open-Sora's columns).

A thin entry point: the command lives in
``opensora_lite/commands/make_csv.py`` and is also ``opensora-lite make-csv``.
"""
import sys

from opensora_lite.cli import run_cli
from opensora_lite.commands.make_csv import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
