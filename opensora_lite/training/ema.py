"""Exponential moving average of a model's weights, kept in float32 beside the model.

It reads the model's parameters (never the optimizer's internals), so it works the same under DDP,
ZeRO and plain training; every rank holds the same copy because every rank holds the same weights.
The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after n updates, so a short run's average is
not dominated by its random initial weights (with a flat 0.9999, 90% of the initial weights would
still be there after 1,000 steps).
"""
import copy

import torch
from torch import nn

from ..errors import ConfigError


class EMA:
    """``ema = d * ema + (1 - d) * weights`` after each optimizer step, d warming up to ``decay``."""

    def __init__(self, model: nn.Module, decay: float = 0.9999):
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.model = copy.deepcopy(model).float().eval().requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        weight = 1.0 - self.current_decay()
        ema_params = dict(self.model.named_parameters())
        for name, param in model.named_parameters():
            ema_params[name].lerp_(param.detach().float(), weight)
        self.num_updates += 1

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state_dict: dict, num_updates: int) -> None:
        self.model.load_state_dict(state_dict, strict=True)
        self.num_updates = num_updates
