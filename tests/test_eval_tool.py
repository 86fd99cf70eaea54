"""tools/eval.py end to end on the shipped model: results.json with every metric, the grid, no overwrite."""
import json
from pathlib import Path

import pytest

from opensora_lite.cli import run_cli
from opensora_lite.data.shapes import make_shapes_dataset

from helpers import load_tool

ROOT = Path(__file__).resolve().parents[1]
SHAPES = str(ROOT / "configs" / "shapes" / "stdit_shapes.py")


@pytest.fixture(scope="module")
def tool():
    return load_tool("eval")


def test_eval_writes_every_metric_and_never_overwrites(tool, capsys, tmp_path):
    from opensora_lite.engine.checkpoint import save_checkpoint
    from opensora_lite.eval.classifier import ShapesClassifier

    data = tmp_path / "shapes"
    make_shapes_dataset(data, clips_per_class=1, val_clips_per_class=1, seed=3, progress=False)
    classifier = tmp_path / "classifier.safetensors"
    save_checkpoint(ShapesClassifier(12), classifier)  # an untrained one: this test is about the tool, not FID
    out = tmp_path / "eval"
    argv = [SHAPES, "--per-class", "1", "--steps", "2", "--data", str(data), "--real-clips", "12",
            "--classifier", str(classifier), "--out", str(out)]
    assert run_cli(tool.main, argv) == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert (out / "samples.png").is_file()
    for key in ("judged_accuracy", "judged_accuracy_real_heldout", "judged_accuracy_vae_reconstruction",
                "classifier_accuracy_on_generated", "vae_ssim"):
        assert 0 <= results[key] <= 1, key
    assert results["judged_accuracy_real_heldout"] == 1.0  # the judge is right on real clips
    assert results["judged_accuracy_vae_reconstruction"] >= 0.75  # the shipped VAE keeps shapes and motion
    assert results["vae_psnr_db"] > 25 and results["steps"] == 2
    assert len(results["judged_accuracy_per_class"]) == 12
    capsys.readouterr()
    assert run_cli(tool.main, argv) == 2  # results exist: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err
