"""The text-embedding cache of a captioned dataset: every distinct caption through the text encoder once.

Like the latent cache, it turns a training step's most expensive frozen model (T5-XXL, 4.7 B parameters) into a
lookup. Only the valid tokens of each caption are stored (bfloat16, T5's own precision), so a 12-token caption
costs 12 x 4096 values rather than 300 x 4096; :meth:`TextCache.cond` pads them back to the encoder's length
with a prefix mask, which is what the model reads (padding tokens are never attended).

    build_text_cache(captions, encoder.encode, "data/mine/text_t5.safetensors", meta)
    cache = TextCache("data/mine/text_t5.safetensors")
    cond = cache.cond(["a red panda eating bamboo", ...])   # {"y": (n, 1, L, C), "y_mask": (n, L)}
"""
import json
import logging
import os
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch
from tqdm.auto import tqdm

from ..errors import DataError
from ..storage import atomic_path
from .video_write import OutputExistsError

logger = logging.getLogger(__name__)

STORE_DTYPE = torch.bfloat16


def build_text_cache(captions: Sequence[str], encode_fn: Callable[[list], dict], path: Union[str, os.PathLike],
                     meta: Optional[dict] = None, batch_size: int = 16, progress: bool = True) -> Path:
    """Encode every distinct caption once with ``encode_fn`` (prompts -> ``{"y": (n, 1, L, C), "y_mask": (n, L)}``)
    and save the valid tokens. ``meta`` names the encoder (the cache is refused for another one)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.exists():
        raise OutputExistsError(f"{path} already exists; delete it to rebuild the text cache")
    unique = sorted(set(captions))
    if not unique or not all(isinstance(c, str) and c.strip() for c in unique):
        raise DataError("every clip needs a non-empty caption (the CSV column 'text') to train a text model")
    pieces, lengths, max_length = [], [], None
    batches = range(0, len(unique), batch_size)
    for start in tqdm(batches, desc="text cache", disable=not progress):
        out = encode_fn(unique[start:start + batch_size])
        y, mask = out["y"][:, 0], out["y_mask"].bool()  # (n, L, C), (n, L)
        max_length = y.shape[1]
        for tokens, valid in zip(y, mask):
            pieces.append(tokens[valid].to(STORE_DTYPE))  # (l, C): the valid tokens only
            lengths.append(int(valid.sum()))
    tensors = dict(tokens=torch.cat(pieces).contiguous(), lengths=torch.tensor(lengths, dtype=torch.long))
    metadata = dict(captions=json.dumps(unique), max_length=str(max_length), meta=json.dumps(meta or {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    logger.info("text cache: %d captions (%d tokens) -> %s", len(unique), int(tensors["lengths"].sum()), path)
    return path


class TextCache:
    """The captions of a :func:`build_text_cache` file, looked up by text."""

    def __init__(self, path: Union[str, os.PathLike]):
        from safetensors import safe_open
        from safetensors.torch import load_file

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such text cache")
        with safe_open(str(self.path), "pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(self.path))
        self.tokens, lengths = tensors["tokens"], tensors["lengths"]  # (total, C), (captions,)
        self.meta = json.loads(metadata.get("meta", "{}"))
        self.max_length = int(metadata["max_length"])
        starts = torch.cumsum(lengths, 0) - lengths
        self._rows = {c: (int(s), int(n)) for c, s, n in zip(json.loads(metadata["captions"]), starts, lengths)}

    def check_compatible(self, meta: dict) -> None:
        if self.meta != meta:
            raise DataError(f"{self.path} was made with another text encoder ({self.meta}, now {meta}); delete it "
                            f"(it is rebuilt) or set train.text_cache to another path")

    def missing(self, captions: Sequence[str]) -> list:
        """The captions this cache does not hold."""
        return sorted({c for c in captions if c not in self._rows})

    def cond(self, captions: Sequence[str]) -> dict:
        """``{"y": (n, 1, L, C) float32, "y_mask": (n, L) bool}`` of n captions, zero-padded to the encoder's L."""
        n, channels = len(captions), self.tokens.shape[1]
        y = torch.zeros(n, 1, self.max_length, channels)
        mask = torch.zeros(n, self.max_length, dtype=torch.bool)
        for i, caption in enumerate(captions):
            start, length = self._rows[caption]
            y[i, 0, :length] = self.tokens[start:start + length].float()
            mask[i, :length] = True
        return {"y": y, "y_mask": mask}
