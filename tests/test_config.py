"""Config loading and the registry: inheritance, overrides, and errors that name the key and the file."""
import pytest

from opensora_lite.config import load_config, parse_overrides
from opensora_lite.errors import ConfigError
from opensora_lite.models import STDiT
from opensora_lite.registry import MODELS, SCHEDULERS, build_module


@pytest.fixture
def config_files(tmp_path):
    (tmp_path / "base.py").write_text("model = dict(type='STDiT-S/2', depth=2, num_classes=5)\nlr = 1e-4\n")
    (tmp_path / "child.py").write_text("_base_ = ['./base.py']\nmodel = dict(depth=1, hidden_size=48, num_heads=2)\n")
    return tmp_path


def test_base_inheritance_merges_dicts(config_files):
    cfg = load_config(str(config_files / "child.py"))
    assert cfg.model == dict(type="STDiT-S/2", depth=1, num_classes=5, hidden_size=48, num_heads=2)
    model = build_module(cfg.model, MODELS)
    assert isinstance(model, STDiT) and len(model.spatial_blocks) == 1 and model.num_classes == 5


def test_overrides_set_nested_keys_and_parse_literals(config_files):
    overrides = parse_overrides(["--model.depth", "3", "--lr", "3e-4"])
    cfg = load_config(str(config_files / "child.py"), overrides)
    assert cfg.model.depth == 3 and cfg.lr == 3e-4


def test_override_of_an_unknown_key_names_it_and_the_file(config_files):
    path = str(config_files / "child.py")
    with pytest.raises(ConfigError, match=r"child\.py.*'modl'"):
        load_config(path, {"modl.depth": 3})
    with pytest.raises(ConfigError, match=r"child\.py.*'lrr'"):
        load_config(path, {"lrr": 3})
    cfg = load_config(path, {"model.dpth": 3})  # a new leaf is allowed here and refused by the builder
    with pytest.raises(ConfigError, match=r"child\.py: unknown key\(s\) \['dpth'\]"):
        build_module(cfg.model, MODELS, where=path)


def test_unknown_type_names_it_and_the_file(config_files):
    with pytest.raises(ConfigError, match=r"child\.py: unknown model type 'STDiT-Q/2'"):
        build_module(dict(type="STDiT-Q/2"), MODELS, where=str(config_files / "child.py"))


def test_unknown_constructor_key_names_it_and_the_file():
    with pytest.raises(ConfigError, match=r"my\.py: unknown key\(s\) \['num_step'\] for type 'rflow'"):
        build_module(dict(type="rflow", num_step=10), SCHEDULERS, where="my.py")


def test_missing_config_file_and_directory_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.py"))
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(str(tmp_path))


def test_syntax_error_in_config_is_a_config_error(tmp_path):
    (tmp_path / "bad.py").write_text("model = dict(type='STDiT'\n")
    with pytest.raises(ConfigError, match="cannot load config"):
        load_config(str(tmp_path / "bad.py"))


def test_bad_override_syntax_is_rejected():
    with pytest.raises(ConfigError, match="--key value"):
        parse_overrides(["model.depth", "3"])


def test_shipped_configs_load_and_build_their_schedulers():
    for path in ("configs/shapes/stdit_shapes.py", "configs/stdit_256.py", "configs/dit_xl2_256_video.py"):
        cfg = load_config(path)
        assert build_module(cfg.scheduler, SCHEDULERS, where=path) is not None
