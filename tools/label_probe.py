"""Which part of the class label does a shapes model use? Teacher-forced velocity loss under wrong labels.

A thin entry point: the command lives in
``opensora_lite/commands/label_probe.py``.
"""
import sys

from opensora_lite.cli import run_cli
from opensora_lite.commands.label_probe import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
