"""Packaging: one version, every package listed, shipped configs and weights found from any folder, one-line
colossalai install hint."""
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import torch

import opensora_lite
from opensora_lite.config import load_config, shipped_roots
from opensora_lite.errors import ConfigError, UserError
from opensora_lite.training.distributed import COLOSSALAI_INSTALL, make_booster

from helpers import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_comes_from_the_package():
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "opensora_lite.__version__"}
    assert opensora_lite.__version__.count(".") == 2


def test_every_package_of_the_source_tree_is_listed():
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "opensora_lite").rglob("__init__.py")}
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert on_disk == listed - {"opensora_lite.configs", "opensora_lite.weights"}, "update pyproject.toml's packages"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", ["configs/shapes/stdit_shapes.py", "shapes/stdit_shapes.py"])
def test_a_shipped_config_and_its_weights_load_from_any_folder(elsewhere, name):
    cfg = load_config(name, {"inference.num_frames": 8})
    assert cfg.inference.num_frames == 8 and cfg.model.hidden_size == 128  # _base_ and overrides still apply
    for key in ("model", "vae"):
        path = Path(cfg.ckpt[key])
        assert path.is_absolute() and path.is_file(), (key, path)
        assert path.parent.parent.parent in shipped_roots()  # <root>/weights/shapes/*.safetensors


def test_local_files_come_first(elsewhere):
    (elsewhere / "configs").mkdir()
    (elsewhere / "configs" / "stdit_shapes.py").write_text("marker = 1\nckpt = dict(model='mine.safetensors')\n")
    (elsewhere / "mine.safetensors").write_bytes(b"")
    cfg = load_config("configs/stdit_shapes.py")
    assert cfg.marker == 1 and cfg.ckpt.model == "mine.safetensors"


def test_missing_config_and_weights_are_still_named(elsewhere):
    with pytest.raises(ConfigError, match="'configs/nope.py' does not exist"):
        load_config("configs/nope.py")
    (elsewhere / "c.py").write_text("ckpt = dict(model='weights/nope.safetensors')\n")
    assert load_config("c.py").ckpt.model == "weights/nope.safetensors"  # left for the loader's error


def test_the_shipped_model_generates_from_another_folder(elsewhere, capsys):
    from helpers import load_tool

    tool = load_tool("generate")
    tool.main(["configs/shapes/stdit_shapes.py", "--class", "5", "--frames", "16", "--steps", "2",
               "--save-dir", "out"])
    assert (elsewhere / "out" / "5-0.mp4").is_file()


def test_missing_colossalai_names_the_install_command(monkeypatch):
    for name in ("colossalai", "colossalai.booster", "colossalai.booster.plugin"):
        monkeypatch.setitem(sys.modules, name, None)  # the import fails as if it were not installed
    with pytest.raises(UserError) as err:
        make_booster("ddp", "fp32", 1.0, torch.device("cpu"))
    assert COLOSSALAI_INSTALL in str(err.value) and "\n" not in str(err.value)
    assert COLOSSALAI_INSTALL == "pip install --no-deps colossalai==0.5.0"
    assert COLOSSALAI_INSTALL in (ROOT / "docs" / "install.md").read_text()
    assert "make install-train" in str(err.value) and "install-train:" in (ROOT / "Makefile").read_text()


def test_a_missing_training_package_stops_the_run_before_any_work(monkeypatch, tmp_path, capsys):
    """A new user's first run used to stop after 30 s of encoding (colossalai missing), the second on peft:
    now the first line says the one install step, and nothing was written."""
    from helpers import load_tool, run, write_config, write_latent_cache

    monkeypatch.setitem(sys.modules, "peft", None)  # colossalai imports it: as if it were not installed
    for name in [m for m in sys.modules if m.startswith("colossalai")]:
        monkeypatch.delitem(sys.modules, name)
    config = write_config(tmp_path, tmp_path / "run", write_latent_cache(tmp_path / "latents.safetensors"))
    code, _, err = run(load_tool("train"), capsys, config)
    assert code == 2 and len(err) == 1 and "cannot import 'peft'" in err[0] and "make install-train" in err[0], err
    assert not (tmp_path / "run").exists()


def test_a_run_shorter_than_its_warmup_is_a_warning(caplog):
    from opensora_lite.training.train_loop import train_settings

    with caplog.at_level("WARNING"):
        train_settings({"train": dict(max_steps=50, warmup_steps=100)})
    assert "train.max_steps 50 is below train.warmup_steps 100" in caplog.text


@pytest.mark.slow
def test_a_regular_install_ships_configs_and_weights(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(ROOT)], check=True, capture_output=True, timeout=600)
    code = ("import opensora_lite; from opensora_lite.config import load_config;"
            "c = load_config('configs/shapes/stdit_shapes.py'); print(opensora_lite.__file__); print(c.ckpt.model)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                         capture_output=True, text=True, check=True, timeout=300).stdout.split()
    assert out[0] == str(target / "opensora_lite" / "__init__.py")
    assert out[1] == str(target / "opensora_lite" / "weights" / "shapes" / "stdit.safetensors")
    assert Path(out[1]).stat().st_size == (ROOT / "weights" / "shapes" / "stdit.safetensors").stat().st_size
