"""The STDiT training loop: data -> latents -> scheduler loss -> Booster -> EMA -> folder checkpoints.

Exact resume: every random draw of a step (timesteps, noise, label dropout) comes from a generator
seeded by (seed, step) and is drawn for the whole global batch, each rank keeping its slice; the data
order is a function of (seed, step) too (:class:`GlobalBatchSampler`). So a run killed at any moment
and resumed from its last checkpoint, or run on a different number of processes with the same global
batch, computes the same steps (fp32).
"""
import hashlib
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import (
    DEFAULT_FPS,
    RUN_CONFIG,
    RUN_WEIGHTS,
    config_image_size,
    config_num_frames,
    is_number,
    section_settings,
)
from ..data.bucket_cache import BucketLatentCache, build_bucket_cache, clips_digest
from ..data.buckets import BucketAssigner, BucketBatchSampler, bucket_table
from ..data.datasets import LatentCacheDataset, build_latent_cache
from ..data.sampler import GlobalBatchSampler
from ..errors import ConfigError, UserError
from ..models.convert import load_checkpoint
from ..registry import DATASETS, MODELS, SCHEDULERS, build_module
from ..schedulers.settings import VideoSize
from ..storage import save_checkpoint
from .distributed import all_reduce_mean, init_distributed, make_booster, require_colossalai
from .frame_masks import FrameMaskSampler
from .run_checkpoint import CKPT_DIR, save_run_checkpoint
from .run_checkpoint import resume as resume_run
from .text_conditions import build_text_conditions
from .train_step import LR_SCHEDULES, TrainStep, step_generator

logger = logging.getLogger(__name__)

RUN_INFO = "run.json"  # written when a run reaches max_steps
LOSS_LOG = "loss.jsonl"
RUN_MARKERS = (RUN_CONFIG, RUN_INFO, LOSS_LOG, CKPT_DIR)  # what a run folder holds (any of them)

TRAIN_DEFAULTS = dict(
    outputs="runs/default", plugin="ddp", precision="fp32", seed=0, batch_size=8, max_steps=1000,
    lr=1e-4, weight_decay=0.0, betas=(0.9, 0.999), warmup_steps=0, grad_clip=1.0, ema_decay=0.9999,
    ckpt_every=500, keep_last=3, log_every=50, num_workers=0, max_bad_steps=10, latent_cache=None,
    sample_every=0, compile=False, frame_mask=None, text_cache=None, batch_tokens=None, lr_schedule="constant",
    min_lr=0.0,
)


class TrainingError(UserError):
    """The run cannot go on (too many non-finite steps, an unusable run folder)."""


def train_settings(cfg) -> dict:
    """``cfg.train`` over the defaults, checked (``config.section_settings``)."""
    settings = section_settings(cfg, "train", TRAIN_DEFAULTS,
                                positive_ints=("batch_size", "max_steps", "ckpt_every", "log_every", "max_bad_steps"),
                                non_negative_ints=("seed", "warmup_steps", "keep_last", "num_workers", "sample_every"),
                                positive=("lr",), non_negative=("weight_decay", "grad_clip", "min_lr"),
                                fractions=("ema_decay",))
    check_lr_schedule(settings, "train")
    betas = settings["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2 or not all(is_number(b) and 0 <= b < 1 for b in betas):
        raise ConfigError(f"train.betas must be two numbers in [0, 1), got {betas!r}")
    if not isinstance(settings["compile"], bool):
        raise ConfigError(f"train.compile must be True or False, got {settings['compile']!r}")
    warn_short_run(settings, "train")
    return settings


def check_lr_schedule(settings: dict, section: str) -> None:
    """``lr_schedule`` is a known name and ``min_lr`` is not above ``lr``."""
    if settings["lr_schedule"] not in LR_SCHEDULES:
        raise ConfigError(f"{section}.lr_schedule must be one of {LR_SCHEDULES}, got {settings['lr_schedule']!r}")
    if settings["min_lr"] > settings["lr"]:
        raise ConfigError(f"{section}.min_lr {settings['min_lr']} is above {section}.lr {settings['lr']}: "
                          f"the cosine schedule decays from lr down to min_lr")


def warn_short_run(settings: dict, section: str) -> None:
    """A run shorter than its learning-rate warm-up never reaches its learning rate: say so."""
    if settings["max_steps"] < settings["warmup_steps"]:
        logger.warning("%s.max_steps %d is below %s.warmup_steps %d: the learning rate never reaches %s.lr "
                       "(%.3g of it at the last step)", section, settings["max_steps"], section,
                       settings["warmup_steps"], section, settings["max_steps"] / settings["warmup_steps"])


##################################################################################
#                                Run folder                                      #
##################################################################################

def prepare_run_dir(run_dir: Path, overwrite: bool, resume) -> None:
    """Refuse to overwrite a finished run; ``overwrite`` wipes it, otherwise checkpoints are resumed."""
    if run_dir.exists() and not run_dir.is_dir():
        raise TrainingError(f"run folder {run_dir} is a file; choose another folder with --outputs")
    finished = (run_dir / RUN_INFO).is_file()
    if overwrite and run_dir.is_dir() and any(run_dir.iterdir()) and not any(
            (run_dir / name).exists() for name in RUN_MARKERS):
        # --overwrite deletes the folder: never one that holds something else than a run (e.g. --outputs .)
        raise TrainingError(f"--overwrite would delete {run_dir}, which is not empty and holds no run "
                            f"({', '.join(RUN_MARKERS)}); choose another folder with --outputs")
    if overwrite:
        shutil.rmtree(run_dir, ignore_errors=True)
    elif finished and resume is None:
        raise TrainingError(f"run folder {run_dir} holds a finished run; pass --overwrite to start again "
                            f"or choose another folder with --outputs")
    run_dir.mkdir(parents=True, exist_ok=True)


def _write_loss(run_dir: Path, record: dict) -> None:
    with open(run_dir / LOSS_LOG, "a") as f:
        f.write(json.dumps(record) + "\n")


##################################################################################
#                                  Training                                      #
##################################################################################

def _batch_latents(batch, vae, device) -> torch.Tensor:
    """(N, C, T', H', W') latents of a batch: cached latents as they are, videos through the VAE."""
    if "latent" in batch:
        return batch["latent"].to(device)
    with torch.no_grad():
        return vae.encode(batch["video"].to(device))


def step_draws(scheduler, n: int, latent_shape, image_size: tuple, gen: torch.Generator,
               frame_masks: Optional[FrameMaskSampler] = None) -> tuple:
    """The random draws of one training step for n clips, in this order from ``gen`` (on the CPU):
    condition-dropout uniforms (n,) (the model's ``drop_cond`` decides), timesteps (n,), noise
    (n, *latent_shape) with latent_shape (C, T', H', W'), then the frame-mask draws (n, 2) (kind, k) that
    :meth:`FrameMaskSampler.masks` turns into masks, or None (nothing drawn) when ``frame_masks`` is None or
    not configured. ``image_size`` (H, W) and the latent frames of latent_shape are the video size that a
    rectified-flow time shift reads."""
    uniforms = torch.rand(n, generator=gen)
    t = scheduler.sample_timesteps(n, VideoSize(*image_size, latent_frames=latent_shape[1]), generator=gen)
    noise = torch.randn((n, *latent_shape), generator=gen)
    mask = None if frame_masks is None else frame_masks.draw(n, latent_shape[1], gen)
    return uniforms, t, noise, mask


def _vae_fingerprint(cfg, vae_ckpt) -> str:
    """sha256 of the VAE config and weights: a latent cache made with other ones is refused."""
    digest = hashlib.sha256(json.dumps(cfg.vae.to_dict() if hasattr(cfg.vae, "to_dict") else cfg.vae,
                                       sort_keys=True, default=str).encode())
    if vae_ckpt:
        digest.update(Path(vae_ckpt).read_bytes())
    return digest.hexdigest()


def build_data(cfg, latent_cache, info, where):
    """The training dataset, the frozen VAE when clips are encoded on the fly, and the clips' captions (None
    without a CSV column ``text``).

    With ``train.latent_cache`` set, rank 0 encodes every clip once into that file (if it does not
    exist yet) and all ranks train from it; a cache made with another VAE or clip size is refused.
    """
    dataset = build_module(cfg.dataset, DATASETS, where=where)
    if hasattr(dataset, "check_files_exist"):
        dataset.check_files_exist()
    captions = getattr(dataset, "captions", None)
    vae = None
    if cfg.get("vae") is not None and not isinstance(dataset, LatentCacheDataset):
        vae = build_module(cfg.vae, MODELS, where=where).to(info.device).eval().requires_grad_(False)
        vae_ckpt = cfg.get("ckpt", {}).get("vae")
        if vae_ckpt:
            load_checkpoint(vae, vae_ckpt)
        if info.is_main:
            check_vae_fidelity(vae, dataset, where)
    if not latent_cache:
        return dataset, vae, captions
    if vae is None:
        raise ConfigError(f"{where}: train.latent_cache needs a 'vae' and a video 'dataset' in the config")
    meta = dict(vae=_vae_fingerprint(cfg, cfg.get("ckpt", {}).get("vae")), **dataset.clip_meta())
    if info.is_main and not Path(latent_cache).exists():
        # without the unreadable files (each read would be replaced by another clip, of another label)
        dropped = dataset.drop_bad_files() if hasattr(dataset, "drop_bad_files") else []
        longer = sum(t > dataset.num_frames for t, _, _ in dataset.sizes()) if hasattr(dataset, "sizes") else 0
        if longer:
            logger.info("latent cache: %d of %d clips are longer than %d frames; the cache keeps one window of each "
                        "(without a cache, start='random' draws a new one every epoch; buckets keep longer clips: "
                        "bucket_config)", longer, len(dataset), dataset.num_frames)
        build_latent_cache(dataset, vae.encode, latent_cache, dict(meta, dropped=dropped))
    dist.barrier()
    cache = LatentCacheDataset(latent_cache)
    cache.check_compatible(meta)
    if cache.meta.get("dropped") and hasattr(dataset, "drop_files"):
        dataset.drop_files(cache.meta["dropped"])  # the files the cache was built without
    cache.check_same_clips(dataset)
    return cache, vae, getattr(dataset, "captions", None)


VAE_CHECK_CLIPS = 4  # clips put through the VAE at the start of a run
VAE_MIN_PSNR_DB = 24.0  # below this the VAE loses what a model would learn (the shapes VAE on real footage: 5-13 dB)


def bucket_sampler(cfg, s, dataset, vae, model, info, start_step: int, num_steps: int, where: str):
    """The batch sampler of a bucketed run; rank 0 logs the table of buckets of the first epoch."""
    if vae is None or not hasattr(dataset, "sizes"):
        raise ConfigError(f"{where}: bucket_config needs a video dataset (VideoClipDataset) and a 'vae'")
    patch = getattr(model, "patch_size", (1, 1, 1))

    def tokens(bucket) -> int:  # the model's tokens for one clip of the bucket: what memory follows
        t, h, w = vae.get_latent_size([bucket.frames, *bucket.size])
        return -(-t // patch[0]) * -(-h // patch[1]) * -(-w // patch[2])

    sizes = dataset.sizes()
    assigner = BucketAssigner(cfg.bucket_config, s["batch_tokens"], tokens, info.world_size)
    if info.is_main:
        logger.info("buckets of epoch 0 (later epochs draw again where a probability is below 1):\n%s",
                    bucket_table(assigner.plan(sizes, s["seed"], 0), tokens))
    return BucketBatchSampler(sizes, assigner, info.rank, info.world_size, s["seed"], start_step, num_steps)


def classes_from_data(cfg, dataset, info) -> None:
    """A class-conditional model takes its classes from the data: ``model.num_classes`` becomes the number of
    class names of the dataset (its folders, or the classes.json beside its CSV), and those names become the
    config's ``class_names``, which the run folder keeps (so ``generate RUN --class NAME`` and the grid's labels
    are the data's, not the config's)."""
    names = getattr(dataset, "classes", None)
    if not names or not cfg.model.get("num_classes"):
        return
    names = [str(name) for name in names]
    if cfg.model.num_classes != len(names) and info.is_main:
        logger.info("num_classes follows the data: %d classes (%s), not the config's %d", len(names),
                    ", ".join(names[:5]) + (", ..." if len(names) > 5 else ""), cfg.model.num_classes)
    cfg.model.num_classes = len(names)
    cfg.class_names = names


def bucket_latent_cache(cfg, path, dataset, vae, assigner, info) -> BucketLatentCache:
    """The bucketed run's latent cache (``data/bucket_cache.py``): rank 0 encodes every clip for every bucket it
    fits, once; a cache made with another VAE, bucket config or clips is refused."""
    meta = dict(vae=_vae_fingerprint(cfg, cfg.get("ckpt", {}).get("vae")), frame_interval=dataset.frame_interval,
                start=dataset.start, bucket_config={r: {str(t): v for t, v in fs.items()}
                                                    for r, fs in assigner.config.items()},
                clips=clips_digest(dataset))
    if info.is_main and not Path(path).exists():
        build_bucket_cache(dataset, assigner, vae.encode, path, meta)
    dist.barrier()
    cache = BucketLatentCache(path, dataset)
    cache.check_compatible(meta)
    return cache


def check_vae_fidelity(vae, dataset, where: str) -> Optional[float]:
    """Put a few of the training clips through the VAE and warn when it cannot keep them: a model trained on its
    latents would learn blobs. Returns the PSNR (dB)."""
    from ..eval.metrics import psnr

    if getattr(dataset, "latents", None) is not None or not hasattr(dataset, "paths"):
        return None  # latents already: nothing to reconstruct
    n = min(VAE_CHECK_CLIPS, len(dataset))
    picks = [round(i * (len(dataset) - 1) / max(1, n - 1)) for i in range(n)]
    device, values = next(vae.parameters()).device, []
    with torch.no_grad():
        for i in picks:  # one at a time: clips and stills may differ in length
            clip = dataset[i]["video"][None]  # (1, 3, T, H, W) in [-1, 1]
            recon = vae.decode(vae.encode(clip.to(device)), num_frames=clip.shape[2]).float().cpu().clamp(-1, 1)
            values.append(psnr((recon + 1) / 2, (clip + 1) / 2).mean().item())
    value = sum(values) / len(values)
    logger.info("the VAE reconstructs %d training clips at %.1f dB PSNR", n, value)
    if value < VAE_MIN_PSNR_DB:
        logger.warning("%s: the VAE reconstructs your clips at only %.1f dB PSNR: a model trained on its latents "
                       "learns what it keeps, not your videos. Train a VAE on your data first (opensora-lite "
                       "train-vae) or use one made for real footage (configs/vae/opensora_v1_2.py with Open-Sora's "
                       "weights); check with opensora-lite vae-recon.", where, value)
    return value


def train(cfg, config_path: str = "", resume=None, overwrite: bool = False) -> dict:
    """Train ``cfg.model`` with ``cfg.scheduler`` on ``cfg.dataset``; returns a summary dict.

    ``resume``: None (resume from the latest checkpoint of the run folder, if any), or a checkpoint path.
    """
    s = train_settings(cfg)
    require_colossalai()  # before the run folder, the data or the latent cache: a missing package costs nothing
    info = init_distributed()
    run_dir = Path(s["outputs"])
    if info.is_main:
        prepare_run_dir(run_dir, overwrite, resume)
    where = config_path or "config"
    if s["batch_size"] % info.world_size:
        raise ConfigError(f"train.batch_size {s['batch_size']} (global) is not divisible by "
                          f"{info.world_size} processes")

    # The same seed on every rank gives the same VAE (when it has no weights) and initial weights.
    torch.manual_seed(s["seed"])
    buckets = bool(cfg.get("bucket_config"))
    dataset, vae, captions = build_data(cfg, None if buckets else s["latent_cache"], info, where)
    classes_from_data(cfg, dataset, info)
    if info.is_main:
        cfg.dump(str(run_dir / RUN_CONFIG))  # with the data's class names: generate RUN --class NAME
    dist.barrier()
    torch.manual_seed(s["seed"])
    model = build_module(cfg.model, MODELS, where=where).to(info.device)
    scheduler = build_module(cfg.scheduler, SCHEDULERS, where=where)
    if cfg.get("ckpt", {}).get("init"):
        load_checkpoint(model, cfg.ckpt.init, strict=False)

    start_step, ckpt, meta = resume_run(model, run_dir, resume, log=info.is_main)
    trainer = TrainStep(model, s["lr"], s["weight_decay"], s["betas"], s["warmup_steps"], s["grad_clip"],
                        s["ema_decay"], s["lr_schedule"], s["max_steps"], s["min_lr"])
    if s["compile"]:
        # In place: parameters, state_dict keys, EMA and checkpoints are unchanged; only the training
        # forward/backward run as inductor graphs (a modest gain on CPU: see benchmarks/README.md).
        model.compile()
        if info.is_main:
            logger.info("train.compile: the first step compiles the model (minutes on a CPU)")
    trainer.boost(make_booster(s["plugin"], s["precision"], s["grad_clip"], info.device),
                  clip_in_booster=s["plugin"] != "ddp")
    if ckpt is not None:
        trainer.load_state(ckpt, meta)

    num_steps = max(0, s["max_steps"] - start_step)
    if buckets:  # mixed sizes, ratios and lengths: one bucket per batch (data/buckets.py)
        sampler = bucket_sampler(cfg, s, dataset, vae, model, info, start_step, num_steps, where)
        if s["latent_cache"]:
            dataset = bucket_latent_cache(cfg, s["latent_cache"], dataset, vae, sampler.assigner, info)
    else:
        sampler = GlobalBatchSampler(len(dataset), s["batch_size"], info.rank, info.world_size, s["seed"],
                                     start_step, num_steps)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=s["num_workers"],
                        persistent_workers=s["num_workers"] > 0)
    raw_model = trainer.raw_model
    image_size = config_image_size(cfg)  # with the latents' length: the video size a time shift reads
    text = None  # a text model's captions -> cond, from the text-embedding cache
    if getattr(raw_model, "caption_channels", 0):
        fps = dict(cfg.get("inference") or {}).get("fps", DEFAULT_FPS)
        text = build_text_conditions(cfg, captions, s["text_cache"], run_dir, info, where, image_size, fps)
    autocast = torch.autocast(info.device.type, dtype=torch.bfloat16,
                              enabled=s["precision"] == "bf16" and s["plugin"] == "ddp")
    frame_masks = FrameMaskSampler(s["frame_mask"])
    forced = getattr(dataset, "frame_mask_kinds", None)
    if frame_masks.probs is None and forced is not None and bool((forced >= 0).any()):
        raise ConfigError(f"{where}: {int((forced >= 0).sum())} clips of the dataset have their own frame mask "
                          f"(CSV column frame_mask) but train.frame_mask is not set; set it, e.g. "
                          f"frame_mask=dict(none=0.5, first=0.2, first_k=0.2, last_k=0.1)")

    trainer.model.train()
    bad_in_a_row, skipped, step = 0, 0, start_step
    window, t_start = [], time.time()
    bar = tqdm(total=s["max_steps"], initial=start_step, disable=not info.is_main, desc="train", dynamic_ncols=True)
    for batch in loader:
        x0 = _batch_latents(batch, vae, info.device)                              # (n, C, T', H', W')
        size = (tuple(batch["video"].shape[-2:]) if "video" in batch  # this batch's (H, W)
                else tuple(batch["size"][0].tolist()) if "size" in batch else image_size)
        if text is not None:  # y (n, 1, L, C), y_mask (n, L), fps, height, width (n,)
            cond = text.cond(batch["index"], info.device, size)
        else:
            cond = {k: v.to(info.device) for k, v in batch["cond"].items()}       # e.g. y (n,)
        # Randomness of this step, drawn for the whole global batch, this rank keeping its rows.
        local_batch = x0.shape[0]
        global_batch = local_batch * info.world_size
        rows = slice(info.rank * local_batch, (info.rank + 1) * local_batch)
        gen = step_generator(s["seed"], step)
        draws = step_draws(scheduler, global_batch, x0.shape[1:], size, gen, frame_masks)
        uniforms, t, noise, mask = (None if d is None else d[rows] for d in draws)
        if mask is not None:  # (n, 2) drawn kind and k -> (n, T') masks, a clip's own kind winning
            mask = frame_masks.masks(mask, x0.shape[2], batch.get("frame_mask"))
        uniforms, t, noise, mask = (None if d is None else d.to(info.device) for d in (uniforms, t, noise, mask))
        cond = raw_model.drop_cond(cond, uniforms)  # classifier-free guidance: some rows lose their condition
        with autocast:
            loss = scheduler.training_losses(trainer.model, x0, cond, t=t, noise=noise, mask=mask)["loss"].mean()
        global_loss = all_reduce_mean(loss.float())
        step += 1
        if not torch.isfinite(global_loss):
            bad_in_a_row, skipped = bad_in_a_row + 1, skipped + 1
            trainer.skip()
            logger.warning("step %d: non-finite loss, step skipped (%d in a row)", step, bad_in_a_row)
            if bad_in_a_row >= s["max_bad_steps"]:
                raise TrainingError(f"{bad_in_a_row} non-finite losses in a row at step {step}: stopping; "
                                    f"lower train.lr or check the data, then resume from the last checkpoint")
        else:
            bad_in_a_row = 0
            trainer.apply(loss)
        if info.is_main:
            window.append(global_loss.item())
            _write_loss(run_dir, dict(step=step, loss=global_loss.item()))
            bar.update(1)
            bar.set_postfix(loss=f"{global_loss.item():.4f}")
            if step % s["log_every"] == 0:
                elapsed = time.time() - t_start
                finite = [v for v in window if math.isfinite(v)]
                logger.info("step %d loss %.4f lr %.2e %.2f steps/s", step, sum(finite) / max(1, len(finite)),
                            trainer.lr, len(window) / elapsed)
                window, t_start = [], time.time()
        if step % s["ckpt_every"] == 0 or step == s["max_steps"]:
            _save(run_dir, step, trainer, s, info, skipped, sampler)
        if info.is_main and vae is not None and s["sample_every"] and step % s["sample_every"] == 0:
            write_samples(run_dir / "samples" / f"step_{step:08d}", trainer.ema.model, vae, scheduler, cfg, text)
    bar.close()
    if info.is_main:
        save_checkpoint(trainer.ema.model, run_dir / RUN_WEIGHTS)  # the weights to sample with, config included
        (run_dir / RUN_INFO).write_text(json.dumps(dict(finished=True, step=step, skipped_steps=skipped)))
    dist.barrier()
    return dict(step=step, skipped_steps=skipped, run_dir=str(run_dir), ema=trainer.ema.model)


def write_samples(stem: Path, model, vae, scheduler, cfg, text=None) -> None:
    """One clip of each of the first 4 classes (a text model: the first 4 captions of the data) with the EMA
    weights: ``<stem>.mp4`` (side by side) + ``.png``."""
    from ..data.grid import save_grid_png
    from ..data.video_write import write_video
    from ..inference.pipeline import VideoPipeline

    was_training = model.training
    if text is not None:
        pipe = VideoPipeline(model, vae, scheduler, config_image_size(cfg), config_num_frames(cfg),
                             fps=text.fps, text_encoder=text)
        videos = pipe(prompts=sorted(set(text.captions))[:4], progress=False).videos  # (n, 3, T, H, W)
    else:
        pipe = VideoPipeline(model, vae, scheduler, config_image_size(cfg), config_num_frames(cfg))
        classes = list(range(min(4, model.num_classes))) or None
        videos = pipe(classes=classes, num_samples=1 if classes else 4, progress=False).videos  # (n, 3, T, H, W)
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_video(stem.with_suffix(".mp4"), torch.cat(list(videos), dim=-1), overwrite=True)  # (3, T, H, n W)
    save_grid_png(stem.with_suffix(".png"), videos, frame_stride=2, overwrite=True)
    model.train(was_training)
    logger.info("samples: %s.mp4", stem)


def _save(run_dir, step, trainer: TrainStep, s, info, skipped, sampler) -> None:
    """Write a checkpoint folder on rank 0; every rank raises the same error if it cannot be written."""
    params = trainer.raw_model.state_dict()  # identical on every rank: each checks it, so all ranks agree
    if not all(torch.isfinite(v).all() for v in params.values() if v.is_floating_point()):
        raise TrainingError(f"step {step}: the weights hold NaN/inf; not overwriting the last good "
                            f"checkpoint in {run_dir}")
    tensors, meta = trainer.state()  # a collective under ZeRO: every rank takes part
    error = ""
    if info.is_main:
        meta.update(skipped_steps=skipped, epoch=sampler.epoch_of(step), samples_seen=step * s["batch_size"],
                    world_size=info.world_size, seed=s["seed"])
        try:
            path = save_run_checkpoint(run_dir, step, tensors, meta, s["keep_last"])
            logger.info("saved %s", path)
        except OSError as err:  # full disk, permissions: the earlier checkpoints are untouched
            error = f"{type(err).__name__}: {err}"
    failed = torch.tensor([1.0 if error else 0.0], device=info.device)
    dist.all_reduce(failed)
    if failed.item():
        raise TrainingError(f"step {step}: could not write a checkpoint in {run_dir} ({error or 'on rank 0'}); "
                            f"the previous checkpoint is kept: free space, then rerun to resume from it")
