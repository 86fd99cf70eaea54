"""Shared command-line plumbing: bad input is one line on stderr and exit code 2, never a traceback."""
import argparse
import logging
import sys

from .errors import UserError

EXIT_USAGE = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are a :class:`UserError` (one line, exit 2) instead of usage + exit."""

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


def check_device(device: str) -> None:
    """``--device``: cpu, or cuda where a CUDA device is available; a UserError otherwise."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available here; use --device cpu")
    elif device != "cpu":
        raise UserError(f"--device must be cpu or cuda, got {device!r}")


def parse_hw(text: str, flag: str) -> tuple:
    """'48x96' -> (48, 96): a frame size as HEIGHTxWIDTH in pixels; anything else is a UserError naming ``flag``."""
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"{flag} takes HEIGHTxWIDTH in pixels, e.g. 48x96; got {text!r}")
    return int(parts[0]), int(parts[1])


def run_cli(main, argv=None) -> int:
    """Call ``main(argv)``; turn a :class:`UserError` (and Ctrl-C) into a one-line message."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        main(sys.argv[1:] if argv is None else argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


#################################################################################
#                     The console script: opensora-lite <command>               #
#################################################################################

COMMANDS = {  # subcommand -> module of opensora_lite.commands (each has main(argv))
    "generate": "generate",
    "train": "train",
    "train-vae": "train_vae",
    "vae-recon": "vae_recon",
    "eval": "eval",
    "make-shapes": "make_shapes",
    "make-csv": "make_csv",
    "serve": "serve",
}
USAGE = "usage: opensora-lite {" + ",".join(COMMANDS) + "} ... (opensora-lite COMMAND --help for its flags)"


def main(argv=None) -> int:
    """``opensora-lite COMMAND [ARGS]``: the tools/*.py scripts as one console script."""
    import importlib

    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else EXIT_USAGE
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; {USAGE}", file=sys.stderr)
        return EXIT_USAGE
    module = importlib.import_module(f"opensora_lite.commands.{COMMANDS[argv[0]]}")
    return run_cli(module.main, argv[1:])
