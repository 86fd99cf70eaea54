"""Attention kernels for STDiT's shapes: PyTorch SDPA vs plain matmul-softmax-matmul, forward and fwd+bwd.

    python benchmarks/bench_attention.py [--quick]

STDiT's temporal attention runs N*S sequences of only T tokens (T = 4 latent frames at the default
config): its FLOPs are negligible and its cost is per-sequence overhead, so the best kernel may differ
from the spatial one (N*T sequences of S = 256 tokens). q/k/v are the strided views STDiT feeds the
kernel (slices of one fused qkv tensor). Interleaved timings, median of repeats.
"""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.common import fmt_table, machine_info, save_json, set_quiet, time_alternating  # noqa: E402


def manual(q, k, v):
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1 / math.sqrt(q.shape[-1]))  # (B, H, L, L)
    return torch.matmul(scores.softmax(dim=-1), v)  # (B, H, L, Dh)


KERNELS = {"sdpa": F.scaled_dot_product_attention, "matmul": manual}


def views(qkv, heads):
    """(A, B, L, 3D) -> q, k, v (A*B, H, L, Dh) strided views, as in STDiT's Attention."""
    A, B, L, D3 = qkv.shape
    Dh = D3 // 3 // heads
    return qkv.view(A, B, L, 3, heads, Dh).permute(3, 0, 1, 4, 2, 5).reshape(3, A * B, heads, L, Dh).unbind(0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--tokens-per-frame", type=int, default=256)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--frames", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.quick:
        args.hidden, args.heads, args.tokens_per_frame, args.frames, args.repeats = 64, 4, 16, [4], 2
    set_quiet(not args.quick)
    info = machine_info()
    print(json.dumps(info))
    rows = []
    N, S, D = args.batch, args.tokens_per_frame, args.hidden
    for T in args.frames:
        for axis, (A, B, L) in (("time", (N, S, T)), ("space", (N, T, S))):
            base = torch.randn(A, B, L, 3 * D, requires_grad=True)
            grad = torch.randn(A * B, args.heads, L, D // args.heads)
            for mode in ("fwd", "fwd+bwd"):
                def make(kernel, mode=mode, base=base, grad=grad):
                    def call():
                        if mode == "fwd":
                            with torch.no_grad():
                                return kernel(*views(base, args.heads))
                        base.grad = None
                        kernel(*views(base, args.heads)).backward(grad)
                    return call
                print(f"== {axis} T={T} {mode}")
                timed = time_alternating({name: make(k) for name, k in KERNELS.items()}, args.repeats)
                for name, r in timed.items():
                    rows.append(dict(axis=axis, frames=T, seq_len=L, sequences=A * B, mode=mode, kernel=name, **r))
    print(fmt_table(["axis", "T", "seq len", "sequences", "mode", "kernel", "median ms"],
                    [[r["axis"], r["frames"], r["seq_len"], r["sequences"], r["mode"], r["kernel"], 1e3 * r["median_s"]]
                     for r in rows]))
    print("saved", save_json("bench_attention", dict(machine={**info, "load_average_at_end": list(os.getloadavg())},
                                                     args=vars(args), results=rows,
                                                     command="python " + " ".join(sys.argv)), args.quick, args.out))


if __name__ == "__main__":
    main()
