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


def forward_with_cfg(model, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, cfg_scale: float, cfg_channels=None,
                     frame_mask=None) -> torch.Tensor:
    """DiT's and Latte's ``forward_with_cfg`` (their reference outputs are made with it), written over the
    project's guidance: the first half of x is run with labels y (conditional half, then null half), and the
    first ``cfg_channels`` output channels (default: every latent channel; 3 is DiT's published sampler) become
    ``uncond + cfg_scale * (cond - uncond)`` in both halves. Returns (2N, C_out, T, H, W)."""
    from opensora_lite.errors import ConfigError
    from opensora_lite.schedulers.guidance import combine_guided

    if x.shape[0] % 2:
        raise ConfigError(f"forward_with_cfg needs an even batch (conditional + null halves), got {x.shape[0]}")
    half = x[: len(x) // 2]  # (N, C, T, H, W)
    out = model(torch.cat([half, half], dim=0), t, y, frame_mask)  # (2N, C_out, T, H, W)
    return combine_guided(out, model.in_channels if cfg_channels is None else cfg_channels, cfg_scale)


@pytest.fixture(scope="module")
def tool(request):
    """The command module named by the test module's ``TOOL`` (``"generate"`` is ``tools/generate.py``)."""
    from helpers import load_tool

    return load_tool(request.module.TOOL)


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
