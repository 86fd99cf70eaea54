"""A folder of videos and images -> a dataset CSV in Open-Sora's columns.

    rows, skipped = scan_folder("clips/", label_from_folder=True)
    write_csv(rows, "clips.csv")

Every file is probed with the project's readers (``video_read.inspect_video``: the upright, square-pixel size
after rotation and pixel aspect, the visible frames of an edit list), in a pool of worker processes. Columns:
``path, num_frames, height, width, aspect_ratio, fps`` (aspect_ratio = height / width, Open-Sora's), plus ``label``
(the first folder under the root, in sorted order; the names go to ``classes.json`` beside the CSV) or ``text``
(a caption from a JSON file). Images are one-frame clips with no fps. Unreadable files are skipped, each with
its reason.
"""
import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

from ..errors import DataError
from .video_read import VIDEO_EXTENSIONS, inspect_video
from .video_write import OutputExistsError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
COLUMNS = ("path", "num_frames", "height", "width", "aspect_ratio", "fps")
ASPECT_DIGITS = 4  # aspect_ratio is written with this many decimals


def list_media(root: Path) -> List[Path]:
    """Videos and images under ``root`` (recursively, hidden files and folders skipped), sorted."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if path.is_file() and not any(part.startswith(".") for part in relative) and \
                path.suffix.lower() in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS:
            files.append(path)
    return files


def probe(path: Path) -> Tuple[Optional[dict], Optional[str]]:
    """(num_frames, height, width, fps of one file, None) or (None, why it cannot be read)."""
    try:
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            from PIL import Image, ImageOps

            with Image.open(path) as image:
                width, height = ImageOps.exif_transpose(image).size  # upright, as a reader shows it
            return dict(num_frames=1, height=height, width=width, fps=""), None
        info = inspect_video(path)
        height, width = info.display_size
        return dict(num_frames=info.num_frames, height=height, width=width, fps=round(info.fps, 3)), None
    except DataError as err:
        return None, str(err).replace(f"{path}: ", "")
    except Exception as err:  # PIL's own errors for broken images
        return None, f"{type(err).__name__}: {err}"


def scan_folder(root: Union[str, os.PathLike], label_from_folder: bool = False,
                captions: Optional[Dict[str, str]] = None, workers: int = 2,
                progress: Optional[Callable] = None) -> Tuple[List[dict], Dict[str, str], Optional[List[str]]]:
    """Rows of the readable files, ``{path: reason}`` of the skipped ones, and the class names: one per top
    sub-folder with ``label_from_folder``, else (without ``captions``) one class named after ``root``, so a flat
    folder trains as it is. ``captions`` maps a file's path relative to ``root`` (or its name) to its text."""
    root = Path(root)
    files = list_media(root)
    if not files:
        raise DataError(f"{root}: no videos ({', '.join(VIDEO_EXTENSIONS)}) or images "
                        f"({', '.join(IMAGE_EXTENSIONS)}) in it or its sub-folders")
    classes = None
    if label_from_folder:
        classes = sorted({f.relative_to(root).parts[0] for f in files if len(f.relative_to(root).parts) > 1})
        if not classes:
            raise DataError(f"{root}: --label-from-folder needs one sub-folder per class; the files are all at the top")
    elif captions is None:
        classes = [root.resolve().name or "clips"]  # one class: every file is label 0
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(probe, files, chunksize=8)
        if progress is not None:
            results = progress(results, total=len(files))
        probed = list(results)
    rows, skipped = [], {}
    for path, (info, reason) in zip(files, probed):
        relative = path.relative_to(root)
        if info is None:
            skipped[str(relative)] = reason
            continue
        row = dict(path=path.resolve(), **info,
                   aspect_ratio=round(info["height"] / info["width"], ASPECT_DIGITS))
        if label_from_folder:
            if len(relative.parts) == 1:
                skipped[str(relative)] = "not in a class folder"
                continue
            row["label"] = classes.index(relative.parts[0])
        elif classes is not None:
            row["label"] = 0
        if captions is not None:
            text = captions.get(relative.as_posix(), captions.get(path.name))
            if not text or not str(text).strip():
                skipped[str(relative)] = "no caption in the captions file"
                continue
            row["text"] = str(text).strip()
        rows.append(row)
    return rows, skipped, classes


def read_captions(path: Union[str, os.PathLike]) -> Dict[str, str]:
    """A JSON object ``{"relative/path.mp4" or "name.mp4": "caption", ...}``."""
    path = Path(path)
    try:
        captions = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DataError(f"--captions {path}: {err.strerror}") from None
    except ValueError as err:
        raise DataError(f"--captions {path}: not JSON ({err})") from None
    if not isinstance(captions, dict) or not all(isinstance(v, str) for v in captions.values()):
        raise DataError(f"--captions {path}: expected a JSON object mapping file paths to caption strings")
    return captions


def write_csv(rows: List[dict], out: Union[str, os.PathLike], classes: Optional[List[str]] = None,
              overwrite: bool = False) -> Path:
    """Write the CSV (paths relative to its folder where they are below it) and ``classes.json`` with it."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")
    extra = [c for c in ("label", "text") if rows and c in rows[0]]
    out.parent.mkdir(parents=True, exist_ok=True)
    base = out.parent.resolve()
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*COLUMNS, *extra])
        writer.writeheader()
        for row in rows:
            path = Path(row["path"])
            shown = os.path.relpath(path, base) if path.is_relative_to(base) else str(path)
            writer.writerow({**row, "path": shown})
    if classes is not None:
        (out.parent / "classes.json").write_text(json.dumps({str(i): c for i, c in enumerate(classes)}, indent=1))
    return out
