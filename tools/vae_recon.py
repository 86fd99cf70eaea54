"""Reconstruct videos through the VAE of a config; print PSNR / SSIM and write original | reconstruction MP4s.

    python tools/vae_recon.py configs/vae/opensora_v1_2.py --input clips/ --size 256 256 --ckpt vae.safetensors

Inputs are video files or folders of them (searched recursively). Unreadable files are skipped and
listed at the end. Writes ``<save-dir>/<name>_recon.mp4`` per clip; existing files are never replaced
unless --overwrite is given (the run stops before any work instead).
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opensora_lite.cli import ArgumentParser, run_cli  # noqa: E402
from opensora_lite.config import load_config  # noqa: E402
from opensora_lite.errors import ConfigError, DataError, UserError  # noqa: E402

# torchmetrics' default SSIM window; smaller frames get the largest odd window that fits.
SSIM_KERNEL = 11


def parse_args(argv):
    parser = ArgumentParser(prog="tools/vae_recon.py", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="a Python config with a `vae` entry, e.g. configs/vae/opensora_v1_2.py")
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH", help="video files or folders")
    parser.add_argument("--frames", type=int, default=17, help="frames per clip, from the middle of each video")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="resize the short side and centre-crop to H x W (default: native size)")
    parser.add_argument("--ckpt", help="VAE weights (e.g. an Open-Sora VAE safetensors file)")
    parser.add_argument("--save-dir", default="samples/vae_recon", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--backend", choices=("av", "decord"), default="av", help="video reader")
    parser.add_argument("--fps", type=float, default=8, help="frames per second of the written MP4s")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random init (when no --ckpt)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.frames < 1:
        raise UserError(f"--frames must be >= 1, got {args.frames}")
    if args.size is not None and min(args.size) < 1:
        raise UserError(f"--size must be two positive integers, got {args.size}")
    if args.fps <= 0:
        raise UserError(f"--fps must be > 0, got {args.fps}")
    return args


def find_videos(paths) -> list:
    """Files as given (even missing ones: they are reported when read) and the videos inside folders."""
    from opensora_lite.data.video_io import VIDEO_EXTENSIONS

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


def build_vae(cfg, config_path: str, ckpt, seed: int, device: str):
    import torch

    import opensora_lite.models  # noqa: F401  (registers the models)
    from opensora_lite.registry import MODELS, build_module

    if "vae" not in cfg:
        raise ConfigError(f"{config_path}: the config has no `vae` entry")
    torch.manual_seed(seed)
    vae = build_module(cfg.vae, MODELS, where=config_path)
    if ckpt:
        from opensora_lite.engine.checkpoint import load_checkpoint

        load_checkpoint(vae, ckpt, strict=True)
    return vae.to(device).eval()


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


def main(argv):
    args = parse_args(argv)
    cfg = load_config(args.config)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available here; use --device cpu")
    elif args.device != "cpu":
        raise UserError(f"--device must be cpu or cuda, got {args.device!r}")
    videos = find_videos(args.input)
    save_dir = Path(args.save_dir)
    if save_dir.exists() and not save_dir.is_dir():
        raise UserError(f"--save-dir {save_dir} is a file, not a folder")
    outputs = output_paths(videos, save_dir, args.overwrite)

    import torch
    from tqdm import tqdm

    from opensora_lite.data.video_io import read_video, to_uint8, write_video

    vae = build_vae(cfg, args.config, args.ckpt, args.seed, args.device)
    scores, skipped = [], []
    for path, out_path in tqdm(list(zip(videos, outputs)), desc="vae recon", disable=args.no_progress):
        try:
            video = read_video(path, args.frames, frame_interval=1, size=tuple(args.size) if args.size else None,
                               start="center", backend=args.backend)  # (3, T, H, W) in [-1, 1]
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

    for path, reason in skipped:
        print(f"skipped {path}: {reason}")
    if not scores:
        raise UserError(f"none of the {len(videos)} input(s) could be reconstructed")
    mean_psnr = sum(s[0] for s in scores) / len(scores)
    mean_ssim = sum(s[1] for s in scores) / len(scores)
    print(f"mean over {len(scores)} clip(s): PSNR {mean_psnr:.2f} dB  SSIM {mean_ssim:.4f}  "
          f"({len(skipped)} skipped)")


if __name__ == "__main__":
    sys.exit(run_cli(main))
