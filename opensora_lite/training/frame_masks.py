"""Training-time frame masks: which latent frames of a clip are given (clean) and which are generated.

``train.frame_mask`` in a config sets the probability of each kind of clip, e.g.

    frame_mask=dict(none=0.5, first=0.2, first_k=0.15, last_k=0.15, max_k=4)

* ``none``: every latent frame is generated (unconditional and class-conditional sampling);
* ``first``: latent frame 0 is given (image-to-video: with a causal temporal VAE the first pixel frame
  has a latent frame of its own);
* ``first_k``: the first k latent frames are given (continuation, and each window of a long video);
* ``last_k``: the last k are given (going backwards in time, and more varied overlaps).

k is uniform in 1..max_k (default: T - 1, never all frames). A mask is (N, T) bool, True = generated,
the convention of the objectives' ``mask`` and of the model's ``frame_mask``.

A clip may fix its own kind (the dataset's ``frame_mask`` per clip, from a CSV column of that name): a
clip that starts after the object has left only makes sense as a continuation, ``first_k``. Its k is still
drawn, and the drawn kind of every other clip is kept, so the random stream does not depend on the data.
"""
from typing import Optional

import torch

from ..data.datasets import FRAME_MASK_KINDS as KINDS
from ..errors import ConfigError


class FrameMaskSampler:
    """Draws one (N, T) mask per training step from the step's generator, or nothing when not configured."""

    def __init__(self, settings: Optional[dict]):
        self.probs = None
        self.max_k = None
        if settings is None:
            return
        if not isinstance(settings, dict):
            raise ConfigError(f"train.frame_mask must be a dict of probabilities such as "
                              f"dict(none=0.5, first=0.2, first_k=0.15, last_k=0.15), got {settings!r}")
        unknown = sorted(set(settings) - set(KINDS) - {"max_k"})
        if unknown:
            raise ConfigError(f"unknown key(s) {unknown} in train.frame_mask; known: {', '.join(KINDS)}, max_k")
        probs = [settings.get(kind, 0.0) for kind in KINDS]
        if any(not isinstance(p, (int, float)) or isinstance(p, bool) or p < 0 for p in probs) or \
                abs(sum(probs) - 1.0) > 1e-6:
            raise ConfigError(f"train.frame_mask probabilities must be numbers >= 0 that sum to 1, got "
                              f"{dict(zip(KINDS, probs))}")
        max_k = settings.get("max_k")
        if max_k is not None and (not isinstance(max_k, int) or isinstance(max_k, bool) or max_k < 1):
            raise ConfigError(f"train.frame_mask.max_k must be a positive integer, got {max_k!r}")
        self.probs = torch.tensor(probs, dtype=torch.float64)
        self.max_k = max_k

    def draw(self, n: int, frames: int, gen: torch.Generator) -> Optional[torch.Tensor]:
        """(n, 2) long rows (kind index into KINDS, k) drawn from ``gen``; None when frame masks are off.
        :meth:`masks` turns them into masks; a rank keeps its rows of the global batch's draw."""
        if self.probs is None:
            return None
        max_k = min(self.max_k or frames - 1, frames - 1)
        kind = torch.multinomial(self.probs.expand(n, -1), 1, generator=gen)[:, 0]  # (n,) index into KINDS
        k = torch.randint(1, max(max_k, 1) + 1, (n,), generator=gen)  # (n,), drawn for every row
        return torch.stack([kind, k], dim=1)  # (n, 2)

    @staticmethod
    def masks(draws: torch.Tensor, frames: int, forced: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(n, frames) bool masks (True = generated) from :meth:`draw`'s (n, 2) rows.

        ``forced`` (n,) long: a clip's own kind (a KINDS index, e.g. ``first_k`` for a clip that only makes
        sense as a continuation: the CSV column ``frame_mask``), or -1 to keep the drawn one; k stays drawn.
        """
        kind, k = draws[:, 0], draws[:, 1]  # (n,), (n,)
        if forced is not None:
            kind = torch.where(forced >= 0, forced.to(kind), kind)
        n = draws.shape[0]
        if frames < 2:  # a single latent frame: giving it would leave nothing to generate
            return torch.ones(n, frames, dtype=torch.bool)
        index = torch.arange(frames)[None]  # (1, T)
        given = torch.zeros(n, frames, dtype=torch.bool)  # (n, T), kind "none"
        given |= (kind == KINDS.index("first"))[:, None] & (index == 0)
        given |= (kind == KINDS.index("first_k"))[:, None] & (index < k[:, None])
        given |= (kind == KINDS.index("last_k"))[:, None] & (index >= frames - k[:, None])
        return ~given  # (n, T): True = generated
