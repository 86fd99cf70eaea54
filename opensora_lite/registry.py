"""Registries that make models, schedulers and datasets swappable by name in configs.

A config entry is ``dict(type="STDiT-S/2", depth=6, ...)``; :func:`build_module` looks ``type`` up in a
registry and calls it with the remaining keys. Unknown types and unknown keys fail with a
:class:`~opensora_lite.errors.ConfigError` that names them.
"""
import importlib
import inspect
import numbers
import types
import typing
from typing import Any, Mapping

from mmengine.registry import Registry

from .errors import ConfigError

MODELS = Registry("model")
SCHEDULERS = Registry("scheduler")
DATASETS = Registry("dataset")


# The packages whose modules register themselves; imported on the first build so configs can name them.
_REGISTERING_PACKAGES = ("opensora_lite.models", "opensora_lite.schedulers", "opensora_lite.data")


def _import_registering_packages() -> None:
    for name in _REGISTERING_PACKAGES:
        importlib.import_module(name)


def _check_keys(builder, kwargs: Mapping[str, Any], type_name: str, where: str) -> None:
    """Raise ConfigError if ``kwargs`` holds a key that ``builder`` does not accept."""
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        accepted = ", ".join(n for n in params if n != "self")
        raise ConfigError(f"{where}unknown key(s) {unknown} for type '{type_name}'; it accepts: {accepted}")
    for key, value in kwargs.items():
        _check_type(params[key], value, type_name, where)


# Parameters annotated with one of these (or Optional of one) get their config value type-checked, so
# ``hidden_size="32"`` is a one-line ConfigError instead of a TypeError deep inside the constructor.
_SIMPLE_TYPES = {"int": numbers.Integral, "float": numbers.Real, "bool": bool, "str": str}


def _simple_annotation(annotation) -> tuple[str | None, bool]:
    """("int" | "float" | "bool" | "str" | None, optional) of a parameter annotation (real or a string)."""
    if isinstance(annotation, str):
        text, optional = annotation.replace(" ", ""), False
        if text.startswith("Optional[") and text.endswith("]"):
            text, optional = text[len("Optional["):-1], True
        if text.endswith("|None"):
            text, optional = text[:-len("|None")], True
        return (text if text in _SIMPLE_TYPES else None), optional
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return (inner.__name__ if inner in (int, float, bool, str) else None), True
    return (annotation.__name__ if annotation in (int, float, bool, str) else None), False


def _check_type(param: inspect.Parameter, value, type_name: str, where: str) -> None:
    name, optional = _simple_annotation(param.annotation)
    if name is None or (value is None and (optional or param.default is None)):
        return
    ok = isinstance(value, _SIMPLE_TYPES[name]) and (name == "bool" or not isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{where}'{param.name}' of type '{type_name}' must be {'an' if name == 'int' else 'a'} "
                          f"{name}, got {type(value).__name__} {value!r}")


def build_module(cfg, registry: Registry, where: str = "", **overrides):
    """Build the object described by ``cfg`` (a dict with ``type``) from ``registry``.

    ``cfg`` may also be an already-built object (returned as is) or None (returns None).
    ``overrides`` replace keys of ``cfg``; ``where`` (e.g. the config file) prefixes error messages.
    """
    if cfg is None or not isinstance(cfg, Mapping):
        return cfg
    where = f"{where}: " if where and not where.endswith(": ") else where
    _import_registering_packages()
    kwargs = dict(cfg)
    kwargs.update(overrides)
    type_name = kwargs.pop("type", None)
    if type_name is None:
        raise ConfigError(f"{where}{registry.name} config has no 'type' key: {dict(cfg)}")
    if not isinstance(type_name, str):
        return type_name(**kwargs)
    builder = registry.get(type_name)
    if builder is None:
        known = ", ".join(sorted(registry.module_dict))
        raise ConfigError(f"{where}unknown {registry.name} type '{type_name}'; registered: {known}")
    _check_keys(builder, kwargs, type_name, where)
    try:
        return builder(**kwargs)
    except ConfigError as err:  # raised by the builder itself (e.g. a variant's key check): add the file
        if where and not str(err).startswith(where):
            raise ConfigError(f"{where}{err}") from None
        raise
