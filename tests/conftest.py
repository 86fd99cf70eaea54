"""Shared test helpers: reference fixtures (tests/fixtures/, made as its README.md says) and small utilities."""
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str):
    """Return ``(state_dict, inputs, outputs, meta)`` of ``tests/fixtures/<name>.{safetensors,json}``.

    state_dict tensors are upcast to float32 (they are stored as lossless float16).
    """
    tensors = load_file(FIXTURES / f"{name}.safetensors")
    groups = {"state_dict.": {}, "input.": {}, "output.": {}}
    for key, value in tensors.items():
        for prefix, group in groups.items():
            if key.startswith(prefix):
                group[key[len(prefix):]] = value
    sd = {k: v.float() if v.is_floating_point() else v for k, v in groups["state_dict."].items()}
    meta = json.loads((FIXTURES / f"{name}.json").read_text())
    return sd, groups["input."], groups["output."], meta


def fixture_atol(meta: dict, output_name: str) -> float:
    """The fixture's recommended absolute tolerance for one output."""
    return meta["tolerance"]["recommended"]["atol_per_output"][output_name]


def dit_tiny_stdit(state_dict: dict, frames: int):
    """STDiT with the dit_tiny fixture's sizes and weights: on (N, 4, frames, 8, 8) clips it runs DiT per frame."""
    from opensora_lite.models import STDiT
    from opensora_lite.models.convert import load_checkpoint

    model = STDiT(input_size=(frames, 8, 8), patch_size=(1, 2, 2), in_channels=4, hidden_size=64, depth=2,
                  num_heads=4, num_classes=10, learn_sigma=True)
    load_checkpoint(model, state_dict)
    return model.eval()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def in_process_group():
    """For tests that call train() in-process: it joins a 1-process gloo group and sets RANK, MASTER_PORT,
    ... in os.environ. Undo both at the end of the module, or the subprocesses of later tests
    (tools/train.py) would try to join that group."""
    keys = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    saved = {key: os.environ.get(key) for key in keys}
    yield
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
