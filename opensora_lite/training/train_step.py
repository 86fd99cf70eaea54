"""One training step's machinery, shared by the STDiT and VAE trainers and ``benchmarks/shapes_recipe.py``.

:class:`TrainStep` owns what every loop needs around its loss: AdamW, the linear LR warm-up (then a flat or
cosine learning rate), gradient clipping, the EMA of the weights, and how all of them are saved to and
restored from a checkpoint folder. The randomness of step ``k`` comes from :func:`step_generator` (seed, k)
alone, so a run resumed from a checkpoint, or run on another number of processes, draws exactly what an
uninterrupted one does.
"""
import math

import torch
from torch import nn

from .ema import EMA
from .run_checkpoint import flatten_optimizer_state, unflatten_optimizer_state

STEP_SEED_STRIDE = 1_000_003  # a prime: the generators of (seed, step) and (seed + 1, step') never collide in practice


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of every random draw of training step ``step`` (0-based) of a run seeded ``seed``."""
    return torch.Generator().manual_seed(seed * STEP_SEED_STRIDE + step)


LR_SCHEDULES = ("constant", "cosine")


def lr_factor(warmup_steps: int, schedule: str = "constant", max_steps: int = 0, min_lr_ratio: float = 0.0):
    """LR multiplier after i optimizer steps: linear from 1/warmup_steps to 1, then flat ("constant") or a
    half cosine from 1 down to ``min_lr_ratio`` at step ``max_steps`` ("cosine")."""
    def factor(i: int) -> float:
        if i < warmup_steps:
            return (i + 1) / warmup_steps
        if schedule == "constant" or max_steps <= warmup_steps:
            return 1.0
        progress = min(1.0, (i - warmup_steps) / (max_steps - warmup_steps))
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


class TrainStep:
    """AdamW + warm-up (+ cosine decay) + clipping + EMA over ``model``'s trainable parameters.

    :meth:`boost` hands the model and optimizer to a colossalai Booster, which then owns backward (and,
    under ZeRO, clipping); without one the step is plain PyTorch. :meth:`apply` takes a step on a loss;
    :meth:`state` / :meth:`load_state` are the tensors and JSON of a checkpoint.
    """

    def __init__(self, model: nn.Module, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999),
                 warmup_steps: int = 0, grad_clip: float = 0.0, ema_decay: float = 0.9999,
                 lr_schedule: str = "constant", max_steps: int = 0, min_lr: float = 0.0):
        self.raw_model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.ema = EMA(model, ema_decay)
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))
        # The LR scheduler stays outside any Booster: it drives the param groups of the torch optimizer,
        # which ZeRO keeps using for its master weights.
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_factor(warmup_steps, lr_schedule, max_steps, min_lr / lr))
        self.grad_clip = grad_clip
        self.clip_in_booster = False
        self.booster = None
        self.model = model  # what the loss is computed with: the raw model, or the Booster's wrapper

    def boost(self, booster, clip_in_booster: bool) -> None:
        """Wrap model and optimizer with a colossalai Booster; ``clip_in_booster``: its plugin clips (ZeRO)."""
        self.booster, self.clip_in_booster = booster, clip_in_booster
        self.model, self.optimizer, *_ = booster.boost(self.raw_model, self.optimizer)

    def apply(self, loss: torch.Tensor) -> None:
        """Backward, clip, optimizer and LR steps, then the EMA update."""
        if self.booster is None:
            loss.backward()
        else:
            self.booster.backward(loss, self.optimizer)
        if self.grad_clip > 0 and not self.clip_in_booster:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.lr_scheduler.step()
        self.ema.update(self.raw_model)

    def skip(self) -> None:
        """Drop this step's gradients (a non-finite loss): nothing else moves."""
        self.optimizer.zero_grad()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state(self) -> tuple[dict, dict]:
        """``(tensors, meta)`` of a checkpoint: model, EMA and optimizer tensors; JSON-able rest.

        A collective under ZeRO (the optimizer state is gathered): every rank must call it.
        """
        opt_tensors, opt_info = flatten_optimizer_state(self.optimizer.state_dict())
        tensors = dict(model=self.raw_model.state_dict(), ema=self.ema.state_dict(), optimizer=opt_tensors)
        meta = dict(optimizer=opt_info, lr_scheduler=self.lr_scheduler.state_dict(), ema_updates=self.ema.num_updates)
        return tensors, meta

    def load_state(self, tensors: dict, meta: dict) -> None:
        """Restore the EMA, optimizer and LR schedule of a checkpoint (the model's weights are loaded by the caller
        before the TrainStep is built, so the EMA starts from them)."""
        self.ema.load_state_dict(tensors["ema"], meta["ema_updates"])
        self.optimizer.load_state_dict(unflatten_optimizer_state(tensors["optimizer"], meta["optimizer"]))
        self.lr_scheduler.load_state_dict(meta["lr_scheduler"])
