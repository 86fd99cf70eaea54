"""Generate videos of the requested classes, or prompts, with a trained (or random) STDiT + video VAE.

    python tools/generate.py configs/shapes/stdit_shapes.py --class 5 --frames 16
    python tools/generate.py configs/latte/ucf101_256.py --class PlayingGuitar   # ids or names
    python tools/generate.py configs/latte/ucf101_256.py --list-classes
    python tools/generate.py configs/stdit_256.py --random-init --model.depth 2   # config overrides
    python tools/generate.py configs/opensora/t2v_v1_2.py --prompt "a red panda eating bamboo" \
        --resolution 240p --aspect-ratio 9:16 --frames 51                         # Open-Sora 1.2 text-to-video

Writes ``<save-dir>/<class id>-<index>.mp4`` per sample (``sample-<index>.mp4`` for an unconditional model, the
prompt's words for a text model) and a PNG grid of all samples, each row labelled with its class or prompt;
existing files are never overwritten (new indices are used) unless --overwrite is given.
"""
import os
import time
from pathlib import Path

from opensora_lite.cli import ArgumentParser, check_device
from opensora_lite.config import load_config, parse_overrides, resolve_config
from opensora_lite.data.class_names import class_table, config_class_names, model_num_classes, resolve_class
from opensora_lite.errors import UserError

DTYPES = ("fp32", "bf16")


def parse_args(argv):
    parser = ArgumentParser(prog="opensora-lite generate", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="a Python config (e.g. configs/shapes/stdit_shapes.py) or a training run folder")
    parser.add_argument("--class", dest="classes", nargs="+", metavar="C",
                        help="class id(s) or name(s) to generate, e.g. 62 or PlayingGuitar (default: 0)")
    parser.add_argument("--list-classes", action="store_true", help="print the config's class ids and names and exit")
    parser.add_argument("--prompt", action="append", metavar="TEXT", help="text models: a prompt (repeat the flag "
                        "for more)")
    parser.add_argument("--prompt-file", metavar="FILE", help="text models: prompts, one per line")
    parser.add_argument("--aes", metavar="SCORE", help="text models: the aesthetic score Open-Sora appends to prompts "
                        "(default: the config's inference.aes; 'none' appends nothing)")
    parser.add_argument("--resolution", help="a named size: 144p, 240p, 360p, 480p, 720p or 1080p (Open-Sora's)")
    parser.add_argument("--aspect-ratio", help="with --resolution: height:width, e.g. 9:16 (landscape, as in "
                        "Open-Sora), 1:1 or 16:9 (portrait)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="height and width in pixels")
    parser.add_argument("--frames", type=int, help="frames per video (default: the config's num_frames; with "
                                                   "--extend: the total length, the given clip included)")
    parser.add_argument("--num-samples", type=int, default=1, help="videos per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="sampling steps (default: the scheduler's)")
    parser.add_argument("--cfg-scale", type=float, help="classifier-free guidance scale (default: the scheduler's)")
    parser.add_argument("--given-cfg-scale", type=float, help="guidance of the windows with given frames "
                        "(--first-frame, --extend, long videos; default: the config's inference.given_cfg_scale, "
                        "else --cfg-scale)")
    parser.add_argument("--sampler", help="rflow: euler, heun or dpm++2m; iddpm: ddpm, ddim or dpm++2m (default: the "
                             "scheduler's)")
    parser.add_argument("--first-frame", metavar="IMAGE", help="image-to-video: a PNG or JPEG every clip starts from")
    parser.add_argument("--extend", metavar="VIDEO", help="continue this clip: the output is the clip, then new frames")
    parser.add_argument("--window", type=int, metavar="F", help="frames per sampled window of a long or continued "
                                                                "clip (default: the config's inference.window.frames)")
    parser.add_argument("--overlap", type=int, metavar="F", help="frames each new window is conditioned on "
                                                                 "(default: the config's inference.window.overlap)")
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
    if args.first_frame and args.extend:
        raise UserError("--first-frame (image-to-video) and --extend (continuation) exclude each other; give one")
    for flag, path in (("--first-frame", args.first_frame), ("--extend", args.extend)):
        if path and not Path(path).is_file():
            raise UserError(f"{flag} {path}: no such file")
    check_device(args.device)
    save_dir = Path(args.save_dir)
    if save_dir.exists() and not save_dir.is_dir():
        raise UserError(f"--save-dir {save_dir} is a file, not a folder")
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create --save-dir {save_dir}: {err.strerror}") from None
    if not os.access(save_dir, os.W_OK):
        raise UserError(f"--save-dir {save_dir} is not writable")


def cli_prompts(args, where: str) -> list[str]:
    """The prompts of --prompt and --prompt-file (blank lines skipped), or a one-line error."""
    prompts = list(args.prompt or [])
    if args.prompt_file:
        path = Path(args.prompt_file)
        if not path.is_file():
            raise UserError(f"--prompt-file {path}: no such file")
        prompts += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts or not all(p.strip() for p in prompts):
        raise UserError(f"{where} is a text-to-video model: give --prompt \"...\" (or --prompt-file FILE)")
    return prompts


def cli_aes(text):
    """--aes: a number, 'none', or (not given) the config's."""
    if text is None or text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise UserError(f"--aes must be a number (e.g. 6.5) or 'none', got {text!r}") from None


def cli_classes(tokens, cfg, where: str) -> tuple[list[int] | None, tuple[str, ...] | None]:
    """``--class`` tokens (ids or names; None: class 0) -> (ids, the config's names); ids is None for an
    unconditional model (num_classes=0), which refuses any --class."""
    num_classes = model_num_classes(cfg)
    if num_classes == 0:
        if tokens:
            raise UserError(f"{where} is unconditional (num_classes=0): it has no classes, so --class is not "
                            f"accepted; use --num-samples for more videos")
        return None, None
    names = config_class_names(cfg, num_classes, where)
    return [resolve_class(str(token), names, num_classes) for token in tokens or ["0"]], names


def main(argv):
    args = parse_args(argv)
    config_file, run_weights = resolve_config(args.config, weights_given=bool(args.ckpt or args.random_init))
    cfg = load_config(str(config_file), args.overrides)
    prompts = None
    if cfg.get("text_encoder") is not None:
        if args.classes or args.list_classes:
            raise UserError(f"{args.config} is a text-to-video model: it takes --prompt, not classes")
        prompts, class_ids = cli_prompts(args, args.config), None
    else:
        if args.prompt or args.prompt_file or args.aes is not None:
            raise UserError(f"{args.config} is a class model: it takes --class, not --prompt")
        class_ids, names = cli_classes(args.classes, cfg, args.config)
        if args.list_classes:
            if class_ids is None:
                raise UserError(f"{args.config} is unconditional (num_classes=0): it has no classes to list")
            print(class_table(names, model_num_classes(cfg)))
            return
        if class_ids is None and args.cfg_scale is not None:
            raise UserError(f"{args.config} is unconditional (num_classes=0): it has no guidance, drop --cfg-scale")
    if args.size and (args.resolution or args.aspect_ratio):
        raise UserError("give --size H W or --resolution (with --aspect-ratio), not both")
    check_args(args)
    import torch

    from opensora_lite.inference.pipeline import VideoPipeline

    t0 = time.perf_counter()
    pipe = VideoPipeline.from_loaded_config(cfg, args.config, args.ckpt or run_weights, args.vae_ckpt,
                                            args.random_init, args.device)
    pipe.to(dtype=torch.bfloat16 if args.dtype == "bf16" else torch.float32)
    if args.fps:
        pipe.fps = args.fps
    if args.aes is not None:
        pipe.aes = cli_aes(args.aes)
    out = pipe(classes=class_ids, num_frames=args.frames, num_samples=args.num_samples, seed=args.seed,
               steps=args.steps, cfg_scale=args.cfg_scale, sampler=args.sampler, first_frame=args.first_frame,
               extend=args.extend, window_frames=args.window, overlap_frames=args.overlap, prompts=prompts,
               size=tuple(args.size) if args.size else None, resolution=args.resolution,
               aspect_ratio=args.aspect_ratio, given_cfg_scale=args.given_cfg_scale, progress=not args.no_progress)
    for path in out.save(args.save_dir, overwrite=args.overwrite):
        print(path)
    frames = out.videos.shape[2]
    print(f"{len(out.names)} video(s) of {frames} frames in {time.perf_counter() - t0:.1f} s "
          f"(sampling {out.timings['sampling']:.1f} s, decoding {out.timings['decoding']:.1f} s)")

