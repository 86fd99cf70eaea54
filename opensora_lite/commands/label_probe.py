"""Which part of the class label does a shapes model use? Teacher-forced velocity loss under wrong labels.

    python tools/label_probe.py configs/shapes/stdit_shapes.py [--ckpt PATH] [--clips 190]

On clips of the latent cache (``train.latent_cache``), noised at a few levels t, it prints the model's
rectified-flow loss with the true label, the same shape moving the opposite way, another shape moving
the same way, and the null label. A model that has learned the direction of a class pays for the
flipped direction; one that ignores it does not.
"""
import os

from opensora_lite.cli import ArgumentParser
from opensora_lite.config import load_config

NOISE_LEVELS = (0.3, 0.5, 0.7, 0.9)  # t / num_timesteps: 0 is data, 1 is noise


def parse_args(argv):
    parser = ArgumentParser(prog="tools/label_probe.py", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="a shapes STDiT config with train.latent_cache")
    parser.add_argument("--ckpt", help="model weights (default: the config's ckpt.model)")
    parser.add_argument("--clips", type=int, default=190, help="clips taken evenly from the cache")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    cfg = load_config(args.config)
    import torch

    from opensora_lite.data.datasets import LatentCacheDataset
    from opensora_lite.data.shapes import DIRECTIONS, SHAPES
    from opensora_lite.errors import UserError
    from opensora_lite.models.convert import load_checkpoint
    from opensora_lite.registry import MODELS, SCHEDULERS, build_module

    cache_path = cfg.get("train", {}).get("latent_cache")
    if not cache_path or not os.path.isfile(cache_path):
        raise UserError(f"latent cache {cache_path!r} not found: train the model once (tools/train.py builds it)")
    model = build_module(cfg.model, MODELS, where=args.config)
    load_checkpoint(model, args.ckpt or cfg.ckpt.model)
    model.eval()
    scheduler = build_module(cfg.scheduler, SCHEDULERS, where=args.config)
    cache = LatentCacheDataset(cache_path)
    index = torch.linspace(0, len(cache) - 1, min(args.clips, len(cache))).long().tolist()
    x0 = torch.stack([cache[i]["latent"] for i in index])  # (N, C, T', H', W')
    y = torch.tensor([int(cache[i]["cond"]["y"]) for i in index])  # (N,)
    shape, direction = y // len(DIRECTIONS), y % len(DIRECTIONS)
    labels = {
        "true": y,
        "opposite direction": shape * len(DIRECTIONS) + (direction ^ 1),  # right<->left, down<->up
        "other shape": (shape + 1) % len(SHAPES) * len(DIRECTIONS) + direction,
        "null": torch.full_like(y, model.num_classes),
    }
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(args.seed))
    print("t      " + "  ".join(f"{name:>18}" for name in labels))
    for level in NOISE_LEVELS:
        t = torch.full((len(y),), level * scheduler.num_timesteps)
        with torch.no_grad():
            losses = [scheduler.training_losses(model, x0, dict(y=lab), t=t, noise=noise)["loss"].mean().item()
                      for lab in labels.values()]
        print(f"{level:<6} " + "  ".join(f"{loss:18.4f}" for loss in losses))

