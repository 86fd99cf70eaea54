"""Local files a config needs (weights, a diffusers folder): a missing one is a one-line error saying what it is.

A config describes its files with ``file_notes = {"ckpt.model": "Latte's released UCF-101 weights ...", ...}``,
keyed by the dotted config entry that holds the path. Nothing is ever downloaded.
"""
import os

from ..errors import CheckpointError

CONFIG_KEY = "file_notes"


def _lookup(cfg, dotted: str):
    node = cfg
    for part in dotted.split("."):
        if not hasattr(node, "get"):
            return None
        node = node.get(part)
    return node


def check_required_files(cfg, where: str, skip=()) -> None:
    """Raise one CheckpointError naming every missing file of ``cfg``'s ``file_notes``, where it goes and what it
    is (keys in ``skip`` are not checked, e.g. ``ckpt.model`` when --ckpt or --random-init replaces it)."""
    missing = []
    for key, note in dict(cfg.get(CONFIG_KEY) or {}).items():
        path = _lookup(cfg, key)
        if key not in skip and path and not os.path.exists(os.path.expanduser(str(path))):
            missing.append(f"missing {path} ({key}): {note}")
    if missing:
        raise CheckpointError(f"{where}: " + " | ".join(missing) + " (put each file there, or set its config "
                              "entry to where it is)")
