"""Class ids -> noise -> sampler with guidance -> VAE decode -> videos. No files, no CLI.

:func:`build_generator` builds and loads the three parts of a config; :func:`generate` makes clips.
"""
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import CheckpointError, ConfigError, UserError
from ..registry import MODELS, SCHEDULERS, build_module
from .checkpoint import load_checkpoint

logger = logging.getLogger(__name__)


@dataclass
class Generator:
    model: torch.nn.Module
    vae: torch.nn.Module
    scheduler: object
    num_classes: int
    image_size: tuple


def _weights(path, what: str, key: str, where: str):
    if not path:
        raise CheckpointError(f"{where}: no {what} weights: set ckpt.{key} in the config or pass the path "
                              f"(or --random-init for a smoke run with random weights)")
    if Path(path).is_dir():
        raise CheckpointError(f"{what} weights {path} is a directory (expected by {where}: ckpt.{key}); "
                              f"pass a .safetensors file")
    if not Path(path).is_file():
        raise CheckpointError(f"{what} weights not found: {path} (expected by {where}: ckpt.{key}); "
                              f"train them or pass the right path, or use --random-init")
    return path


def build_generator(cfg, where: str, ckpt=None, vae_ckpt=None, random_init=False, device="cpu") -> Generator:
    """Build VAE, model and scheduler from ``cfg`` and load their weights (unless ``random_init``)."""
    missing = [key for key in ("model", "vae", "scheduler") if cfg.get(key) is None]
    if missing:
        raise ConfigError(f"{where}: the config has no {', '.join(repr(k) for k in missing)} entry")
    paths = dict(cfg.get("ckpt", {}))
    model = build_module(cfg.model, MODELS, where=where)
    vae = build_module(cfg.vae, MODELS, where=where)
    scheduler = build_module(cfg.scheduler, SCHEDULERS, where=where)
    if random_init:
        logger.warning("!!! --random-init: %s runs with RANDOM weights; its videos are noise, for smoke "
                       "runs and benchmarks only !!!", where)
    else:
        load_checkpoint(model, _weights(ckpt or paths.get("model"), "model", "model", where))
        vae_path = vae_ckpt or paths.get("vae")
        if vae_path or not cfg.vae.get("vae_2d", cfg.vae).get("from_pretrained"):
            load_checkpoint(vae, _weights(vae_path, "VAE", "vae", where))
    model.to(device).eval()
    vae.to(device).eval()
    return Generator(model, vae, scheduler, model.num_classes, tuple(cfg.get("image_size", (256, 256))))


def latent_shape(gen: Generator, num_frames: int) -> tuple:
    """(C, T', H', W') of a clip of ``num_frames`` frames, or a UserError if it is not supported."""
    if not isinstance(num_frames, int) or num_frames < 1:
        raise UserError(f"--frames must be a positive integer, got {num_frames!r}")
    pt, ph, pw = gen.model.patch_size
    # The VAE's spatial downsampling (1 when it has none): H and W must be multiples of it times the patch.
    _, fh, fw = getattr(getattr(gen.vae, "spatial_vae", gen.vae), "patch_size", (1, 1, 1))
    height, width = gen.image_size if len(gen.image_size) == 2 else (0, 0)
    if any(not isinstance(s, int) or s < 1 for s in (height, width)) or height % (fh * ph) or width % (fw * pw):
        raise ConfigError(f"image_size {tuple(gen.image_size)} is not supported: height and width must be positive "
                          f"multiples of {fh * ph} and {fw * pw} (VAE downsampling {fh}x{fw} times model patch "
                          f"{ph}x{pw})")
    t, h, w = gen.vae.get_latent_size([num_frames, height, width])
    if t % pt or h % ph or w % pw:
        raise UserError(f"{num_frames} frames give {t} latent frames, which the model's temporal patch "
                        f"{pt} does not divide; choose a frame count whose latent length is a multiple of {pt}")
    return gen.vae.out_channels, t, h, w


@torch.no_grad()
def generate(gen: Generator, classes, num_frames: int, seed: int = 0, steps=None, cfg_scale=None,
             dtype=torch.float32, batch_size: int = 4, progress: bool = True) -> tuple[torch.Tensor, dict]:
    """Videos (N, 3, T, H, W) in [-1, 1] for class ids ``classes``, and timings in seconds.

    Sample i starts from noise seeded by ``seed + i``: the same seed gives the same videos, whatever
    the batch size.
    """
    classes = [int(c) for c in classes]
    bad = [c for c in classes if not 0 <= c < gen.num_classes] if gen.num_classes else []  # 0: unconditional
    if bad:
        raise UserError(f"class id(s) {bad} out of range: this model has classes 0..{gen.num_classes - 1}")
    shape = latent_shape(gen, num_frames)
    device = next(gen.model.parameters()).device
    z = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed + i)) for i in range(len(classes))])
    y = torch.tensor(classes)
    timings = dict(sampling=0.0, decoding=0.0)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    videos = []
    for start in tqdm(range(0, len(classes), batch_size), desc="batches", disable=not progress or len(classes) <= batch_size):
        rows = slice(start, start + batch_size)
        kwargs = dict(y=y[rows].to(device),  # the null class comes from model.null_cond (guidance.model_output)
                      height=gen.image_size[0], width=gen.image_size[1], num_frames=num_frames)
        t0 = time.perf_counter()
        with autocast:
            latents = gen.scheduler.sample(gen.model, z[rows].to(device), kwargs, cfg_scale=cfg_scale,
                                           num_steps=steps, progress=progress,
                                           generator=torch.Generator(device).manual_seed(seed + start))
        t1 = time.perf_counter()
        with autocast:
            videos.append(gen.vae.decode(latents.to(torch.float32), num_frames=num_frames).float().clamp(-1, 1).cpu())
        timings["sampling"] += t1 - t0
        timings["decoding"] += time.perf_counter() - t1
    return torch.cat(videos), timings
