"""CPU speed paths of the STDiT blocks, in one place, each with its public-API fallback.

``layers.py`` calls :func:`linear_gelu` and :func:`attention`; with the paths switched off
(:func:`set_enabled`, or ``OPENSORA_LITE_CPU_SPEED=0`` in the environment) they are exactly
``act(linear(x))`` and ``F.scaled_dot_product_attention``. On by default, because each pays on a CPU:

- **Fused fc1 + tanh-GELU.** PyTorch's CPU tanh-GELU kernel costs as much as a third of the fc1 matmul in
  front of it; oneDNN applies the same function as a post-op of the matmul, nearly for free (equal to 5e-7).
  It pays only where oneDNN's matmul is as fast as the one it replaces, on CPUs with AVX-512: there a
  2048x384 -> 1536 fc1 + GELU took 13.0 ms fused against 15.7 ms unfused; with oneDNN, ATen and MKL capped
  at AVX2 the fused call's matmul is slower than MKL's and the whole fp32 forward was 0.94x Latte fused
  against 1.02x unfused (``benchmarks/README.md``, issue #23), so without AVX-512 it is not used.
  It is the private op ``torch.ops.mkldnn._linear_pointwise``, so it is used only where it was seen to work:
  probed once per dtype (bf16 needs AVX-512 or AMX in oneDNN; on an AVX2-only CPU its bf16 inner product
  does not exist), and a failure at call time switches that dtype off for the process. It has no autograd,
  so it runs only when no gradient is recorded (sampling), never under ``torch.compile`` (inductor fuses
  its own way), and only on a plain ``nn.Linear``: a wrapped or adapted layer (a peft LoRA adapter, a
  parametrization, a forward hook) goes through its own forward.
- **Matmul attention for short sequences.** CPU SDPA pays a fixed cost per (sequence, head): for the
  temporal attention over a few latent frames (N*S sequences of T tokens), plain matmul-softmax-matmul is
  faster up to :data:`MATMUL_ATTENTION_MAX_LEN` (``benchmarks/bench_attention.py``: at T = 4, 1.7x forward
  and 1.5x forward+backward; at T = 16 they tie). Spatial attention stays with SDPA.
"""
import os

import torch
import torch.nn.functional as F
from torch import nn

MATMUL_ATTENTION_MAX_LEN = 8

_enabled = os.environ.get("OPENSORA_LITE_CPU_SPEED", "1") != "0"
_fused_gelu_works: dict[torch.dtype, bool] = {}  # dtype -> probed (or failed) answer, for this process


def set_enabled(flag: bool) -> None:
    """Switch every CPU speed path on or off for this process (off: plain PyTorch ops only)."""
    global _enabled
    _enabled = bool(flag)


#################################################################################
#                                   Attention                                   #
#################################################################################


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(Dh)) v for q, k, v (B, H, L, Dh) -> (B, H, L, Dh)."""
    if _enabled and q.device.type == "cpu" and q.shape[-2] <= MATMUL_ATTENTION_MAX_LEN:
        scores = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (B, H, L, L)
        return torch.matmul(scores.softmax(dim=-1), v)  # (B, H, L, Dh)
    return F.scaled_dot_product_attention(q, k, v)  # (B, H, L, Dh)


#################################################################################
#                           Fused linear + tanh-GELU                            #
#################################################################################


def linear_gelu(x: torch.Tensor, linear: nn.Module, act: nn.Module) -> torch.Tensor:
    """``act(linear(x))`` where act is tanh-GELU: fused into one oneDNN call where that works, else as written."""
    dtype = _compute_dtype(x, linear)
    if _fusable(x, linear, act, dtype):
        try:
            return _fused_linear_gelu(x.to(dtype), *_weights_in(linear, dtype))
        except RuntimeError:  # oneDNN has no kernel for this dtype on this CPU after all
            _fused_gelu_works[dtype] = False
    return act(linear(x))


def fused_gelu_works(dtype: torch.dtype) -> bool:
    """Whether oneDNN's fused linear + tanh-GELU pays here (an AVX-512 CPU), runs in ``dtype`` and agrees with
    Linear + GELU. Answered once per dtype."""
    if dtype not in _fused_gelu_works:
        # AVX2 and older: oneDNN's matmul is slower than MKL's (module docstring), so the op is not even tried
        pays = torch.backends.cpu.get_cpu_capability().startswith("AVX512")
        _fused_gelu_works[dtype] = pays and _agrees_with_linear_gelu(dtype)
    return _fused_gelu_works[dtype]


def _agrees_with_linear_gelu(dtype: torch.dtype) -> bool:
    """Run the fused op once on a small input, with autocast off (under bf16 autocast the fp32 reference would
    itself be bf16), and compare it with Linear + GELU."""
    g = torch.Generator().manual_seed(0)
    x, w, b = (t.to(dtype) for t in (torch.randn(2, 8, generator=g), torch.randn(4, 8, generator=g),
                                     torch.randn(4, generator=g)))
    try:
        with torch.autocast("cpu", enabled=False):
            fused = _fused_linear_gelu(x, w, b).float()
            reference = F.gelu(F.linear(x.float(), w.float(), b.float()), approximate="tanh")
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    tolerance = 1e-5 if dtype == torch.float32 else 5e-2  # bf16 rounds to 8 mantissa bits
    return bool(torch.allclose(fused, reference, atol=tolerance, rtol=tolerance))


def _fused_linear_gelu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], "tanh")


def _compute_dtype(x: torch.Tensor, linear: nn.Module) -> torch.dtype:
    """The dtype the matmul runs in: CPU autocast's, else the promotion of input and weight."""
    if torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu")
    weight = getattr(linear, "weight", None)
    return x.dtype if weight is None else torch.promote_types(x.dtype, weight.dtype)


def _fusable(x: torch.Tensor, linear: nn.Module, act: nn.Module, dtype: torch.dtype) -> bool:
    plain_layers = (type(linear) is nn.Linear and not linear._forward_hooks and not linear._forward_pre_hooks
                    and isinstance(act, nn.GELU) and act.approximate == "tanh")
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in linear.parameters()))
    return (_enabled and plain_layers and not needs_grad and x.device.type == "cpu"
            and dtype in (torch.float32, torch.bfloat16) and not torch.compiler.is_compiling()
            and fused_gelu_works(dtype))


def _weights_in(linear: nn.Linear, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The layer's weight and bias in ``dtype``; a cast copy is kept while the weight is unchanged (sampling)."""
    weight, bias = linear.weight, linear.bias
    if weight.dtype == dtype:
        return weight, bias
    key = (weight.data_ptr(), weight._version, dtype)
    cached = getattr(linear, "_cpu_speed_weights", None)
    if cached is None or cached[0] != key:
        cached = (key, weight.detach().to(dtype), None if bias is None else bias.detach().to(dtype))
        linear._cpu_speed_weights = cached
    return cached[1], cached[2]
