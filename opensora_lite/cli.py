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
