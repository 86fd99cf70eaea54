"""Generate videos of the requested classes with a trained (or random) STDiT + video VAE.

    python tools/inference.py configs/shapes/stdit_shapes.py --class 5 --frames 16
    python tools/inference.py configs/latte/ucf101_256.py --class PlayingGuitar   # ids or names
    python tools/inference.py configs/latte/ucf101_256.py --list-classes
    python tools/inference.py configs/stdit_256.py --random-init --model.depth 2   # config overrides

Writes ``<save-dir>/<class id>-<index>.mp4`` per sample (``sample-<index>.mp4`` for an unconditional model)
and a PNG grid of all samples, each row labelled with its class; existing files are never overwritten (new
indices are used) unless --overwrite is given.
"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opensora_lite.cli import ArgumentParser, run_cli  # noqa: E402
from opensora_lite.config import load_config, parse_overrides  # noqa: E402
from opensora_lite.data.class_names import class_table, cli_classes, model_num_classes  # noqa: E402
from opensora_lite.engine.required_files import check_required_files  # noqa: E402
from opensora_lite.errors import UserError  # noqa: E402

DTYPES = ("fp32", "bf16")


def parse_args(argv):
    parser = ArgumentParser(prog="tools/inference.py", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="a Python config, e.g. configs/shapes/stdit_shapes.py")
    parser.add_argument("--class", dest="classes", nargs="+", metavar="C",
                        help="class id(s) or name(s) to generate, e.g. 62 or PlayingGuitar (default: 0)")
    parser.add_argument("--list-classes", action="store_true", help="print the config's class ids and names and exit")
    parser.add_argument("--frames", type=int, help="frames per video (default: the config's num_frames)")
    parser.add_argument("--num-samples", type=int, default=1, help="videos per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="sampling steps (default: the scheduler's)")
    parser.add_argument("--cfg-scale", type=float, help="classifier-free guidance scale (default: the scheduler's)")
    parser.add_argument("--sampler", help="IDDPM configs: ddpm (ancestral) or ddim (default: the scheduler's)")
    parser.add_argument("--ckpt", help="model weights (default: ckpt.model of the config)")
    parser.add_argument("--vae-ckpt", help="VAE weights (default: ckpt.vae of the config)")
    parser.add_argument("--save-dir", default="samples", help="output folder")
    parser.add_argument("--fps", type=int, help="frames per second of the MP4 (default: the config's)")
    parser.add_argument("--dtype", choices=DTYPES, default="fp32")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--random-init", action="store_true", help="run without weights (smoke runs, benchmarks)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files of the same names")
    parser.add_argument("--no-progress", action="store_true")
    args, rest = parser.parse_known_args(argv)
    args.overrides = parse_overrides(rest)  # e.g. --model.depth 2 --image_size "(64, 64)"
    return args


def check_args(args) -> None:
    if args.num_samples < 1:
        raise UserError(f"--num-samples must be >= 1, got {args.num_samples}")
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    if args.fps is not None and args.fps < 1:
        raise UserError(f"--fps must be >= 1, got {args.fps}")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available here; use --device cpu")
    elif args.device != "cpu":
        raise UserError(f"--device must be cpu or cuda, got {args.device!r}")
    save_dir = Path(args.save_dir)
    if save_dir.exists() and not save_dir.is_dir():
        raise UserError(f"--save-dir {save_dir} is a file, not a folder")
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create --save-dir {save_dir}: {err.strerror}") from None
    if not os.access(save_dir, os.W_OK):
        raise UserError(f"--save-dir {save_dir} is not writable")


def output_paths(save_dir: Path, stems, suffix: str, overwrite: bool) -> list[Path]:
    """``<stem>-<index><suffix>`` per stem; without ``overwrite`` indices skip files that exist."""
    paths, next_index = [], {}
    for stem in stems:
        i = next_index.get(stem, 0)
        while not overwrite and (save_dir / f"{stem}-{i}{suffix}").exists():
            i += 1
        paths.append(save_dir / f"{stem}-{i}{suffix}")
        next_index[stem] = i + 1
    return paths


def main(argv):
    args = parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    class_ids, names = cli_classes(args.classes, cfg, args.config)
    if args.list_classes:
        if class_ids is None:
            raise UserError(f"{args.config} is unconditional (num_classes=0): it has no classes to list")
        print(class_table(names, model_num_classes(cfg)))
        return
    if class_ids is None and args.cfg_scale is not None:
        raise UserError(f"{args.config} is unconditional (num_classes=0): it has no guidance, drop --cfg-scale")
    if args.sampler is not None:
        if cfg.scheduler.get("type") != "iddpm":
            raise UserError(f"--sampler chooses IDDPM's ddpm or ddim; {args.config} samples with "
                            f"{cfg.scheduler.get('type')!r}, which has no --sampler")
        cfg.scheduler["sampler"] = args.sampler
    check_args(args)
    check_required_files(cfg, args.config, skip={"ckpt.model"} if args.ckpt or args.random_init else ())
    import torch

    from opensora_lite.data.labelled_grid import save_labelled_grid
    from opensora_lite.data.video_io import save_grid_png, write_video
    from opensora_lite.engine.generate import build_generator, generate

    infer = dict(cfg.get("inference", {}))
    frames = args.frames if args.frames is not None else infer.get("num_frames", cfg.get("num_frames", 16))
    fps = args.fps or infer.get("fps", 8)
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or fps <= 0:
        raise UserError(f"{args.config}: inference.fps must be a positive number, got {fps!r}")
    classes = [c for c in (class_ids or [0]) for _ in range(args.num_samples)]  # unconditional: y is unused
    t0 = time.perf_counter()
    gen = build_generator(cfg, args.config, args.ckpt, args.vae_ckpt, args.random_init, args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    videos, timings = generate(gen, classes, frames, seed=args.seed, steps=args.steps, cfg_scale=args.cfg_scale,
                               dtype=dtype, progress=not args.no_progress)
    save_dir = Path(args.save_dir)
    paths = output_paths(save_dir, classes if class_ids else ["sample"] * len(classes), ".mp4", args.overwrite)
    for video, path in zip(videos, paths):
        write_video(path, video, fps=fps, overwrite=args.overwrite)
        print(path)
    grid_path = output_paths(save_dir, ["grid"], ".png", args.overwrite)[0]
    if class_ids is None:
        grid = save_grid_png(grid_path, videos, frame_stride=max(1, frames // 8), overwrite=args.overwrite)
    else:
        labels = [f"{c} {names[c]}" if names and 0 <= c < len(names) else str(c) for c in classes]
        grid = save_labelled_grid(grid_path, videos, labels, frame_stride=max(1, frames // 8))
    print(grid)
    print(f"{len(paths)} video(s) of {frames} frames in {time.perf_counter() - t0:.1f} s "
          f"(sampling {timings['sampling']:.1f} s, decoding {timings['decoding']:.1f} s)")


if __name__ == "__main__":
    sys.exit(run_cli(main))
