"""make-csv: a folder of videos and images becomes a dataset CSV (issue #26)."""
import csv
import json
from fractions import Fraction

import numpy as np
from PIL import Image
from video_fixtures import encode, patterned_clip, with_rotation

from opensora_lite.data.datasets import VideoClipDataset

from helpers import run

TOOL = "make_csv"


def make_folder(root):
    """Two classes: a 48x64 clip, a rotated portrait clip, a clip with 2:1 pixels, a still image, a broken file."""
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    encode(root / "cats" / "wide.mp4", patterned_clip(10, 48, 64), fps=12)
    encode(root / "flat.mp4", patterned_clip(6, 32, 48))
    with_rotation(root / "flat.mp4", root / "dogs" / "turned.mp4", 90)  # stored 32x48, shown 48x32
    (root / "flat.mp4").unlink()
    encode(root / "dogs" / "stretched.mp4", patterned_clip(5, 32, 32), sample_aspect=Fraction(2, 1))
    Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(root / "cats" / "still.png")
    (root / "dogs" / "broken.mp4").write_bytes(b"not a video")
    (root / ".hidden").mkdir()
    encode(root / ".hidden" / "skip.mp4", patterned_clip(4, 16, 16))


def read_rows(path):
    with open(path, newline="") as f:
        return {row["path"]: row for row in csv.DictReader(f)}


def test_a_folder_becomes_a_csv_with_true_sizes_and_labels(tool, capsys, tmp_path):
    make_folder(tmp_path / "clips")
    out = tmp_path / "clips.csv"
    code, stdout, err = run(tool, capsys, str(tmp_path / "clips"), "-o", str(out), "--label-from-folder")
    assert code == 0, err
    rows = read_rows(out)
    assert set(rows) == {"clips/cats/still.png", "clips/cats/wide.mp4", "clips/dogs/stretched.mp4",
                         "clips/dogs/turned.mp4"}
    wide, turned, stretched, still = (rows[f"clips/{p}"] for p in ("cats/wide.mp4", "dogs/turned.mp4",
                                                                   "dogs/stretched.mp4", "cats/still.png"))
    assert (wide["num_frames"], wide["height"], wide["width"], wide["fps"], wide["label"]) == ("10", "48", "64",
                                                                                              "12.0", "0")
    assert float(wide["aspect_ratio"]) == 0.75
    assert (turned["height"], turned["width"], turned["label"]) == ("48", "32", "1")  # the rotation applied
    assert (stretched["height"], stretched["width"]) == ("32", "64")  # 2:1 pixels shown square
    assert (still["num_frames"], still["fps"], still["height"], still["width"]) == ("1", "", "20", "30")
    assert json.loads((tmp_path / "classes.json").read_text()) == {"0": "cats", "1": "dogs"}
    assert "skipped dogs/broken.mp4:" in stdout and "4 files (3 videos, 1 images), 1 skipped" in stdout
    dataset = VideoClipDataset(out, num_frames=4, size=(32, 32))  # the CSV is a dataset as it is
    assert len(dataset) == 4 and dataset.classes == ["cats", "dogs"]


def test_captions_become_the_text_column(tool, capsys, tmp_path):
    make_folder(tmp_path / "clips")
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps({"cats/wide.mp4": "a wide clip", "turned.mp4": "a turned clip"}))
    out = tmp_path / "captioned.csv"
    code, stdout, err = run(tool, capsys, str(tmp_path / "clips"), "-o", str(out), "--captions", str(captions))
    assert code == 0, err
    rows = read_rows(out)
    assert {r["text"] for r in rows.values()} == {"a wide clip", "a turned clip"}
    assert "skipped dogs/stretched.mp4: no caption in the captions file" in stdout
    assert VideoClipDataset(out, num_frames=4, size=(32, 32)).captions == ["a wide clip", "a turned clip"]


def test_an_existing_csv_is_kept_and_bad_input_is_one_line(tool, capsys, tmp_path):
    make_folder(tmp_path / "clips")
    out = tmp_path / "clips.csv"
    out.write_text("mine\n")
    code, _, err = run(tool, capsys, str(tmp_path / "clips"), "-o", str(out))
    assert code == 2 and "pass --overwrite" in err[0] and out.read_text() == "mine\n"
    code, _, err = run(tool, capsys, str(tmp_path / "nothing"), "-o", str(tmp_path / "x.csv"))
    assert code == 2 and len(err) == 1 and "no such folder" in err[0]
    (tmp_path / "flat").mkdir()
    encode(tmp_path / "flat" / "a.mp4", patterned_clip(4, 16, 16))
    code, _, err = run(tool, capsys, str(tmp_path / "flat"), "-o", str(tmp_path / "y.csv"), "--label-from-folder")
    assert code == 2 and len(err) == 1 and "one sub-folder per class" in err[0]
    code, _, err = run(tool, capsys, str(tmp_path / "flat"), "-o", str(tmp_path / "flat.csv"))  # it used to be
    assert code == 0 and read_rows(tmp_path / "flat.csv")["flat/a.mp4"]["label"] == "0"
    assert json.loads((tmp_path / "classes.json").read_text()) == {"0": "flat"}  # one class, named after it
    code, _, err = run(tool, capsys, str(tmp_path / "flat"), "-o", str(tmp_path / "z.csv"), "--captions",
                       str(tmp_path / "none.json"))
    assert code == 2 and len(err) == 1 and "--captions" in err[0]
