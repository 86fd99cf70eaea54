"""tools/label_probe.py: one loss per noise level and label variant, and a clear error without a cache."""
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from opensora_lite.cli import run_cli

from helpers import SHAPES

TOOL = "label_probe"  # the command the tool fixture runs



def config_with_cache(tmp_path: Path, cache: Path) -> Path:
    path = tmp_path / "probe.py"
    path.write_text(f"_base_ = [{str(SHAPES)!r}]\ntrain = dict(latent_cache={str(cache)!r})\n")
    return path


def test_probe_prints_a_loss_per_level_and_label(tool, capsys, tmp_path):
    cache = tmp_path / "latents.safetensors"
    labels = torch.arange(12)
    save_file({"latents": torch.randn(12, 4, 8, 8, 8, generator=torch.Generator().manual_seed(0)), "labels": labels},
              str(cache), metadata={"meta": json.dumps({})})
    code = run_cli(tool.main, [str(config_with_cache(tmp_path, cache)), "--clips", "12"])
    out, err = capsys.readouterr()
    assert code == 0, err
    header, *rows = out.strip().splitlines()
    assert all(name in header for name in ("true", "opposite direction", "other shape", "null"))
    assert len(rows) == len(tool.NOISE_LEVELS)
    losses = [[float(v) for v in row.split()[1:]] for row in rows]
    assert all(len(r) == 4 and all(v > 0 for v in r) for r in losses)
    assert any(r[0] != r[3] for r in losses)  # the shipped model is conditional: the null label changes the loss


def test_probe_without_a_cache_says_how_to_make_one(tool, capsys, tmp_path):
    code = run_cli(tool.main, [str(config_with_cache(tmp_path, tmp_path / "missing.safetensors"))])
    _, err = capsys.readouterr()
    assert code == 2 and "latent cache" in err and "tools/train.py" in err
