"""The fused fc1 + tanh-GELU path (models/layers.py) under bf16 autocast: chosen, and equal to Linear + GELU."""
import pytest
import torch

from opensora_lite.models import layers


def test_probe_answers_the_same_under_bf16_autocast(monkeypatch):
    """The probe runs once, at the first MLP call; under autocast it used to compare against a bf16 linear
    and switch the fused path off for the whole process."""
    monkeypatch.setattr(layers, "_FUSED_LINEAR_GELU", None)
    plain = layers._fused_linear_gelu_available()
    monkeypatch.setattr(layers, "_FUSED_LINEAR_GELU", None)
    with torch.autocast("cpu", torch.bfloat16):
        assert layers._fused_linear_gelu_available() == plain


def test_bf16_sampling_mlp_takes_the_fused_path(monkeypatch):
    monkeypatch.setattr(layers, "_FUSED_LINEAR_GELU", None)
    if not layers._fused_linear_gelu_available():
        pytest.skip("this torch has no oneDNN fused linear + GELU")
    monkeypatch.setattr(layers, "_FUSED_LINEAR_GELU", None)  # probed again, first under autocast
    torch.manual_seed(0)
    mlp = layers.Mlp(64, 256).eval()
    x = torch.randn(2, 3, 16, 64)  # (N, T, S, D)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        assert layers._use_fused_linear_gelu(x, mlp.fc1)
        fused = mlp(x)  # (N, T, S, D) bf16
        unfused = mlp.fc2(mlp.act(mlp.fc1(x)))
    assert fused.dtype == torch.bfloat16
    torch.testing.assert_close(fused.float(), unfused.float(), atol=0.03, rtol=0.02)  # bf16 rounding
