"""Reconstruct videos through the VAE of a config; print PSNR / SSIM and write original | reconstruction MP4s.

    python tools/vae_recon.py configs/shapes/stdit_shapes.py --input data/shapes/val --frames 16
    python tools/vae_recon.py configs/vae/opensora_v1_2.py --input clips/ --size 256 256 --ckpt vae.safetensors

The VAE's weights are the config's ``ckpt.vae`` (as tools/generate.py loads them), ``--ckpt`` instead, or
random with ``--random-init`` (smoke runs only). Inputs are video files or folders of them (searched
recursively). Every input is inspected before the weights load: unreadable files and frame sizes the VAE
cannot take are skipped with one line each (with the nearest --size that fits). Writes
``<save-dir>/<name>_recon.mp4`` per clip; existing files are never replaced unless --overwrite is given
(the run stops before any work instead).
"""
import logging
from pathlib import Path

from opensora_lite.cli import ArgumentParser, check_device
from opensora_lite.config import load_config
from opensora_lite.errors import CheckpointError, ConfigError, DataError, UserError

logger = logging.getLogger("vae_recon")

# torchmetrics' default SSIM window; smaller frames get the largest odd window that fits.
SSIM_KERNEL = 11


def parse_args(argv):
    parser = ArgumentParser(prog="opensora-lite vae-recon", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="a Python config with a `vae` entry, e.g. configs/vae/opensora_v1_2.py")
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH", help="video files or folders")
    parser.add_argument("--frames", type=int, default=17, help="frames per clip, from the middle of each video")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="resize the short side and centre-crop to H x W (default: native size)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--ckpt", help="VAE weights instead of the config's ckpt.vae (e.g. an Open-Sora VAE file)")
    weights.add_argument("--random-init", action="store_true",
                         help="run with RANDOM weights (smoke runs and benchmarks only: the metrics mean nothing)")
    parser.add_argument("--save-dir", default="samples/vae_recon", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--backend", choices=("av", "decord"), default="av", help="video reader")
    parser.add_argument("--fps", type=float, default=8, help="frames per second of the written MP4s")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random init (with --random-init)")
    parser.add_argument("--max-source-pixels", type=int,
                        help="skip videos whose frames have more pixels than this (default: 8K UHD, 7680x4320)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.frames < 1:
        raise UserError(f"--frames must be >= 1, got {args.frames}")
    if args.size is not None and min(args.size) < 1:
        raise UserError(f"--size must be two positive integers, got {args.size}")
    if args.fps <= 0:
        raise UserError(f"--fps must be > 0, got {args.fps}")
    if args.max_source_pixels is not None and args.max_source_pixels < 1:
        raise UserError(f"--max-source-pixels must be >= 1, got {args.max_source_pixels}")
    return args


def find_videos(paths) -> list:
    """Files as given (even missing ones: they are reported when read) and the videos inside folders."""
    from opensora_lite.data.video_read import VIDEO_EXTENSIONS

    videos = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            if not found:
                raise UserError(f"--input {path}: the folder holds no videos ({', '.join(VIDEO_EXTENSIONS)})")
            videos.extend(found)
        else:
            videos.append(path)
    return videos


def output_paths(videos, save_dir: Path, overwrite: bool) -> list:
    """``<stem>_recon.mp4`` per video (``<stem>-<k>_recon.mp4`` for repeated names); refuses existing files."""
    paths, seen = [], {}
    for video in videos:
        count = seen.get(video.stem, 0)
        seen[video.stem] = count + 1
        paths.append(save_dir / (f"{video.stem}_recon.mp4" if count == 0 else f"{video.stem}-{count}_recon.mp4"))
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists ({len(existing)} output(s) in all); pass --overwrite to replace")
    return paths


def build_vae(cfg, config_path: str, seed: int):
    """The config's VAE with random weights drawn from ``seed`` (see :func:`load_vae_weights`)."""
    import torch

    import opensora_lite.models  # noqa: F401  (registers the models)
    from opensora_lite.registry import MODELS, build_module

    if "vae" not in cfg:
        raise ConfigError(f"{config_path}: the config has no `vae` entry")
    torch.manual_seed(seed)
    return build_module(cfg.vae, MODELS, where=config_path).eval()


def load_vae_weights(vae, cfg, config_path: str, ckpt=None, random_init: bool = False) -> None:
    """``ckpt`` or the config's ``ckpt.vae`` into ``vae``, as inference loads them; ``random_init`` keeps random ones.

    A VAE built from a diffusers folder (``from_pretrained``) already has its weights.
    """
    if random_init:
        logger.warning("!!! --random-init: %s runs with RANDOM weights; its reconstructions are noise, for smoke "
                       "runs and benchmarks only !!!", config_path)
        return
    path = ckpt or dict(cfg.get("ckpt", {})).get("vae")
    if path:
        from opensora_lite.models.convert import load_checkpoint

        load_checkpoint(vae, path, strict=True)
    elif not cfg.vae.get("vae_2d", cfg.vae).get("from_pretrained"):
        raise CheckpointError(f"{config_path}: no VAE weights: set ckpt.vae in the config or pass --ckpt "
                              "(or --random-init for a smoke run with random weights)")


def nearest_fit(side: int, factor: int) -> int:
    """The multiple of ``factor`` nearest to ``side`` (at least ``factor``)."""
    return max(factor, round(side / factor) * factor)


def size_misfit(height: int, width: int, factor: int):
    """None if the VAE (downsampling ``factor``) takes ``height x width``, else a sentence with the nearest --size."""
    if height % factor == 0 and width % factor == 0:
        return None
    return (f"{height}x{width} does not fit the VAE (height and width must be multiples of {factor}); "
            f"use --size {nearest_fit(height, factor)} {nearest_fit(width, factor)}")


def check_size(size, factor: int, num_inputs: int) -> None:
    """Refuse a --size the VAE cannot take, before any work."""
    misfit = size and size_misfit(size[0], size[1], factor)
    if misfit:
        raise UserError(f"none of the {num_inputs} input(s) could be reconstructed: --size {misfit}")


def inspect_inputs(videos, outputs, args, factor: int):
    """(path, output) pairs worth reading, and (path, reason) for the skipped ones (unreadable or misfit)."""
    from opensora_lite.data.video_read import probe_video

    jobs, skipped = [], []
    for path, out_path in zip(videos, outputs):
        try:
            _, _, height, width = probe_video(path, args.backend, max_source_pixels=args.max_source_pixels)
        except DataError as err:
            skipped.append((path, str(err)))
            continue
        misfit = None if args.size else size_misfit(height, width, factor)
        if misfit:
            skipped.append((path, f"{path}: native size {misfit}"))
        else:
            jobs.append((path, out_path))
    return jobs, skipped


def skip_line(path, reason: str) -> str:
    """One line naming ``path`` once (reader errors already start with it)."""
    return f"skipped {reason}" if reason.startswith(str(path)) else f"skipped {path}: {reason}"


def reconstruct(vae, video):
    """(N, 3, T, H, W) in [-1, 1] -> the VAE's reconstruction, clamped to [-1, 1] (posterior means)."""
    from opensora_lite.models.vae import VideoAutoencoderKL

    if isinstance(vae, VideoAutoencoderKL):
        return vae.decode(vae.encode(video)).clamp(-1, 1)
    return vae.decode(vae.encode(video), num_frames=video.shape[2]).clamp(-1, 1)


def clip_metrics(video, recon):
    """(PSNR dB, SSIM) of one clip (3, T, H, W) in [-1, 1], computed on [0, 1] data."""
    from opensora_lite.eval.metrics import psnr, ssim

    a, b = (video + 1) / 2, (recon + 1) / 2
    side = min(a.shape[-2:])
    kernel = SSIM_KERNEL if side >= SSIM_KERNEL else side - (1 - side % 2)
    return psnr(a, b).item(), ssim(a, b, kernel_size=kernel).item()


def report_skipped(skipped) -> None:
    for path, reason in skipped:
        print(skip_line(path, reason))


def main(argv):
    args = parse_args(argv)
    cfg = load_config(args.config)
    check_device(args.device)
    videos = find_videos(args.input)
    save_dir = Path(args.save_dir)
    if save_dir.exists() and not save_dir.is_dir():
        raise UserError(f"--save-dir {save_dir} is a file, not a folder")
    outputs = output_paths(videos, save_dir, args.overwrite)

    import torch
    from tqdm import tqdm

    from opensora_lite.data.video_read import DEFAULT_MAX_SOURCE_PIXELS, read_video
    from opensora_lite.data.video_write import to_uint8, write_video

    args.max_source_pixels = args.max_source_pixels or DEFAULT_MAX_SOURCE_PIXELS
    vae = build_vae(cfg, args.config, args.seed)
    check_size(args.size, vae.spatial_factor, len(videos))
    jobs, skipped = inspect_inputs(videos, outputs, args, vae.spatial_factor)
    if not jobs:
        report_skipped(skipped)
        raise UserError(f"none of the {len(videos)} input(s) could be reconstructed")
    load_vae_weights(vae, cfg, args.config, args.ckpt, args.random_init)
    vae.to(args.device)
    scores = []
    for path, out_path in tqdm(jobs, desc="vae recon", disable=args.no_progress):
        try:
            video = read_video(path, args.frames, frame_interval=1, size=tuple(args.size) if args.size else None,
                               start="center", backend=args.backend,
                               max_source_pixels=args.max_source_pixels)  # (3, T, H, W) in [-1, 1]
            with torch.no_grad():
                recon = reconstruct(vae, video[None].to(args.device))[0].float().cpu()  # (3, T, H, W)
        except DataError as err:  # unreadable file, or a size the VAE cannot take
            skipped.append((path, str(err)))
            continue
        clip_psnr, clip_ssim = clip_metrics(video, recon)
        scores.append((clip_psnr, clip_ssim))
        side_by_side = to_uint8(torch.cat([video, recon], dim=-1))  # (T, H, 2W, 3): original | reconstruction
        write_video(out_path, side_by_side, fps=args.fps, overwrite=args.overwrite)
        tqdm.write(f"{path}: PSNR {clip_psnr:.2f} dB  SSIM {clip_ssim:.4f}  -> {out_path}")

    report_skipped(skipped)
    if not scores:
        raise UserError(f"none of the {len(videos)} input(s) could be reconstructed")
    mean_psnr = sum(s[0] for s in scores) / len(scores)
    mean_ssim = sum(s[1] for s in scores) / len(scores)
    print(f"mean over {len(scores)} clip(s): PSNR {mean_psnr:.2f} dB  SSIM {mean_ssim:.4f}  "
          f"({len(skipped)} skipped)")

