"""Load an mmengine Python config (``configs/*.py``, ``_base_`` inheritance) and apply CLI overrides."""
import ast
import os
from typing import Any, Iterable, Mapping

from mmengine.config import Config

from .errors import ConfigError


def parse_value(text: str) -> Any:
    """Read a CLI value as a Python literal (``3``, ``1e-4``, ``(64, 64)``, ``True``), else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def load_config(path: str, overrides: Mapping[str, Any] | None = None) -> Config:
    """Load ``path`` and set each dotted key of ``overrides`` (``"model.depth": 4``).

    A top-level key and every parent of a dotted key must exist in the config; a new leaf inside an
    existing dict is allowed (``model.depth`` for ``type="STDiT-S/2"``) because the builders reject
    keys their constructors do not take. Raises :class:`ConfigError` naming the file and the key.
    """
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "does not exist"
        raise ConfigError(f"config file {path!r} {what}; pass a Python config such as configs/shapes/stdit_shapes.py")
    try:
        cfg = Config.fromfile(path)
    except Exception as err:  # syntax errors, bad _base_ paths ...
        raise ConfigError(f"cannot load config {path!r}: {type(err).__name__}: {err}") from None
    for key, value in (overrides or {}).items():
        node: Any = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node, (Mapping, Config)) or part not in node:
                raise ConfigError(f"{path}: override '{key}': the config has no key '{part}'")
            node = node[part]
        if not isinstance(node, (Mapping, Config)) or (not parents and leaf not in node):
            raise ConfigError(f"{path}: override '{key}': the config has no key '{leaf}'")
        node[leaf] = value
    return cfg


def parse_overrides(pairs: Iterable[str]) -> dict:
    """Turn ``["--model.depth", "4", "--lr", "1e-4"]`` into ``{"model.depth": 4, "lr": 1e-4}``."""
    pairs = list(pairs)
    out = {}
    i = 0
    while i < len(pairs):
        key = pairs[i]
        if not key.startswith("--") or i + 1 >= len(pairs):
            raise ConfigError(f"bad override {key!r}: overrides are '--key value' pairs, e.g. --model.depth 4")
        out[key[2:]] = parse_value(pairs[i + 1])
        i += 2
    return out
