"""tools/eval.py end to end on the shipped model: results.json with every metric, the grid, no overwrite."""
import json

from opensora_lite.cli import run_cli
from opensora_lite.data.shapes import make_shapes_dataset

from helpers import SHAPES

TOOL = "eval"  # the command the tool fixture runs



def test_eval_writes_every_metric_of_every_mode_and_never_overwrites(tool, capsys, tmp_path):
    from opensora_lite.eval.classifier import ShapesClassifier
    from opensora_lite.storage import save_checkpoint

    data = tmp_path / "shapes"
    make_shapes_dataset(data, clips_per_class=1, num_frames=17, val_clips_per_class=1, val_long_clips_per_class=1,
                        long_frames=24, seed=3, progress=False)
    classifier = tmp_path / "classifier.safetensors"
    save_checkpoint(ShapesClassifier(12), classifier)  # an untrained one: this test is about the tool, not FID
    out = tmp_path / "eval"
    argv = [SHAPES, "--per-class", "1", "--steps", "2", "--data", str(data), "--real-clips", "12",
            "--classifier", str(classifier), "--out", str(out), "--i2v-clips", "2", "--extend-clips", "2",
            "--long-frames", "24", "--longer-frames", "28", "--direct-frames", "20", "--window", "16",
            "--overlap", "8"]
    assert run_cli(tool.main, argv) == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    uncond = results["uncond"]
    for key in ("judged_accuracy", "judged_accuracy_real_heldout", "judged_accuracy_vae_reconstruction",
                "classifier_accuracy_on_generated", "vae_ssim"):
        assert 0 <= uncond[key] <= 1, key
    assert uncond["judged_accuracy_real_heldout"] == 1.0  # the judge is right on real clips
    assert uncond["judged_accuracy_vae_reconstruction"] >= 0.75  # the shipped VAE keeps shapes and motion
    assert uncond["vae_psnr_db"] > 25 and results["steps"] == 2 and results["window"] == dict(frames=16, overlap=8)
    assert len(uncond["judged_accuracy_per_class"]) == 12
    assert results["i2v"]["clips"] == 2 and results["extend"]["clips"] == 2 and results["direct"]["frames"] == 20
    assert 0 <= results["extend"]["judged_accuracy_vae_reconstruction"] <= 1
    assert results["longer"]["frames"] == 28
    for mode in ("i2v", "extend"):  # animated previews for the README: given frames marked, clips side by side
        from PIL import Image

        preview = Image.open(out / mode / "preview.webp")
        assert preview.n_frames == (16 if mode == "i2v" else 24) and preview.size[1] == 2 * (64 + 4)
    for mode in ("uncond", "i2v", "extend", "long", "longer", "direct"):
        assert 0 <= results[mode]["judged_accuracy"] <= 1, mode
        assert (out / mode / "grid-0.png").is_file(), mode
    capsys.readouterr()
    assert run_cli(tool.main, argv) == 2  # results exist: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err
