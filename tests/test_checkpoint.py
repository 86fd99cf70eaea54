"""Checkpoints: DiT conversion and inflation, safe loading, clear errors, atomic safetensors saving."""
import argparse
import json
import logging
import os

import pytest
import torch
from safetensors import safe_open

from opensora_lite import storage as ckpt
from opensora_lite.errors import CheckpointError
from opensora_lite.models import STDiT
from opensora_lite.models.convert import load_checkpoint
from opensora_lite.registry import MODELS, build_module
from opensora_lite.storage import atomic_write_bytes, load_state_dict, read_config, save_checkpoint, save_state_dict

from conftest import fixture_atol, load_fixture

RTOL = 1e-5


def tiny(**overrides) -> STDiT:
    kwargs = dict(input_size=(3, 8, 8), patch_size=(1, 2, 2), in_channels=4, hidden_size=64, depth=2,
                  num_heads=4, num_classes=10, learn_sigma=True)
    kwargs.update(overrides)
    return STDiT(**kwargs).eval()


def randomized(model: STDiT, seed: int = 0) -> STDiT:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


@pytest.fixture(scope="module")
def dit():
    return load_fixture("dit_tiny")


def check_matches_dit(model: STDiT, dit, frames: int = 3) -> None:
    _, inp, out, meta = dit
    x = inp["x"][:, :, None].expand(-1, -1, frames, -1, -1)
    with torch.no_grad():
        actual = model(x, inp["t"], inp["y"])
    expected = out["forward"][:, :, None].expand(-1, -1, frames, -1, -1)
    torch.testing.assert_close(actual, expected, atol=fixture_atol(meta, "forward"), rtol=RTOL)


#################################################################################
#                         DiT checkpoints and inflation                         #
#################################################################################


def test_dit_training_checkpoint_in_a_pt_file_loads_its_ema_weights(dit, tmp_path, caplog):
    sd = dit[0]
    garbage = {k: torch.zeros_like(v) for k, v in sd.items()}
    path = tmp_path / "dit.pt"
    # The layout of DiT's train.py checkpoints; find_model uses "ema".
    torch.save({"model": garbage, "ema": sd, "opt": {}, "args": argparse.Namespace(model="DiT-XL/2")}, path)
    model = tiny()
    with caplog.at_level(logging.INFO, logger="opensora_lite.models.convert"):
        report = load_checkpoint(model, path)
    assert report.converted_from == "dit" and report.inflated
    assert report.missing == [] and report.unexpected == []
    assert "inflating image checkpoint: 2 temporal blocks keep their zero init" in caplog.text
    assert model.x_embedder.proj.weight.shape == (64, 4, 1, 2, 2)
    check_matches_dit(model, dit)


def test_module_prefix_and_wrapper_are_stripped(dit, tmp_path):
    path = tmp_path / "dit.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in dit[0].items()}}, path)
    model = tiny()
    load_checkpoint(model, path)
    check_matches_dit(model, dit)


def test_learned_pos_embed_is_refused(dit):
    sd = dict(dit[0])
    sd["pos_embed"] = sd["pos_embed"] + 0.01
    with pytest.raises(CheckpointError, match="learned position embeddings are not supported"):
        load_checkpoint(tiny(), sd)


def test_a_video_checkpoint_must_have_all_its_temporal_blocks(dit):
    source = randomized(tiny())
    sd = {k: v for k, v in source.state_dict().items() if not k.startswith("temporal_blocks.1.")}
    with pytest.raises(CheckpointError, match=r"missing key\(s\).*temporal_blocks\.1\.attn\.qkv\.weight"):
        load_checkpoint(tiny(), sd)


def test_floating_tensors_are_cast_to_the_model_dtype(dit):
    sd = {k: v.half() if k != "pos_embed" else v for k, v in dit[0].items()}  # the fixture's stored dtype
    model = tiny().to(torch.bfloat16)
    load_checkpoint(model, sd)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert torch.equal(model.t_embedder.mlp[0].weight, dit[0]["t_embedder.mlp.0.weight"].bfloat16())
    fp32 = tiny()
    load_checkpoint(fp32, sd)
    check_matches_dit(fp32, dit)


#################################################################################
#                           Mismatches: one clear error                         #
#################################################################################


def test_a_mismatched_checkpoint_lists_every_problem_at_once():
    sd = randomized(tiny(hidden_size=32)).state_dict()
    sd["extra.weight"] = torch.zeros(3)
    del sd["final_layer.linear.bias"]
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tiny(), sd)
    message = str(info.value)
    assert "x_embedder.proj.weight: expected (64, 4, 1, 2, 2) found (32, 4, 1, 2, 2)" in message
    assert "spatial_blocks.1.mlp.fc2.weight: expected (64, 256) found (32, 128)" in message
    assert "1 missing key(s): ['final_layer.linear.bias']" in message
    assert "1 unexpected key(s): ['extra.weight']" in message


def test_non_strict_loading_reports_leftovers_but_rejects_wrong_shapes():
    source = randomized(tiny())
    sd = source.state_dict()
    sd["extra.weight"] = torch.zeros(3)
    del sd["final_layer.linear.bias"]
    model = tiny()
    report = load_checkpoint(model, sd, strict=False)
    assert report.missing == ["final_layer.linear.bias"] and report.unexpected == ["extra.weight"]
    assert torch.equal(model.final_layer.linear.weight, source.final_layer.linear.weight)
    sd["final_layer.linear.weight"] = torch.zeros(5, 64)
    with pytest.raises(CheckpointError, match="wrongly shaped"):
        load_checkpoint(model, sd, strict=False)


def test_error_names_the_config_difference_of_a_saved_checkpoint(tmp_path):
    path = tmp_path / "deep.safetensors"
    save_checkpoint(tiny(depth=1), path)
    with pytest.raises(CheckpointError, match=r"deep\.safetensors.*depth=1 vs 2"):
        load_checkpoint(tiny(depth=2), path)


#################################################################################
#                       Unreadable and unsafe checkpoints                       #
#################################################################################


class WritesAMarkerFile:
    """A pickle payload: unpickling it calls open(marker, "w"), i.e. runs code chosen by the file's author."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": WritesAMarkerFile(marker)}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt.*Convert it to safetensors"):
        load_checkpoint(tiny(), path)
    assert not marker.exists()
    # Control: an unsafe load really would run the payload, so the assertion above can fail.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_unreadable_checkpoints_raise_checkpoint_errors_naming_the_file(tmp_path):
    model = randomized(tiny())
    good_st, good_pt = tmp_path / "good.safetensors", tmp_path / "good.pt"
    save_checkpoint(model, good_st)
    torch.save(model.state_dict(), good_pt)
    cases = {
        tmp_path / "absent.safetensors": "does not exist",
        tmp_path: "is a directory",
        tmp_path / "cut.safetensors": "truncated or corrupt",
        tmp_path / "cut.pt": "truncated or corrupt",
        tmp_path / "weights.npz": "unknown extension",
        tmp_path / "list.pt": "does not hold a state dict",
    }
    (tmp_path / "cut.safetensors").write_bytes(good_st.read_bytes()[: good_st.stat().st_size // 2])
    (tmp_path / "cut.pt").write_bytes(good_pt.read_bytes()[: good_pt.stat().st_size // 2])
    (tmp_path / "weights.npz").write_bytes(b"x")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    for path, reason in cases.items():
        with pytest.raises(CheckpointError) as info:
            load_state_dict(path)
        assert str(path) in str(info.value) and reason in str(info.value), str(info.value)
    assert set(load_state_dict(good_pt)) == set(model.state_dict())  # the intact originals do load


#################################################################################
#                              Saving, atomically                               #
#################################################################################


def test_save_and_load_round_trip_keeps_weights_and_config(tmp_path):
    model = randomized(tiny(patch_size=(2, 2, 2), input_size=(4, 8, 8)))
    path = tmp_path / "ckpt" / "model.safetensors"
    save_checkpoint(model, path, metadata={"step": 7, "note": "hello"})
    config = read_config(path)
    assert config == json.loads(json.dumps(model.config)) and config["type"] == "STDiT"
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["step"] == "7" and f.metadata()["note"] == "hello"
    rebuilt = build_module(config, MODELS).eval()
    report = load_checkpoint(rebuilt, path)
    assert report.missing == [] and report.unexpected == [] and report.converted_from is None
    assert not report.inflated
    for key, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key
    x, t, y = torch.randn(1, 4, 4, 8, 8), torch.tensor([3]), torch.tensor([2])
    with torch.no_grad():
        assert torch.equal(rebuilt(x, t, y), model(x, t, y))
    assert oct(path.stat().st_mode & 0o777) == oct(ckpt.DEFAULT_FILE_MODE)


def test_read_config_is_none_without_a_stored_config(tmp_path):
    save_state_dict({"w": torch.zeros(2)}, tmp_path / "plain.safetensors")
    torch.save({"w": torch.zeros(2)}, tmp_path / "plain.pt")
    assert read_config(tmp_path / "plain.safetensors") is None
    assert read_config(tmp_path / "plain.pt") is None


def test_shared_and_strided_tensors_are_saved(tmp_path):
    base = torch.randn(4, 6)
    sd = {"a": base, "tied": base, "strided": base[:, ::2], "transposed": base.t(), "row": base[1]}
    save_state_dict(sd, tmp_path / "shared.safetensors")
    loaded = load_state_dict(tmp_path / "shared.safetensors")
    assert set(loaded) == set(sd)
    for key, value in sd.items():
        assert torch.equal(loaded[key], value), key


def leftovers(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_a_failed_save_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save_checkpoint(tiny(), path)
    before = path.read_bytes()

    def half_write_then_fail(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", half_write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(randomized(tiny()), path)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="'step'.*not a tensor"):
        save_state_dict({"w": torch.zeros(1), "step": 3}, path)
    assert path.read_bytes() == before


def test_atomic_write_bytes(tmp_path):
    path = tmp_path / "a" / "b.bin"
    atomic_write_bytes(path, b"first")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    with pytest.raises(RuntimeError):
        with ckpt.atomic_writer(path) as f:
            f.write(b"third")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"second" and leftovers(path.parent) == []
