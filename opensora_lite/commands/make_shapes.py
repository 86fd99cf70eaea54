"""Write the synthetic moving-shapes benchmark (docs/shapes_benchmark.md) as MP4 files + CSV.

    python tools/make_shapes.py --out data/shapes --clips-per-class 200 --val-clips-per-class 20 --seed 0

Writes ``train/<id>_<name>/*.mp4``, ``train.csv`` (path,label,shape,direction), ``classes.json`` and,
with ``--val-clips-per-class``, the held-out ``val`` split. Deterministic for a seed.

Long clips (docs/shapes_benchmark.md): ``--long-fraction F`` makes that fraction of each class's training
clips windows of longer trajectories, in which the shape may enter or leave the frame
(``window_<k>.mp4``; the other clips are the same as without it), and ``--val-long-clips-per-class N``
writes ``val_long/`` and ``val_long.csv``: held-out clips of ``--long-frames`` (48) frames whose first
``--frames`` are fully inside, after which the shape leaves. ``--exit-fraction F`` makes that fraction exit
windows, which start as the shape leaves or after it has gone (``exit_<k>.mp4``); train.csv marks them
``frame_mask=first_k``, so training only uses them as continuations of their first frames.

Mixed sizes for buckets: ``--sizes 64x64 48x96 96x48`` gives clip k of each class (and kind) the k-th size in
turn, and ``--stills-per-class N`` adds N still images per class (``still_<k>.png``, 1-frame clips).
"""
import argparse
from pathlib import Path

from opensora_lite.cli import ArgumentParser, parse_hw
from opensora_lite.data.shapes import (
    DEFAULT_CRF,
    DEFAULT_FPS,
    FRAME_SIZE,
    LONG_FRAMES,
    NUM_FRAMES,
    make_shapes_dataset,
)
from opensora_lite.errors import UserError


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(prog="opensora-lite make-shapes", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--clips-per-class", type=int, default=100, help="training clips per class (12 classes)")
    parser.add_argument("--val-clips-per-class", type=int, default=0, help="held-out clips per class (val.csv)")
    parser.add_argument("--frames", type=int, default=NUM_FRAMES, help="frames per clip")
    parser.add_argument("--long-fraction", type=float, default=0.0,
                        help="fraction of training clips that are windows of longer trajectories (enter/leave)")
    parser.add_argument("--exit-fraction", type=float, default=0.0,
                        help="fraction of training clips that start as the shape leaves or after (continuations only)")
    parser.add_argument("--val-long-clips-per-class", type=int, default=0,
                        help="held-out long clips per class (val_long.csv)")
    parser.add_argument("--long-frames", type=int, default=LONG_FRAMES, help="frames per long clip")
    parser.add_argument("--size", type=int, default=FRAME_SIZE, help="frame height and width, px")
    parser.add_argument("--sizes", nargs="+", metavar="HxW", default=[],
                        help="mixed frame sizes, e.g. 64x64 48x96 96x48: clip k of each class gets the k-th (in turn)")
    parser.add_argument("--stills-per-class", type=int, default=0,
                        help="still images (PNG, frame 0 of a clip) per class in train/: 1-frame clips for buckets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS)
    parser.add_argument("--crf", type=int, default=DEFAULT_CRF, help="x264 CRF (lower = better quality)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    args = parser.parse_args(argv)  # a usage error is a UserError: one line, exit code 2
    if args.frames < 1 or args.size < 1:
        raise UserError(f"--frames and --size must be >= 1, got {args.frames} and {args.size}")
    if not args.fps > 0:
        raise UserError(f"--fps must be > 0, got {args.fps}")
    if not 0 <= args.crf <= 51:
        raise UserError(f"--crf must be in 0..51, got {args.crf}")
    args.sizes = [parse_hw(text, "--sizes") for text in args.sizes]
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a file, not a folder")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    written = make_shapes_dataset(
        args.out,
        clips_per_class=args.clips_per_class,
        num_frames=args.frames,
        size=args.size,
        seed=args.seed,
        val_clips_per_class=args.val_clips_per_class,
        overwrite=args.overwrite,
        fps=args.fps,
        crf=args.crf,
        long_fraction=args.long_fraction,
        val_long_clips_per_class=args.val_long_clips_per_class,
        long_frames=args.long_frames,
        exit_fraction=args.exit_fraction,
        sizes=args.sizes,
        stills_per_class=args.stills_per_class,
    )
    for name, path in written.items():
        print(f"{name}: {path}")
