"""Train the video VAE: the 2-D VAE on frames, the temporal VAE on 2-D latents, or both together.

Stages (``vae_train.stage``):
* ``"2d"``: the 2-D AutoencoderKL on random frames of the clips: reconstruction + KL.
* ``"temporal"``: the 2-D VAE frozen; the temporal VAE learns to reconstruct the 2-D latents
  (``latent_loss_weight``) and, through the frozen 2-D decoder, the pixels (``pixel_loss_weight``), + KL.
* ``"both"``: as ``"temporal"`` with the 2-D VAE trained too.
* ``"decoder"``: both encoders frozen (the latent space, and so any diffusion model trained on it,
  stays valid); the temporal and 2-D decoders are fine-tuned end to end on pixels.
After training, ``shift``/``scale`` of the pipeline are measured on the clips (per-channel mean and std
of the temporal latents) so the diffusion model sees zero-mean, unit-variance latents, and the EMA
weights are exported to ``<outputs>/vae.safetensors``. Checkpoint folders, resume, data order and
EMA are those of the STDiT trainer. One process.
"""
import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import RUN_CONFIG, section_settings
from ..data.sampler import GlobalBatchSampler
from ..data.video_write import write_video
from ..errors import ConfigError
from ..eval.metrics import psnr
from ..models.convert import load_checkpoint
from ..registry import DATASETS, MODELS, build_module
from ..storage import save_checkpoint
from .run_checkpoint import resume as resume_run
from .run_checkpoint import save_run_checkpoint
from .train_loop import RUN_INFO, check_lr_schedule, prepare_run_dir, warn_short_run
from .train_step import TrainStep, step_generator

logger = logging.getLogger(__name__)

STAGES = ("2d", "temporal", "both", "decoder")
RECON_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}
VAE_TRAIN_DEFAULTS = dict(
    outputs="runs/vae", stage="2d", seed=0, batch_size=8, frames_per_clip=4, max_steps=2000, lr=1e-3,
    weight_decay=0.0, warmup_steps=100, recon_loss="l1", kl_weight=1e-6, latent_loss_weight=1.0,
    pixel_loss_weight=1.0, grad_clip=1.0, ema_decay=0.999, ckpt_every=500, keep_last=2, log_every=50,
    sample_every=500, num_workers=0, calibrate_clips=256, perceptual_weight=0.0, perceptual_backbone=None,
    lr_schedule="constant", min_lr=0.0,
)


def vae_train_settings(cfg) -> dict:
    """``cfg.vae_train`` over the defaults, checked (``config.section_settings``)."""
    s = section_settings(cfg, "vae_train", VAE_TRAIN_DEFAULTS,
                         positive_ints=("batch_size", "frames_per_clip", "max_steps", "ckpt_every", "log_every",
                                        "calibrate_clips"),
                         non_negative_ints=("seed", "warmup_steps", "keep_last", "sample_every", "num_workers"),
                         positive=("lr",), fractions=("ema_decay",),
                         non_negative=("weight_decay", "kl_weight", "latent_loss_weight", "pixel_loss_weight",
                                       "grad_clip", "perceptual_weight", "min_lr"))
    check_lr_schedule(s, "vae_train")
    if s["stage"] not in STAGES:
        raise ConfigError(f"vae_train.stage must be one of {STAGES}, got {s['stage']!r}")
    if s["recon_loss"] not in RECON_LOSSES:
        raise ConfigError(f"vae_train.recon_loss must be one of {tuple(RECON_LOSSES)}, got {s['recon_loss']!r}")
    if s["perceptual_weight"] > 0 and not (s["perceptual_backbone"] and Path(s["perceptual_backbone"]).is_file()):
        raise ConfigError(f"vae_train.perceptual_weight > 0 needs vae_train.perceptual_backbone: a local TorchScript "
                          f"file of a feature network, got {s['perceptual_backbone']!r}")
    warn_short_run(s, "vae_train")
    return s


##################################################################################
#                                  Losses                                        #
##################################################################################

def with_perceptual(terms: dict, recon: torch.Tensor, target: torch.Tensor, s: dict, backbone) -> dict:
    """Add ``perceptual_weight`` x the perceptual term to ``terms["loss"]`` when a backbone is given: the mean
    squared distance between the features a local network gives for the reconstructed and the real frames."""
    if backbone is None:
        return terms
    if recon.dim() == 5:  # clips (N, 3, T, H, W) -> frames (N*T, 3, H, W)
        recon, target = (x.transpose(1, 2).flatten(0, 1) for x in (recon, target))
    terms["perceptual"] = F.mse_loss(backbone(recon), backbone(target))
    terms["loss"] = terms["loss"] + s["perceptual_weight"] * terms["perceptual"]
    return terms


def loss_2d(vae, video, s, gen, backbone=None) -> dict:
    """Frames of the clips through the 2-D AutoencoderKL: reconstruction + KL per latent value."""
    n, _, t = video.shape[:3]
    pick = torch.randint(0, t, (n, s["frames_per_clip"]), generator=gen)              # (N, k)
    frames = video.transpose(1, 2)[torch.arange(n)[:, None], pick].flatten(0, 1)      # (N*k, 3, H, W)
    posterior = vae.spatial_vae.encode_frames(frames)
    z = posterior.sample(generator=gen)                                                # (N*k, C, h, w)
    recon = vae.spatial_vae.decode_frames(z)                                           # (N*k, 3, H, W)
    rec = RECON_LOSSES[s["recon_loss"]](recon, frames)
    kl = posterior.kl().mean() / z[0].numel()
    return with_perceptual(dict(loss=rec + s["kl_weight"] * kl, recon=rec, kl=kl), recon, frames, s, backbone)


def loss_temporal(vae, video, s, gen, backbone=None) -> dict:
    """Temporal VAE on the 2-D latents: latent and pixel reconstruction + KL per latent value."""
    recon_loss = RECON_LOSSES[s["recon_loss"]]
    with torch.set_grad_enabled(s["stage"] == "both"):
        x_z = vae.spatial_vae.encode(video)                                            # (N, C, T, h, w)
    posterior = vae.temporal_vae.encode(x_z)
    z = posterior.sample(generator=gen)                                                # (N, C, T', h, w)
    x_z_rec = vae.temporal_vae.decode(z, num_frames=video.shape[2])                    # (N, C, T, h, w)
    latent = recon_loss(x_z_rec, x_z)
    kl = posterior.kl().mean() / z[0].numel()
    terms = dict(latent=latent, kl=kl)
    loss = s["latent_loss_weight"] * latent + s["kl_weight"] * kl
    if s["pixel_loss_weight"] > 0:  # through the 2-D decoder: the costly part of a step
        recon = vae.spatial_vae.decode(x_z_rec)                                        # (N, 3, T, H, W)
        terms["recon"] = recon_loss(recon, video)
        loss = loss + s["pixel_loss_weight"] * terms["recon"]
        return with_perceptual(dict(loss=loss, **terms), recon, video, s, backbone)
    return dict(loss=loss, **terms)


def loss_decoder(vae, video, s, gen, backbone=None) -> dict:
    """The whole pipeline, encoders frozen: pixel reconstruction through both decoders."""
    with torch.no_grad():
        z = vae.encode(video)                                                          # (N, C, T', h, w)
    recon = vae.decode(z, num_frames=video.shape[2])                                   # (N, 3, T, H, W)
    rec = RECON_LOSSES[s["recon_loss"]](recon, video)
    return with_perceptual(dict(loss=rec, recon=rec), recon, video, s, backbone)


def decoders(vae) -> nn.ModuleList:
    return nn.ModuleList([vae.temporal_vae.post_quant_conv, vae.temporal_vae.decoder,
                          vae.spatial_vae.module.post_quant_conv, vae.spatial_vae.module.decoder])


##################################################################################
#                           Samples and calibration                              #
##################################################################################

@torch.no_grad()
def reconstruct(vae, video, stage: str) -> torch.Tensor:
    """(N, 3, T, H, W) -> reconstruction through the part being trained (deterministic: posterior modes)."""
    if stage == "2d":
        return vae.spatial_vae.decode(vae.spatial_vae.encode(video))
    if stage == "decoder":
        return vae.decode(vae.encode(video), num_frames=video.shape[2])
    x_z = vae.spatial_vae.encode(video)
    return vae.spatial_vae.decode(vae.temporal_vae.decode(vae.temporal_vae.encode(x_z).mode(), video.shape[2]))


def write_sample(vae, video, stage, path: Path, fps: int = 8) -> float:
    """Write original | reconstruction side by side (first clip) and return the batch's mean PSNR."""
    recon = reconstruct(vae, video, stage).clamp(-1, 1)
    write_video(path, torch.cat([video[0], recon[0]], dim=-1), fps=fps, overwrite=True)
    return psnr((recon + 1) / 2, (video + 1) / 2).mean().item()


@torch.no_grad()
def calibrate_shift_scale(vae, loader, max_clips: int) -> None:
    """Set ``vae.shift``/``vae.scale`` to the per-channel mean/std of the temporal latents of the data."""
    vae.shift.zero_()
    vae.scale.fill_(1.0)
    latents, seen = [], 0
    for batch in loader:
        latents.append(vae.encode(batch["video"]).transpose(0, 1).flatten(1))  # (C, N*T'*h*w)
        seen += batch["video"].shape[0]
        if seen >= max_clips:
            break
    latents = torch.cat(latents, dim=1)
    vae.shift.copy_(latents.mean(dim=1).view_as(vae.shift))
    vae.scale.copy_(latents.std(dim=1).view_as(vae.scale))
    logger.info("latent shift %s scale %s", vae.shift.flatten().tolist(), vae.scale.flatten().tolist())


##################################################################################
#                                  Training                                      #
##################################################################################

def train_vae(cfg, config_path: str = "", resume=None, overwrite: bool = False) -> dict:
    """Train ``cfg.vae`` on ``cfg.dataset`` per ``cfg.vae_train``; returns a summary with the export path."""
    s = vae_train_settings(cfg)
    where = config_path or "config"
    run_dir = Path(s["outputs"])
    prepare_run_dir(run_dir, overwrite, resume)
    cfg.dump(str(run_dir / RUN_CONFIG))

    torch.manual_seed(s["seed"])
    vae = build_module(cfg.vae, MODELS, where=where)
    init = cfg.get("vae_init")
    if init:  # e.g. the stage-"2d" export when training the temporal VAE
        load_checkpoint(vae, init)
    trainable = {"2d": vae.spatial_vae, "temporal": vae.temporal_vae, "both": vae,
                 "decoder": decoders(vae)}[s["stage"]]
    vae.requires_grad_(False)
    trainable.requires_grad_(True)
    dataset = build_module(cfg.dataset, DATASETS, where=where)
    if hasattr(dataset, "check_files_exist"):
        dataset.check_files_exist()

    start_step, ckpt, meta = resume_run(vae, run_dir, resume)
    trainer = TrainStep(vae, s["lr"], s["weight_decay"], warmup_steps=s["warmup_steps"], grad_clip=s["grad_clip"],
                        ema_decay=s["ema_decay"], lr_schedule=s["lr_schedule"], max_steps=s["max_steps"],
                        min_lr=s["min_lr"])
    if ckpt is not None:
        trainer.load_state(ckpt, meta)

    sampler = GlobalBatchSampler(len(dataset), s["batch_size"], seed=s["seed"], start_step=start_step,
                                 num_steps=max(0, s["max_steps"] - start_step))
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=s["num_workers"])
    sample_batch = next(iter(DataLoader(dataset, batch_size=min(4, len(dataset)))))["video"]
    loss_fn = {"2d": loss_2d, "decoder": loss_decoder}.get(s["stage"], loss_temporal)
    backbone = None
    if s["perceptual_weight"] > 0:  # the user's own local network (TorchScript): nothing is downloaded
        backbone = torch.jit.load(s["perceptual_backbone"], map_location="cpu").eval()
        for param in backbone.parameters():
            param.requires_grad_(False)

    vae.train()
    step, terms = start_step, {}
    bar = tqdm(total=s["max_steps"], initial=start_step, desc=f"train vae ({s['stage']})", dynamic_ncols=True)
    for batch in loader:
        out = loss_fn(vae, batch["video"], s, step_generator(s["seed"], step), backbone)
        trainer.apply(out["loss"])
        step += 1
        for key, value in out.items():
            terms[key] = terms.get(key, 0.0) + value.item()
        bar.update(1)
        bar.set_postfix(loss=f"{out['loss'].item():.4f}")
        if step % s["log_every"] == 0:
            logger.info("step %d %s", step, " ".join(f"{k} {v / s['log_every']:.5f}" for k, v in terms.items()))
            terms = {}
        if s["sample_every"] and step % s["sample_every"] == 0:
            path = run_dir / "samples" / f"step_{step:08d}.mp4"
            value = write_sample(trainer.ema.model, sample_batch, s["stage"], path)
            logger.info("step %d: EMA reconstruction PSNR %.2f dB (sample in %s)", step, value, run_dir / "samples")
        if step % s["ckpt_every"] == 0 or step == s["max_steps"]:
            save_run_checkpoint(run_dir, step, *trainer.state(), s["keep_last"])
    bar.close()

    final = trainer.ema.model
    if s["stage"] in ("temporal", "both"):  # the encoders changed: measure the new latent statistics
        calibrate_shift_scale(final, DataLoader(dataset, batch_size=s["batch_size"]), s["calibrate_clips"])
    export = run_dir / "vae.safetensors"
    save_checkpoint(final, export)
    value = write_sample(final, sample_batch, s["stage"], run_dir / "samples" / "final.mp4")
    (run_dir / RUN_INFO).write_text(json.dumps(dict(finished=True, step=step, sample_psnr=value)))
    logger.info("exported EMA weights to %s (sample PSNR %.2f dB)", export, value)
    return dict(step=step, export=str(export), sample_psnr=value)
