"""Fitting a state dict to a model: the key maps of foreign checkpoints and one error for every misfit.

:func:`load_checkpoint` converts facebookresearch DiT, Vchitect Latte and Open-Sora 1.2 STDiT3 checkpoints (their
key maps, :func:`convert_dit_state_dict`, :func:`convert_latte_state_dict` and
:func:`convert_opensora_state_dict`), inflates image checkpoints into video
models, and reports every missing, unexpected or wrongly shaped key in one
:class:`~opensora_lite.errors.CheckpointError`. Open-Sora VAE checkpoints need no key map: the VAE modules use
Open-Sora's names. Reading and writing files is ``storage.py``.
"""
import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Mapping

import torch

from ..errors import CheckpointError
from ..storage import as_state_dict, load_state_dict, read_config, unwrap_model
from .layers import ROPE_THETA, get_1d_sincos_pos_embed, get_2d_sincos_pos_embed

logger = logging.getLogger(__name__)

POS_EMBED_ATOL = 1e-5  # a stored pos_embed / temp_embed farther than this from its sin-cos table was learned
LATTE_LAYOUT = "absolute-once"  # the STDiT temporal_position that Latte's weights were trained with

#################################################################################
#                       Foreign checkpoints: the key maps                       #
#################################################################################

# facebookresearch/DiT -> STDiT: everything else keeps its name (see docs/contracts.md, "Image-DiT compatibility").
DIT_KEY_MAP = [(re.compile(r"^blocks\.(\d+)\."), r"spatial_blocks.\1.")]


def is_dit_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """A facebookresearch DiT checkpoint: flat ``blocks.{i}.`` keys and/or a stored ``pos_embed``."""
    return "pos_embed" in state_dict or any(k.startswith("blocks.") for k in state_dict)


def convert_dit_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename DiT keys to STDiT's, give the 2-D patch conv a time axis of 1, check and drop ``pos_embed``."""
    out = {}
    for key, value in state_dict.items():
        for pattern, replacement in DIT_KEY_MAP:
            key = pattern.sub(replacement, key)
        out[key] = value
    _add_time_axis(out)
    _check_pos_embed(out.pop("pos_embed", None), "DiT")
    return out


# Vchitect/Latte -> STDiT: Latte's blocks alternate, blocks.{2k} is spatial block k and blocks.{2k+1}
# temporal block k; everything else keeps its name. Both sin-cos tables are stored (frozen parameters).
LATTE_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.")


def is_latte_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """A Vchitect/Latte checkpoint: it stores its frame table ``temp_embed`` (DiT has none)."""
    return "temp_embed" in state_dict


def convert_latte_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename Latte keys to STDiT's, give the 2-D patch conv a time axis, check and drop both position tables."""
    blocks = {int(m[1]) for m in map(LATTE_BLOCK_KEY.match, state_dict) if m}
    if len(blocks) % 2:
        raise CheckpointError(f"Latte checkpoint has {len(blocks)} blocks, an odd number: its blocks must alternate "
                              f"spatial and temporal (Latte's forward fails on an odd depth too)")
    out = {}
    for key, value in state_dict.items():
        match = LATTE_BLOCK_KEY.match(key)
        if match:
            index = int(match[1])
            kind = "temporal" if index % 2 else "spatial"
            key = f"{kind}_blocks.{index // 2}.{key[match.end():]}"
        out[key] = value
    _add_time_axis(out)
    _check_pos_embed(out.pop("pos_embed", None), "Latte")
    temp_embed = out.pop("temp_embed")
    frames, dim = temp_embed.shape[-2:]
    table = get_1d_sincos_pos_embed(dim, torch.arange(frames)).float()  # (F, D)
    _check_fixed_table(temp_embed.reshape(frames, dim), table, "Latte temp_embed", "1-D")
    return out


# hpcaitech/Open-Sora v1.2 STDiT3 -> STDiT: every key keeps its name; the frozen rotary frequency table
# (``rope.freqs``, a parameter of rotary_embedding_torch) is checked against the one STDiT computes and dropped.
OPENSORA_ROPE_KEY = "rope.freqs"


def is_opensora_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """An Open-Sora 1.2 STDiT3 checkpoint: it stores its rotary frequencies."""
    return OPENSORA_ROPE_KEY in state_dict


def convert_opensora_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Check and drop ``rope.freqs`` (1 / 10000^(2i / Dh)); every other key is already STDiT's."""
    out = dict(state_dict)
    freqs = out.pop(OPENSORA_ROPE_KEY).float()
    head_dim = 2 * freqs.numel()
    table = 1.0 / ROPE_THETA ** (torch.arange(0, head_dim, 2).float() / head_dim)
    _check_fixed_table(freqs, table, f"Open-Sora {OPENSORA_ROPE_KEY}", "rotary")
    return out


def _add_time_axis(state_dict: dict[str, torch.Tensor]) -> None:
    """A 2-D patch conv (D, C, p, p) becomes STDiT's 3-D one (D, C, 1, p, p), in place."""
    weight = state_dict.get("x_embedder.proj.weight")
    if weight is not None and weight.ndim == 4:
        state_dict["x_embedder.proj.weight"] = weight.unsqueeze(2)  # (D, C, p, p) -> (D, C, 1, p, p)


def _check_pos_embed(pos_embed: torch.Tensor | None, source: str) -> None:
    """A stored 2-D ``pos_embed`` (1, S, D) must be the fixed sin-cos table of its square grid."""
    if pos_embed is None:
        return
    num_patches, dim = pos_embed.shape[-2:]
    side = int(round(num_patches**0.5))
    if side * side != num_patches:
        raise CheckpointError(f"{source} pos_embed has {num_patches} positions, not a square grid")
    table = get_2d_sincos_pos_embed(dim, side, side)  # (S, D)
    _check_fixed_table(pos_embed.reshape(num_patches, dim), table, f"{source} pos_embed", "2-D")


def _check_fixed_table(stored: torch.Tensor, table: torch.Tensor, what: str, kind: str) -> None:
    error = (stored.float() - table).abs().max().item()
    if not error <= POS_EMBED_ATOL:
        raise CheckpointError(
            f"{what} differs from the fixed {kind} sin-cos table by {error:.3g} (> {POS_EMBED_ATOL}): "
            f"learned position embeddings are not supported (STDiT computes its positions)"
        )


#################################################################################
#                               Fitting a model                                 #
#################################################################################


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did: keys left out, keys ignored, and conversions applied."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    converted_from: str | None = None  # "dit", "latte" or "opensora" when a foreign checkpoint was converted
    inflated: bool = False  # an image checkpoint was loaded: temporal blocks kept their init


def _shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def load_checkpoint(
    model: torch.nn.Module, source: str | os.PathLike | Mapping[str, torch.Tensor], strict: bool = True
) -> LoadReport:
    """Load ``source`` (a checkpoint path or a state dict) into ``model``; return a :class:`LoadReport`.

    Wrongly shaped keys always fail; missing/unexpected keys fail when ``strict``, all in one
    CheckpointError. An image checkpoint (no ``temporal_blocks.*``) may leave every temporal block
    missing: they keep their adaLN-Zero init, so the video model equals the image model per frame.
    Floating tensors are cast to the dtype of the model's tensor they replace.
    """
    model = unwrap_model(model)
    if isinstance(source, Mapping):
        where = "state dict"
        state_dict = as_state_dict(source, where)
    else:
        where = f"checkpoint {source}"
        state_dict = load_state_dict(source)
    report = LoadReport()
    if is_latte_state_dict(state_dict):
        state_dict = convert_latte_state_dict(state_dict)
        report.converted_from = "latte"
        layout = getattr(model, "temporal_position", None)
        if layout != LATTE_LAYOUT:
            raise CheckpointError(f"{where} is a Latte checkpoint but the model has temporal_position={layout!r}; "
                                  f"Latte's weights need temporal_position={LATTE_LAYOUT!r}: "
                                  f"use a configs/latte/ config")
    elif is_opensora_state_dict(state_dict):
        state_dict = convert_opensora_state_dict(state_dict)
        report.converted_from = "opensora"
    elif is_dit_state_dict(state_dict):
        state_dict = convert_dit_state_dict(state_dict)
        report.converted_from = "dit"

    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    report.unexpected = [k for k in state_dict if k not in expected]
    wrong_shapes = [
        f"{k}: expected {_shape(expected[k].shape)} found {_shape(state_dict[k].shape)}"
        for k in expected
        if k in state_dict and state_dict[k].shape != expected[k].shape
    ]
    temporal_missing = [k for k in missing if k.startswith("temporal_blocks.")]
    image_checkpoint = bool(temporal_missing) and not any(k.startswith("temporal_blocks.") for k in state_dict)
    if image_checkpoint:
        missing = [k for k in missing if not k.startswith("temporal_blocks.")]
    report.missing = missing

    problems = []
    if wrong_shapes:
        problems.append(f"{len(wrong_shapes)} wrongly shaped key(s): " + "; ".join(wrong_shapes))
    if strict and missing:
        problems.append(f"{len(missing)} missing key(s): {missing}")
    if strict and report.unexpected:
        problems.append(f"{len(report.unexpected)} unexpected key(s): {report.unexpected}")
    if problems and report.converted_from == "latte":  # one readable line, not hundreds of keys
        raise CheckpointError(f"{where} is a Latte checkpoint ({_describe(state_dict)}) that does not fit the model "
                              f"({_describe(expected)}): use the configs/latte/ config of its dataset")
    if problems:
        raise CheckpointError(
            f"{where} does not fit {type(model).__name__}{_config_hint(source, model)}: " + " | ".join(problems)
        )

    if image_checkpoint:
        num_blocks = len({k.split(".")[1] for k in temporal_missing})
        logger.info("inflating image checkpoint: %d temporal blocks keep their zero init", num_blocks)
        report.inflated = True

    loadable = {}
    for key, value in state_dict.items():
        if key in expected:
            target = expected[key]
            cast = value.is_floating_point() and target.is_floating_point()
            loadable[key] = value.to(target.dtype) if cast else value
    model.load_state_dict(loadable, strict=False)
    return report


def _describe(state_dict: Mapping[str, torch.Tensor]) -> str:
    """'14 block pairs, hidden 1152, 101 classes, 8 output channels' of an STDiT-named state dict."""
    pairs = len({k.split(".")[1] for k in state_dict if k.startswith("spatial_blocks.")})
    t_mlp = state_dict.get("t_embedder.mlp.2.weight")
    hidden = "?" if t_mlp is None else t_mlp.shape[0]
    table = state_dict.get("y_embedder.embedding_table.weight")
    classes = "no" if table is None else table.shape[0] - 1  # Latte's table has a null row (dropout 0.1)
    proj, linear = state_dict.get("x_embedder.proj.weight"), state_dict.get("final_layer.linear.weight")
    out = "?" if proj is None or linear is None else linear.shape[0] // proj.shape[2:].numel()
    return f"{pairs} spatial+temporal block pairs, hidden {hidden}, {classes} classes, {out} output channels"


def _config_hint(source, model: torch.nn.Module) -> str:
    """' (checkpoint config differs in: depth=2 vs 4)' when both configs are known and differ, else ''."""
    if isinstance(source, Mapping) or not hasattr(model, "config"):
        return ""
    try:
        stored = read_config(source)
    except CheckpointError:
        return ""
    if not stored:
        return ""
    ours = json.loads(json.dumps(dict(model.config)))
    keys = sorted(set(stored) | set(ours))
    diffs = [f"{k}={stored.get(k)!r} vs {ours.get(k)!r}" for k in keys if stored.get(k) != ours.get(k)]
    return f" (checkpoint config vs model config: {', '.join(diffs)})" if diffs else ""
