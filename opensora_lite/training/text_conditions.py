"""The text condition of a training step: each clip's caption, looked up in the text-embedding cache.

The first run on a captioned dataset encodes every distinct caption once with the config's ``text_encoder``
(rank 0; ``data/text_cache.py``) into ``train.text_cache`` (default: ``<run>/text_cache.safetensors``); later
runs and resumes read it. Caption dropout for guidance is the model's ``drop_cond`` (the learned null caption),
drawn like label dropout from the step's generator, so exact resume and N processes = 1 hold as for classes.
"""
import json
import logging
from pathlib import Path

import torch
import torch.distributed as dist

from ..data.text_cache import TextCache, build_text_cache
from ..errors import ConfigError, DataError
from ..registry import MODELS, build_module

logger = logging.getLogger(__name__)


class TextConditions:
    """Clip indices -> ``{"y", "y_mask", "fps", "height", "width"}``, the cond of a text model."""

    def __init__(self, cache: TextCache, captions: list, image_size: tuple, fps: float):
        self.cache, self.captions = cache, captions
        self.image_size, self.fps = tuple(image_size), float(fps)

    def encode(self, prompts) -> dict:
        """The pipeline's text-encoder interface, from the cache (sample videos during training)."""
        return self.cache.cond(prompts)

    def to(self, device) -> "TextConditions":
        return self

    def cond(self, indices, device, image_size=None) -> dict:
        """The cond of clips ``indices`` (a batch of ``image_size``, default the config's)."""
        height, width = image_size or self.image_size
        rows = [self.captions[int(i)] for i in indices]
        n = len(rows)
        cond = {k: v.to(device) for k, v in self.cache.cond(rows).items()}  # y (n, 1, L, C), y_mask (n, L)

        def full(value):
            return torch.full((n,), float(value), device=device)  # (n,)

        return dict(cond, fps=full(self.fps), height=full(height), width=full(width))


def build_text_conditions(cfg, captions, path, run_dir: Path, info, where: str, image_size, fps) -> TextConditions:
    """Encode the captions into the cache (rank 0, if it is not there yet) and read it on every rank."""
    if captions is None:
        raise ConfigError(f"{where}: the model reads text (caption_channels) but the dataset has no 'text' column; "
                          f"add one caption per clip to the CSV")
    empty = [i for i, c in enumerate(captions) if not c]
    if empty:
        raise DataError(f"{where}: {len(empty)} clips have an empty caption (CSV column 'text'), e.g. row "
                        f"{empty[0] + 2}")
    spec = cfg.get("text_encoder")
    if spec is None:
        raise ConfigError(f"{where}: the model reads text but the config has no text_encoder entry")
    spec = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    meta = dict(text_encoder=json.loads(json.dumps(spec, default=str)))
    path = Path(path) if path else run_dir / "text_cache.safetensors"
    if info.is_main and not path.exists():
        encoder = build_module(spec, MODELS, where=where)
        build_text_cache(captions, encoder.encode, path, meta)
    dist.barrier()
    cache = TextCache(path)
    cache.check_compatible(meta)
    missing = cache.missing(captions)
    if missing:
        raise DataError(f"{path} lacks {len(missing)} captions of the dataset (e.g. {missing[0]!r}): it was made for "
                        f"other data; delete it (it is rebuilt) or set train.text_cache to another path")
    return TextConditions(cache, captions, image_size, fps)
