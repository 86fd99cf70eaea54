"""Load an mmengine Python config (``configs/*.py``, ``_base_`` inheritance) and apply CLI overrides.

The shipped ``configs/`` and ``weights/`` resolve from any working directory: a relative config path or a
``ckpt`` path of a config that does not exist relative to the working directory is looked up in the shipped
roots (:func:`shipped_roots`; ``docs/install.md``).
"""
import ast
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mmengine.config import Config

from .aspect import image_size
from .errors import CheckpointError, ConfigError
from .storage import latest_checkpoint

PACKAGE_DIR = Path(__file__).resolve().parent
RUN_CONFIG = "config.py"  # a training run folder holds its config ...
RUN_WEIGHTS = "model_ema.safetensors"  # ... and, once finished, the EMA weights to sample with

# What a config that does not say gets (the pipeline, the trainers and the tools read these, nothing else).
DEFAULT_IMAGE_SIZE = (256, 256)  # image_size: (height, width) in pixels
DEFAULT_NUM_FRAMES = 16  # inference.num_frames, else num_frames: frames per generated clip
DEFAULT_FPS = 8  # inference.fps: frames per second of the written videos


def config_image_size(cfg) -> tuple:
    """A config's ``image_size`` (height, width), or the size of its named ``resolution`` and ``aspect_ratio``
    (``aspect.py``; Open-Sora 1.2's configs)."""
    if cfg.get("resolution") is not None and cfg.get("image_size") is None:
        return image_size(cfg.resolution, cfg.get("aspect_ratio") or "9:16")
    return tuple(cfg.get("image_size", DEFAULT_IMAGE_SIZE))


def config_num_frames(cfg) -> int:
    """The frames a config's model makes by default: ``inference.num_frames``, else ``num_frames``."""
    return dict(cfg.get("inference") or {}).get("num_frames", cfg.get("num_frames", DEFAULT_NUM_FRAMES))


def parse_value(text: str) -> Any:
    """Read a CLI value as a Python literal (``3``, ``1e-4``, ``(64, 64)``, ``True``), else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def shipped_roots() -> list[Path]:
    """The folders that hold the shipped ``configs/`` and ``weights/``: the package itself (a wheel installs them
    as ``opensora_lite/configs`` and ``opensora_lite/weights``) and, in a source checkout or an editable install,
    the project folder above the package."""
    roots = [PACKAGE_DIR]
    if (PACKAGE_DIR.parent / "pyproject.toml").is_file():
        roots.append(PACKAGE_DIR.parent)
    return roots


def find_shipped(path: str, prefixes: Iterable[str] = ("",)) -> str | None:
    """``path`` as given if it exists; else the first ``root/prefix/path`` of a shipped root that exists; else None."""
    if os.path.exists(path):
        return path
    if os.path.isabs(path):
        return None
    for root in shipped_roots():
        for prefix in prefixes:
            candidate = root / prefix / path
            if candidate.exists():
                return str(candidate)
    return None


def resolve_shipped_ckpts(cfg: Config) -> None:
    """Point each ``ckpt`` path of ``cfg`` that is missing relative to the working directory at its shipped file."""
    ckpt = cfg.get("ckpt")
    if not isinstance(ckpt, (Mapping, Config)):
        return
    for key, value in ckpt.items():
        if isinstance(value, str) and value:
            ckpt[key] = find_shipped(value) or value


def resolve_config(config, weights_given: bool = False) -> tuple:
    """``(config file, the run's weights or None)`` of a config path or of a training run folder (its
    ``config.py`` and, once the run has finished, ``model_ema.safetensors``).

    A run folder without finished weights is refused, naming its newest checkpoint and the ``--ckpt`` that
    samples it, unless ``weights_given`` (``--ckpt`` or ``--random-init``): it never falls back to the weights
    its config names, which are another model's.
    """
    config = Path(config)
    if not config.is_dir():
        return config, None
    if not (config / RUN_CONFIG).is_file():
        raise ConfigError(f"config {config} is a directory, neither a config file nor a training run folder "
                          f"(one holds {RUN_CONFIG}); pass a Python config such as configs/shapes/stdit_shapes.py")
    weights = config / RUN_WEIGHTS
    if weights.is_file() or weights_given:
        return config / RUN_CONFIG, weights if weights.is_file() else None
    newest = latest_checkpoint(config)
    if newest is None:
        raise CheckpointError(f"run folder {config} has no weights yet: {RUN_WEIGHTS} is written when the run "
                              f"finishes and it has saved no checkpoint; let it train (or pass --ckpt WEIGHTS)")
    raise CheckpointError(f"run folder {config} is not finished ({RUN_WEIGHTS} is written at train.max_steps); its "
                          f"newest checkpoint is {newest}: sample it with --ckpt {newest / 'ema.safetensors'}")


def load_config(path: str, overrides: Mapping[str, Any] | None = None) -> Config:
    """Load ``path`` and set each dotted key of ``overrides`` (``"model.depth": 4``).

    A top-level key and every parent of a dotted key must exist in the config; a new leaf inside an
    existing dict is allowed (``model.depth`` for ``type="STDiT-S/2"``) because the builders reject
    keys their constructors do not take. Raises :class:`ConfigError` naming the file and the key.

    A relative ``path`` missing from the working directory is looked up in the shipped configs
    (``configs/shapes/stdit_shapes.py`` or ``shapes/stdit_shapes.py``), and so are the ``ckpt`` paths of the
    config (:func:`resolve_shipped_ckpts`, after the overrides).
    """
    found = find_shipped(path, prefixes=("", "configs"))
    if found is None or not os.path.isfile(found):
        what = "is a directory" if os.path.isdir(path) else "does not exist"
        raise ConfigError(f"config file {path!r} {what}; pass a Python config such as configs/shapes/stdit_shapes.py")
    try:
        cfg = Config.fromfile(found)
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
    resolve_shipped_ckpts(cfg)
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


FILE_NOTES_KEY = "file_notes"  # {"ckpt.model": "what the file is", ...}: a missing one is one line


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
    for key, note in dict(cfg.get(FILE_NOTES_KEY) or {}).items():
        path = _lookup(cfg, key)
        if key not in skip and path and not os.path.exists(os.path.expanduser(str(path))):
            missing.append(f"missing {path} ({key}): {note}")
    if missing:
        raise CheckpointError(f"{where}: " + " | ".join(missing) + " (put each file there, or set its config "
                              "entry to where it is)")


#################################################################################
#                            One check of settings                              #
#################################################################################


def is_number(value) -> bool:
    """A finite int or float, not a bool: NaN and infinity are refused wherever a setting is checked."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


SETTING_RULES = {  # kind -> (test, what the error says the value must be)
    "positive_ints": (lambda v: is_number(v) and isinstance(v, int) and v >= 1, "a positive integer"),
    "non_negative_ints": (lambda v: is_number(v) and isinstance(v, int) and v >= 0, "an integer >= 0"),
    "positive": (lambda v: is_number(v) and v > 0, "a positive number"),
    "non_negative": (lambda v: is_number(v) and v >= 0, "a number >= 0"),
    "fractions": (lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "numbers": (is_number, "a finite number"),
}


def check_settings(settings: Mapping, section: str, **kinds: Sequence[str]) -> None:
    """Raise a ConfigError naming the first setting of ``section`` with a wrong type or out of range.

    ``kinds`` maps a kind of :data:`SETTING_RULES` to the keys it covers: ``positive_ints=("batch_size",)``.
    """
    for kind, keys in kinds.items():
        ok, what = SETTING_RULES[kind]
        for key in keys:
            if not ok(settings[key]):
                raise ConfigError(f"{section}.{key} must be {what}, got {settings[key]!r}")


def section_settings(cfg, section: str, defaults: Mapping, **kinds: Sequence[str]) -> dict:
    """``cfg[section]`` over ``defaults``, checked: an unknown key, a value of the wrong kind and an empty
    ``outputs`` folder are each a ConfigError naming the key."""
    given = dict(cfg.get(section, {}))
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in '{section}'; known: {', '.join(defaults)}")
    settings = dict(defaults, **given)
    check_settings(settings, section, **kinds)
    outputs = settings.get("outputs", "-")
    if not isinstance(outputs, (str, Path)) or not str(outputs):
        raise ConfigError(f"{section}.outputs must be a folder path, got {outputs!r}")
    return settings
