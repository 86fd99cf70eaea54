"""Errors caused by what the user gave us (a config, a file, a CLI flag).

Command-line tools catch :class:`UserError` and print its message on one line with exit code 2,
so every message must name the problem and, where there is one, the fix.
"""


class UserError(Exception):
    """Bad input from the user: printed as one line by the CLIs (exit code 2), never a traceback."""


class ConfigError(UserError, ValueError):
    """A config names an unknown type, an unknown key, or a value out of range."""


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, unreadable, unsafe, or does not fit the model."""


class DataError(UserError, ValueError):
    """A video or dataset cannot be read or does not fit the requested clip size."""


class ShapeError(UserError, ValueError):
    """A tensor given to a model, a scheduler or a metric has the wrong shape or type (a mistake in the calling
    code, reported as one line that gives the expected shape)."""
