"""Weights on disk: safe reading, atomic writing. Imports nothing of the project but its errors.

* :func:`load_state_dict` reads ``.safetensors`` or, weights-only, ``.pt/.pth/.bin/.ckpt``; pickles that would
  run code are refused.
* :func:`save_checkpoint` / :func:`save_state_dict` write safetensors atomically, with the model's
  ``config`` as JSON in the file's metadata (:func:`read_config` reads it back).
* :func:`atomic_path` / :func:`atomic_writer`: any file written so that a reader sees the old one or the whole
  new one, never a torn write.

* :func:`complete_checkpoints` / :func:`latest_checkpoint`: the training checkpoint folders of a run that were
  written to the end (``training/run_checkpoint.py`` writes and reads them).

Fitting a state dict to a model (key maps of DiT and Latte, shape checks) is ``models/convert.py``.
"""
import argparse
import contextlib
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .errors import CheckpointError

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WRAPPER_KEYS = ("ema", "model", "state_dict", "module")  # checked in this order: EMA weights first, as DiT's find_model
CONFIG_METADATA_KEY = "config"  # safetensors metadata entry holding the model's constructor kwargs (JSON)
DEFAULT_FILE_MODE = 0o644  # permissions of a new checkpoint (rw-r--r--), like open() under the usual umask

#################################################################################
#                                 Atomic writes                                 #
#################################################################################


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and ``os.replace`` it onto ``path``.

    On any exception the temporary file is removed and an existing file at ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # flush what the writer wrote to disk before it becomes visible
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else DEFAULT_FILE_MODE)  # mkstemp gave 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file for writing; on clean exit it is flushed, fsynced and renamed onto ``path``."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (readers see the old file or the whole new one)."""
    with atomic_writer(path, "wb") as f:
        f.write(data)


def _fsync_dir(directory: Path) -> None:
    """Persist a rename (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#################################################################################
#                                     Saving                                    #
#################################################################################


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel / torch.compile wrappers."""
    for attr in ("module", "_orig_mod"):
        inner = getattr(model, attr, None)
        if isinstance(inner, torch.nn.Module):
            model = inner
    return model


def _independent_tensors(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous tensors with no shared storage (safetensors refuses shared or strided tensors)."""
    out, seen = {}, set()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"cannot save {key!r}: it is a {type(value).__name__}, not a tensor")
        value = value.detach().cpu()
        storage = value.untyped_storage()
        whole = value.is_contiguous() and storage.nbytes() == value.numel() * value.element_size()
        if not whole or storage.data_ptr() in seen:
            value = value.clone(memory_format=torch.contiguous_format)
        seen.add(value.untyped_storage().data_ptr())
        out[key] = value
    return out


def save_state_dict(
    state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: Mapping[str, Any] | None = None
) -> None:
    """Write ``state_dict`` as safetensors, atomically. Non-string metadata values are stored as JSON."""
    tensors = _independent_tensors(state_dict)
    meta = {"format": "pt"}
    for key, value in (metadata or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None) -> None:
    """Save ``model``'s weights to ``path`` (safetensors), with its ``config`` under metadata key "config"."""
    model = unwrap_model(model)
    meta = dict(metadata or {})
    config = getattr(model, "config", None)
    if config is not None:
        try:
            meta[CONFIG_METADATA_KEY] = json.dumps(dict(config))
        except TypeError as err:
            raise CheckpointError(f"cannot save {path}: the model config is not JSON-serialisable ({err})") from err
    save_state_dict(model.state_dict(), path, meta)


def read_config(path: str | os.PathLike) -> dict | None:
    """The model config stored in a safetensors checkpoint, or None (no config, or not a safetensors file)."""
    path = _existing_file(path)
    if path.suffix not in SAFETENSORS_SUFFIXES:
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            text = (f.metadata() or {}).get(CONFIG_METADATA_KEY)
    except Exception as err:  # SafetensorError, OSError: header unreadable
        raise CheckpointError(f"cannot read checkpoint {path}: truncated or corrupt safetensors file ({err})") from err
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint {path} has a corrupt '{CONFIG_METADATA_KEY}' metadata entry "
                              f"({err})") from err


#################################################################################
#                                    Loading                                    #
#################################################################################


HF_WEIGHTS = "model.safetensors"  # the weights file of a Hugging Face PreTrainedModel folder


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir() and (path / HF_WEIGHTS).is_file():  # a save_pretrained folder (Open-Sora 1.2's STDiT3)
        return path / HF_WEIGHTS
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory without {HF_WEIGHTS}; pass a .safetensors or "
                              f".pt/.pth/.bin file, or a Hugging Face model folder")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def _load_pickle(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``: tensors, containers and numbers only, never code."""
    # DiT's train.py stores its argparse.Namespace next to the weights: harmless data, so allowed.
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower() or "weights_only" in str(err).lower():
            raise CheckpointError(
                f"refusing to load {path}: it needs more than weights-only unpickling (it stores code or custom "
                f"objects, which could run arbitrary code). Convert it to safetensors with a tool you trust"
            ) from None
        raise CheckpointError(f"cannot read checkpoint {path}: truncated or corrupt file ({err})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise CheckpointError(f"cannot read checkpoint {path}: truncated or corrupt file ({err})") from None


def as_state_dict(obj: Any, where: str) -> dict[str, torch.Tensor]:
    """Unwrap training checkpoints ({"ema": ...}, {"model": ...}, ...) and strip a "module." prefix."""
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{where} does not hold a state dict (found a {type(obj).__name__})")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{where} does not look like a state dict: entries {not_tensors[:5]} are not tensors "
            f"(known wrappers: {', '.join(WRAPPER_KEYS)})"
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors``, (weights-only) ``.pt/.pth/.bin/.ckpt`` or a Hugging Face model
    folder (its ``model.safetensors``), on CPU."""
    path = _existing_file(path)
    if path.suffix in SAFETENSORS_SUFFIXES:
        try:
            obj = load_file(str(path), device="cpu")
        except Exception as err:  # SafetensorError has no public base class to catch
            raise CheckpointError(f"cannot read checkpoint {path}: truncated or corrupt safetensors file "
                                  f"({err})") from None
    elif path.suffix in PICKLE_SUFFIXES:
        obj = _load_pickle(path)
    else:
        raise CheckpointError(
            f"checkpoint {path} has an unknown extension; use {', '.join(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)}"
        )
    return as_state_dict(obj, f"checkpoint {path}")


#################################################################################
#                        Checkpoint folders of a run                            #
#################################################################################

CKPT_DIR = "checkpoints"  # <run>/checkpoints/step_00000100/ holds one training checkpoint
META = "meta.json"  # written last: a folder without it is not complete
TMP_SUFFIX = ".tmp"  # a folder being written or deleted


def complete_checkpoints(run_dir) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first; ``.tmp`` folders (incomplete) are ignored.

    Read-only, so it is safe to call while the run is writing a checkpoint.
    """
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    found = [path for path in root.iterdir() if path.is_dir() and path.name.startswith("step_")
             and not path.name.endswith(TMP_SUFFIX) and (path / META).is_file()]
    return sorted(found, key=lambda p: int(p.name[len("step_"):]))


def latest_checkpoint(run_dir) -> Path | None:
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None
