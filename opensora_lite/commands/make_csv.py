"""Make a dataset CSV from a folder of videos and images (Open-Sora's columns).

    opensora-lite make-csv my_clips/ -o data/my_clips.csv --label-from-folder     # my_clips/<class>/*.mp4
    opensora-lite make-csv my_clips/ -o data/my_clips.csv --captions captions.json  # {"a.mp4": "a caption"}

Columns: path (relative to the CSV's folder when below it), num_frames, height, width (upright, square pixels:
rotation and pixel aspect applied), aspect_ratio (height / width), fps, and label or text. Images are one-frame
clips. Unreadable files are skipped and listed with their reason; an existing CSV is kept unless --overwrite.
"""
from pathlib import Path

from opensora_lite.cli import ArgumentParser
from opensora_lite.errors import UserError

MAX_LISTED = 20  # skipped files listed one per line; the rest are counted


def parse_args(argv):
    parser = ArgumentParser(prog="opensora-lite make-csv", description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="a folder of videos and images (searched recursively)")
    parser.add_argument("-o", "--out", required=True, help="the CSV to write")
    parser.add_argument("--label-from-folder", action="store_true",
                        help="label = the file's first folder under FOLDER (sorted: 0, 1, ...); names to classes.json "
                        "(without it or --captions: one class, named after FOLDER)")
    parser.add_argument("--captions", metavar="JSON", help="a JSON object: file path (relative to FOLDER) or name "
                        "-> caption; written as the column text")
    parser.add_argument("--workers", type=int, default=2, help="processes probing files (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing CSV")
    return parser.parse_args(argv)


def main(argv):
    from tqdm.auto import tqdm

    from opensora_lite.data.folder_scan import read_captions, scan_folder, write_csv

    args = parse_args(argv)
    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it")
    captions = read_captions(args.captions) if args.captions else None
    rows, skipped, classes = scan_folder(args.folder, args.label_from_folder, captions, args.workers,
                                         progress=lambda it, total: tqdm(it, total=total, desc="probing"))
    for path, reason in list(skipped.items())[:MAX_LISTED]:
        print(f"skipped {path}: {reason}")
    if len(skipped) > MAX_LISTED:
        print(f"... and {len(skipped) - MAX_LISTED} more skipped files")
    if not rows:
        raise UserError(f"{args.folder}: none of the {len(skipped)} files could be used (reasons above)")
    write_csv(rows, out, classes, overwrite=args.overwrite)
    videos = sum(1 for r in rows if r["num_frames"] > 1 or r["fps"] != "")
    print(f"{out}: {len(rows)} files ({videos} videos, {len(rows) - videos} images), {len(skipped)} skipped"
          + (f"; {len(classes)} classes in {out.parent / 'classes.json'}" if classes else ""))
