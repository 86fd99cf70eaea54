"""Training checkpoints as folders that are either complete or absent.

A checkpoint is ``<run>/checkpoints/step_00000100/`` holding ``model.safetensors``, ``ema.safetensors``,
``optimizer.safetensors`` and ``meta.json`` (step, data position, LR-scheduler state, config). It is written
into ``step_00000100.tmp/``, every file fsynced, and only then renamed: a crash (SIGKILL, full disk) at any
moment leaves either the previous checkpoints or a ``.tmp`` folder that resume ignores and the next save
removes. Checkpoints are deleted the same way round (renamed to ``.tmp``, then removed).
"""
import json
import logging
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..models.convert import load_checkpoint
from ..storage import CKPT_DIR, META, TMP_SUFFIX, complete_checkpoints, latest_checkpoint

logger = logging.getLogger(__name__)



##################################################################################
#                   Optimizer state <-> flat tensors (safetensors)               #
##################################################################################

def flatten_optimizer_state(state_dict: dict) -> tuple[dict, dict]:
    """``{"state": {i: {k: v}}, "param_groups": [...]}`` -> flat tensors + JSON-able param groups."""
    tensors, scalars = {}, {}
    for idx, state in state_dict["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"state.{idx}.{key}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer_state(tensors: dict, info: dict) -> dict:
    state: dict = {}
    for flat in (tensors, info["scalars"]):
        for name, value in flat.items():
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": info["param_groups"]}


##################################################################################
#                              Folder checkpoints                                #
##################################################################################

def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_path(run_dir, step: int) -> Path:
    return Path(run_dir) / CKPT_DIR / f"step_{step:08d}"


def save_run_checkpoint(run_dir, step: int, tensors: dict, meta: dict, keep_last: int = 3) -> Path:
    """Write ``tensors`` (``{"model": state_dict, ...}``) and ``meta`` as one complete checkpoint folder.

    On any failure (full disk, killed write) the partial folder is removed and the earlier
    checkpoints are untouched. Keeps the newest ``keep_last`` complete checkpoints (0 keeps all).
    """
    final = checkpoint_path(run_dir, step)
    tmp = final.with_name(final.name + TMP_SUFFIX)
    _remove_stale_tmp(final.parent)
    tmp.mkdir(parents=True)
    try:
        for name, state_dict in tensors.items():
            file = tmp / f"{name}.safetensors"
            save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, str(file))
            _fsync(file)
        (tmp / META).write_text(json.dumps(dict(meta, step=step), indent=1))
        _fsync(tmp / META)
        _fsync(tmp)
        if final.exists():  # the same step written again (e.g. the last step after a resume)
            _remove_checkpoint(final)
        os.rename(tmp, final)
        _fsync(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_last > 0:
        for old in complete_checkpoints(run_dir)[:-keep_last]:
            _remove_checkpoint(old)
    return final


def _remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint folder so that no kill leaves it half deleted yet looking complete.

    It is first renamed (atomic) to a ``.tmp`` name, which resume ignores and removes; a plain rmtree
    killed midway could leave ``meta.json`` next to missing weights.
    """
    trash = path.with_name(path.name + ".old" + TMP_SUFFIX)
    shutil.rmtree(trash, ignore_errors=True)
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _remove_stale_tmp(root: Path) -> None:
    """Delete the ``.tmp`` folders that interrupted writes or deletions left in ``root``.

    Only the writer of a run calls this (from :func:`save_run_checkpoint`): a reader deleting them could
    destroy a checkpoint being written by a live run.
    """
    if root.is_dir():
        for path in root.glob("*" + TMP_SUFFIX):
            logger.warning("removing incomplete checkpoint %s (a write was interrupted)", path)
            shutil.rmtree(path, ignore_errors=True)


def load_run_checkpoint(path, required=("model", "ema", "optimizer")) -> tuple[dict, dict]:
    """Return ``({"model": sd, "ema": sd, ...}, meta)`` of a checkpoint folder holding ``required`` files."""
    path = Path(path)
    if not (path / META).is_file() and (path / CKPT_DIR).is_dir():  # a run folder: its newest checkpoint
        path = latest_checkpoint(path) or path
    if not (path / META).is_file():
        raise CheckpointError(f"{path} is not a complete training checkpoint (no {META}); "
                              f"pass a folder like <run>/{CKPT_DIR}/step_00000100 or the run folder")
    tensors, file = {}, path / META
    try:
        meta = json.loads(file.read_text())
        for file in sorted(path.glob("*.safetensors")):
            tensors[file.stem] = load_file(str(file))
    except Exception as err:  # SafetensorError (truncated, corrupt, not safetensors), JSONDecodeError, OSError
        raise CheckpointError(f"cannot read training checkpoint file {file}: {type(err).__name__}: {err}") from None
    missing = [f"{name}.safetensors" for name in required if name not in tensors]
    if missing or not isinstance(meta, dict) or "step" not in meta:
        raise CheckpointError(f"training checkpoint {path} is incomplete: missing {missing or [META + ' step']}")
    return tensors, meta


def resume(model, run_dir, path=None, log: bool = True) -> tuple[int, dict | None, dict | None]:
    """Load the weights of ``path`` (or of the run folder's newest complete checkpoint) into ``model``.

    Returns ``(start step, checkpoint tensors, meta)``, or ``(0, None, None)`` for a fresh run.
    """
    path = Path(path) if path else latest_checkpoint(run_dir)
    if path is None:
        return 0, None, None
    tensors, meta = load_run_checkpoint(path)
    load_checkpoint(model, tensors["model"])
    if log:
        logger.info("resuming from %s (step %d)", path, meta["step"])
    return meta["step"], tensors, meta
