"""The CPU speed paths (models/cpu_speed.py): each is taken only where it works, and equals its plain fallback.

Nothing here assumes the host's ISA: the fused path's probe is asked, and both branches are forced on any
host. The AVX2-only host is simulated in a subprocess (oneDNN and ATen capped at AVX2).
"""
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from opensora_lite.data.video_read import read_video
from opensora_lite.eval.shapes_judge import judge_clip
from opensora_lite.models import cpu_speed
from opensora_lite.models.layers import Mlp

from helpers import ROOT

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
AVX2_ONLY = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}  # a CPU without AVX-512


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch):
    """Each test probes (or forces) the fused path's answers anew."""
    monkeypatch.setattr(cpu_speed, "_fused_gelu_works", {})
    monkeypatch.setattr(cpu_speed, "_enabled", True)


@pytest.fixture
def fused_calls(monkeypatch):
    """Counts the calls that reach oneDNN's fused op (the probe's own calls are made first, uncounted)."""
    for dtype in DTYPES.values():
        cpu_speed.fused_gelu_works(dtype)
    calls = []
    real = cpu_speed._fused_linear_gelu

    def counting(*args):
        calls.append(args[0].dtype)
        return real(*args)

    monkeypatch.setattr(cpu_speed, "_fused_linear_gelu", counting)
    return calls


def mlp_outputs(dtype: torch.dtype, mlp: Mlp | None = None):
    """(the MLP's output, Linear + GELU written out) for one input under no_grad, in ``dtype``."""
    torch.manual_seed(0)
    mlp = mlp or Mlp(64, 256).eval()
    x = torch.randn(2, 3, 16, 64)  # (N, T, S, D)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=dtype == torch.bfloat16):
        return mlp(x), mlp.fc2(mlp.act(mlp.fc1(x)))


def test_probe_answers_the_same_under_bf16_autocast():
    """Under autocast the fp32 reference would be a bf16 linear: the probe must switch autocast off."""
    plain = {dtype: cpu_speed.fused_gelu_works(dtype) for dtype in DTYPES.values()}
    cpu_speed._fused_gelu_works.clear()
    with torch.autocast("cpu", torch.bfloat16):
        assert {dtype: cpu_speed.fused_gelu_works(dtype) for dtype in DTYPES.values()} == plain


@pytest.mark.parametrize("name", DTYPES)
def test_the_fused_path_is_taken_exactly_where_the_probe_says_it_works(name, fused_calls):
    dtype = DTYPES[name]
    out, reference = mlp_outputs(dtype)
    assert fused_calls == ([dtype] if cpu_speed.fused_gelu_works(dtype) else [])
    assert out.dtype == dtype
    tolerance = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=0.03, rtol=0.02)  # bf16 rounding
    torch.testing.assert_close(out.float(), reference.float(), **tolerance)


@pytest.mark.parametrize("name", DTYPES)
def test_a_probe_that_says_no_gives_the_plain_path_and_the_same_result(name, fused_calls):
    dtype = DTYPES[name]
    cpu_speed._fused_gelu_works[dtype] = False  # as on a CPU where the op fails or disagrees
    out, reference = mlp_outputs(dtype)
    assert fused_calls == []
    torch.testing.assert_close(out, reference, atol=0, rtol=0)


@pytest.mark.parametrize("name", DTYPES)
def test_a_fused_call_that_fails_falls_back_once_and_is_remembered(name, monkeypatch):
    """What an AVX2-only CPU did to bf16: the op exists, then oneDNN has no primitive for the dtype."""
    dtype = DTYPES[name]
    cpu_speed._fused_gelu_works[dtype] = True
    calls = []

    def no_primitive(*args):
        calls.append(1)
        raise RuntimeError("could not create a primitive descriptor for the inner product forward propagation")

    monkeypatch.setattr(cpu_speed, "_fused_linear_gelu", no_primitive)
    out, reference = mlp_outputs(dtype)
    torch.testing.assert_close(out, reference, atol=0, rtol=0)
    assert cpu_speed._fused_gelu_works[dtype] is False
    mlp_outputs(dtype)
    assert calls == [1]  # the second call went straight to the plain path


def test_switched_off_everything_is_plain_pytorch(fused_calls):
    cpu_speed.set_enabled(False)
    out, reference = mlp_outputs(torch.float32)
    assert fused_calls == []
    torch.testing.assert_close(out, reference, atol=0, rtol=0)
    q, k, v = torch.randn(3, 6, 2, 4, 8).unbind(0)  # (B, H, L, Dh) each, L short enough for the matmul path
    torch.testing.assert_close(cpu_speed.attention(q, k, v), F.scaled_dot_product_attention(q, k, v),
                               atol=0, rtol=0)


@pytest.mark.parametrize("length", [4, cpu_speed.MATMUL_ATTENTION_MAX_LEN, 16])
def test_matmul_attention_equals_sdpa(length):
    q, k, v = torch.randn(3, 6, 2, length, 8).unbind(0)  # (B, H, L, Dh) each
    torch.testing.assert_close(cpu_speed.attention(q, k, v), F.scaled_dot_product_attention(q, k, v),
                               atol=1e-6, rtol=1e-5)


def test_an_adapted_fc1_is_never_skipped(fused_calls):
    """A LoRA adapter (peft) on fc1 is not a plain nn.Linear: its update must reach the output. The fused
    path used to read fc1.weight directly and dropped it (0.038 off under no_grad)."""
    peft = pytest.importorskip("peft", reason="peft is part of the [train] extra that make test installs")
    torch.manual_seed(0)
    mlp = peft.inject_adapter_in_model(peft.LoraConfig(target_modules=["fc1"], r=4, init_lora_weights=False),
                                       Mlp(64, 256)).eval()
    out, reference = mlp_outputs(torch.float32, mlp)
    assert fused_calls == []
    torch.testing.assert_close(out, reference, atol=0, rtol=0)
    base_only = mlp.fc2(mlp.act(mlp.fc1.base_layer(torch.randn(2, 3, 16, 64))))
    assert not torch.allclose(out, base_only)  # the adapter really changes the output


def test_a_hooked_fc1_keeps_its_hook(fused_calls):
    mlp = Mlp(64, 256).eval()
    mlp.fc1.register_forward_hook(lambda module, args, output: output * 0.5)
    out, reference = mlp_outputs(torch.float32, mlp)
    assert fused_calls == []
    torch.testing.assert_close(out, reference, atol=0, rtol=0)


def test_training_keeps_linear_and_gelu(fused_calls):
    mlp = Mlp(64, 256)
    x = torch.randn(2, 3, 16, 64)
    loss = mlp(x).square().mean()
    loss.backward()
    assert fused_calls == [] and mlp.fc1.weight.grad is not None


@pytest.mark.slow
def test_bf16_sampling_on_a_cpu_without_avx512(tmp_path):
    """The shipped model's bf16 sample where oneDNN has no bf16 kernels (issue #23): the fused op's bf16 path ran
    and crashed. oneDNN is capped at AVX2 in a subprocess; ATen keeps the host's ISA, so on an AVX-512 host the
    fused path is still probed (fp32 passes, bf16 fails) and the crash path of the issue is exercised."""
    probe = ("import torch; from opensora_lite.models import cpu_speed; print(torch.backends.cpu.get_cpu_capability(),"
             " cpu_speed.fused_gelu_works(torch.float32), cpu_speed.fused_gelu_works(torch.bfloat16))")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    answers = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    capability, fp32, bf16 = answers.stdout.split()
    assert (fp32, bf16) == (str(capability.startswith("AVX512")), "False"), answers.stdout
    cmd = [sys.executable, str(ROOT / "tools" / "generate.py"), "configs/shapes/stdit_shapes.py", "--class", "5",
           "--dtype", "bf16", "--save-dir", str(tmp_path), "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    verdict = judge_clip(read_video(tmp_path / "5-0.mp4", num_frames=16))
    assert (verdict["shape"], verdict["direction"]) == ("square", "left"), verdict


def test_the_fused_path_is_off_without_avx512():
    """It pays only with AVX-512 (module docstring): on an AVX2 CPU (ATen and oneDNN capped) it is never used."""
    probe = ("import torch; from opensora_lite.models import cpu_speed; "
             "print(cpu_speed.fused_gelu_works(torch.float32), cpu_speed.fused_gelu_works(torch.bfloat16))")
    answers = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **AVX2_ONLY}, capture_output=True,
                             text=True, check=True)
    assert answers.stdout.split() == ["False", "False"], answers.stdout
