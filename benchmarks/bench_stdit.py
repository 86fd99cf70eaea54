"""STDiT vs diffusers' LatteTransformer3DModel: forward and training-step time, MFU, scaling in frames.

    python benchmarks/bench_stdit.py            # full run (~15-25 min on 2 CPU cores)
    python benchmarks/bench_stdit.py --quick    # smoke run (tiny config, seconds)

Both models get the same hidden size, depth, heads, patch, MLP ratio (4, tanh GELU), qkv/out biases and
token count; each layer is one spatial + one temporal transformer block. Latte is class-conditional here
the way its pipeline can be: adaLN-single on the timestep, no cross-attention (``cross_attention_dim=None``),
and its caption projection fed a dummy (N, 1, D) "class token" (a 1-token MLP: negligible). Its learned
temporal position table is sized to the clip (``video_length`` = latent frames).

* fwd: ``model.eval()`` under ``torch.no_grad()``; train: ``model.train()``, forward, mean-square loss of
  the output, backward (no optimizer step); bf16 = ``torch.autocast("cpu", torch.bfloat16)``.
* FLOPs (model FLOPs, the same for both): 2 x (per-token matmul parameters) x tokens + attention
  (QK^T and AV: 4 L^2 D per sequence, spatial and temporal); x3 for a training step.
* MFU: FLOP/s over the GEMM peak of the same dtype, timed as one more contender interleaved with the models,
  taken round by round (the median over rounds of model FLOP/s / GEMM FLOP/s of the same round);
  ``mfu_vs_best_peak`` divides the median time's FLOP/s by the best GEMM of the whole run instead, a
  stricter bound on a machine whose speed drifts (see benchmarks/common.py). "x Latte" is also paired
  round by round (``speedup_median_of_medians`` keeps the ratio of the medians).
* Scaling table: per frame count and mode, peak memory first, one subprocess per point (see
  common.measure_in_child), after a warm-up call on a 1-frame clip (so one-time library loading is not
  counted); then the contenders whose child fitted in RAM are timed, interleaved. A point that does not
  fit is reported with its child's error instead of killing the run. The JSON is written after the
  default-config table and after every scaling point.
* ``matmuls``: STDiT's matmuls alone (see MatmulsOnly), the ceiling of an implementation at this config.
"""
import argparse
import gc
import json
import os
import statistics
import sys
from contextlib import nullcontext

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.common import (  # noqa: E402
    fmt_table,
    gemm_block,
    machine_info,
    measure_in_child,
    measure_peaks,
    paired_ratio,
    run_with_peak_memory,
    save_json,
    set_quiet,
    time_alternating,
    time_call,
)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
MLP_RATIO = 4
IN_CHANNELS = 4
NUM_CLASSES = 1000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny config, 2 repeats: a smoke run")
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--depth", type=int, default=12)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--patch", type=int, default=2)
    p.add_argument("--frames", type=int, default=4, help="latent frames")
    p.add_argument("--size", type=int, default=32, help="latent height = width")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--repeats", type=int, default=9, help="timed rounds per contender (fp32)")
    p.add_argument("--gemm-seconds", type=float, default=1.0,
                   help="length of the interleaved GEMM block (about one model call: a short block samples "
                        "the machine's drifting speed at a point, a long call averages it)")
    p.add_argument("--bf16-repeats", type=int, default=3, help="timed rounds per contender in bf16")
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    p.add_argument("--modes", nargs="+", default=["fwd", "train"], choices=["fwd", "train"])
    p.add_argument("--models", nargs="+", default=["stdit", "latte"],
                   help="contenders: stdit, latte, stdit-v0 (the pre-optimisation code), stdit-compile, "
                        "stdit-ckpt (gradient checkpointing), matmuls (STDiT's matmuls alone: a ceiling)")
    p.add_argument("--scaling-frames", type=int, nargs="*", default=[4, 8, 16, 32],
                   help="latent frame counts of the scaling table (empty: skip it)")
    p.add_argument("--scaling-dtype", default="fp32", choices=list(DTYPES))
    p.add_argument("--scaling-models", nargs="+", default=["stdit", "latte"],
                   help="contenders of the scaling table (stdit-ckpt: training only)")
    p.add_argument("--scaling-repeats", type=int, default=3)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's, = cores)")
    p.add_argument("--out", help="JSON path (default benchmarks/results/bench_stdit[_quick].json)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.hidden, args.depth, args.heads, args.size, args.repeats, args.bf16_repeats = 64, 2, 4, 16, 2, 2
        args.scaling_frames = [2, 4] if args.scaling_frames else []
        args.scaling_repeats, args.gemm_seconds = 1, 0.05
    return args


#################################################################################
#                                    Models                                     #
#################################################################################


def build_stdit(args, frames: int, grad_checkpointing: bool = False):
    from opensora_lite.models import STDiT

    torch.manual_seed(0)
    return STDiT(input_size=(frames, args.size, args.size), patch_size=(1, args.patch, args.patch),
                 in_channels=IN_CHANNELS, hidden_size=args.hidden, depth=args.depth, num_heads=args.heads,
                 mlp_ratio=MLP_RATIO, num_classes=NUM_CLASSES, learn_sigma=True, grad_checkpointing=grad_checkpointing)


def build_latte(args, frames: int):
    from diffusers import LatteTransformer3DModel

    torch.manual_seed(0)
    return LatteTransformer3DModel(
        num_attention_heads=args.heads, attention_head_dim=args.hidden // args.heads, in_channels=IN_CHANNELS,
        out_channels=2 * IN_CHANNELS, num_layers=args.depth, cross_attention_dim=None, attention_bias=True,
        sample_size=args.size, patch_size=args.patch, activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
        norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=args.hidden,
        video_length=frames,
    )


class LatteClassConditional(torch.nn.Module):
    """Latte behind STDiT's call signature ``(x, t, y)``: y picks a row of a class table fed as a 1-token caption."""

    def __init__(self, latte, hidden: int):
        super().__init__()
        self.latte = latte
        self.class_table = torch.nn.Embedding(NUM_CLASSES, hidden)

    def forward(self, x, t, y):
        caption = self.class_table(y)[:, None]  # (N, 1, D)
        return self.latte(x, timestep=t, encoder_hidden_states=caption, return_dict=False)[0]


class MatmulsOnly:
    """STDiT's matmuls alone: a ceiling for the real model at the same config and token count.

    Per layer, spatial and temporal: the qkv, proj, fc1 and fc2 GEMMs on all tokens, SDPA over each
    frame's patches and matmul-softmax-matmul over the frames; in train mode also each GEMM's two
    backward GEMMs (input and weight gradients) and the attentions' backward kernels. Nothing runs
    between them (no norms, activations, residuals, rearranges, gradient sums), so its time is what a
    forward or a training step would take if every other op were free.
    """

    def __init__(self, args, frames: int):
        D, N, S, H = args.hidden, args.batch, (args.size // args.patch) ** 2, args.heads
        M, Dh = N * frames * S, args.hidden // args.heads
        g = torch.Generator().manual_seed(0)
        dims = ((D, 3 * D), (D, D), (D, MLP_RATIO * D), (MLP_RATIO * D, D))  # qkv, proj, fc1, fc2
        self.gemms = [(torch.randn(M, i, generator=g), torch.randn(o, i, generator=g) * i**-0.5,
                       torch.zeros(o), torch.randn(M, o, generator=g)) for i, o in dims]  # x, W, b, grad of y
        shapes = dict(space=(N * frames, H, S, Dh), time=(N * S, H, frames, Dh))  # (batch, heads, length, Dh)
        self.attention = {axis: [torch.randn(shape, generator=g).requires_grad_() for _ in range(4)]
                          for axis, shape in shapes.items()}  # q, k, v, grad of the output
        self.depth = args.depth

    @staticmethod
    def _attend(axis: str, q, k, v):
        if axis == "space":
            return F.scaled_dot_product_attention(q, k, v)  # (B, H, L, Dh)
        return torch.matmul(torch.matmul(q, k.transpose(-1, -2)).softmax(-1), v)  # (B, H, L, Dh)

    def step(self, train: bool) -> None:
        for _ in range(self.depth):
            for axis, (q, k, v, grad_out) in self.attention.items():
                for inp, weight, bias, grad_y in self.gemms:
                    torch.addmm(bias, inp, weight.t())  # forward (M, out)
                    if train:
                        torch.mm(grad_y, weight)  # input gradient (M, in)
                        torch.mm(grad_y.t(), inp)  # weight gradient (out, in)
                with torch.set_grad_enabled(train):
                    out = self._attend(axis, q, k, v)
                if train:
                    q.grad = k.grad = v.grad = None  # written, not accumulated
                    out.backward(grad_out.detach())


def build(name: str, args, frames: int):
    if name == "stdit":
        return build_stdit(args, frames)
    if name == "stdit-ckpt":
        return build_stdit(args, frames, grad_checkpointing=True)
    if name == "stdit-v0":
        from benchmarks.archive.stdit_v0 import STDiTv0

        return STDiTv0(build_stdit(args, frames))
    if name == "stdit-compile":
        return torch.compile(build_stdit(args, frames))
    if name == "latte":
        return LatteClassConditional(build_latte(args, frames), args.hidden)
    if name == "matmuls":
        return MatmulsOnly(args, frames)
    raise SystemExit(f"unknown model {name!r}")


def inputs(args, frames: int):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, IN_CHANNELS, frames, args.size, args.size, generator=g)
    t = torch.rand(args.batch, generator=g) * 1000
    y = torch.randint(0, NUM_CLASSES, (args.batch,), generator=g)
    return x, t, y


def runs_in(name: str, mode: str) -> bool:
    """Whether contender ``name`` has a ``mode`` call: gradient checkpointing only changes training."""
    return not (name == "stdit-ckpt" and mode == "fwd")


def make_call(model, mode: str, dtype: torch.dtype, x, t, y):
    """A no-argument callable running one forward (no_grad) or one training step of ``model``."""
    autocast = torch.autocast("cpu", dtype=dtype) if dtype != torch.float32 else nullcontext()
    if isinstance(model, MatmulsOnly):
        def call():
            with autocast:
                model.step(train=mode == "train")
    elif mode == "fwd":
        model.eval()

        def call():
            with torch.no_grad(), autocast:
                return model(x, t, y)
    else:
        model.train()

        def call():
            for p in model.parameters():
                p.grad = None
            with autocast:
                out = model(x, t, y)
            out.float().square().mean().backward()
    return call


#################################################################################
#                                     FLOPs                                     #
#################################################################################


def model_flops(args, frames: int, mode: str) -> float:
    """Model FLOPs of one call (see the module docstring); the same for every contender."""
    D, p, N = args.hidden, args.patch, args.batch
    S = (args.size // p) ** 2  # tokens per frame
    tokens = N * frames * S
    per_block = 4 * D * D + 2 * D * MLP_RATIO * D  # qkv + proj + fc1 + fc2 weights
    per_token = 2 * args.depth * per_block + IN_CHANNELS * p * p * D + D * p * p * 2 * IN_CHANNELS
    attention = args.depth * (4 * N * frames * S * S * D + 4 * N * S * frames * frames * D)
    fwd = 2 * per_token * tokens + attention
    return fwd * (3 if mode == "train" else 1)


#################################################################################
#                                     Runs                                      #
#################################################################################


def child_main(args) -> None:
    """One peak-memory point in a fresh process: prints one JSON line."""
    torch.manual_seed(0)
    model = build(args.model, args, args.frames)
    make_call(model, args.mode, DTYPES[args.dtype], *inputs(args, 1))()  # warm-up on 1 frame: lazy imports, kernels
    x, t, y = inputs(args, args.frames)
    call = make_call(model, args.mode, DTYPES[args.dtype], x, t, y)
    gc.collect()
    print(json.dumps(run_with_peak_memory(call)))


def child_args(args, model: str, mode: str, dtype: str, frames: int):
    return ["--model", model, "--mode", mode, "--dtype", dtype, "--frames", str(frames), "--hidden", str(args.hidden),
            "--depth", str(args.depth), "--heads", str(args.heads), "--patch", str(args.patch),
            "--size", str(args.size), "--batch", str(args.batch)] \
        + (["--threads", str(args.threads)] if args.threads else [])


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        return child_main(args)
    set_quiet(not args.quick)
    info = machine_info()
    print(json.dumps(info))
    config = dict(hidden=args.hidden, depth=args.depth, heads=args.heads, patch=args.patch, frames=args.frames,
                  latent_size=args.size, batch=args.batch, mlp_ratio=MLP_RATIO,
                  tokens=args.batch * args.frames * (args.size // args.patch) ** 2)
    print("config", config)
    peaks_before = measure_peaks()
    print("GEMM peak (GFLOP/s): " + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in peaks_before.items()))

    models = {name: build(name, args, args.frames) for name in args.models}
    x, t, y = inputs(args, args.frames)
    results, interleaved_peaks = [], {}
    for dtype in args.dtypes:
        gemm, gemm_flop = gemm_block(DTYPES[dtype], min_seconds=args.gemm_seconds)
        for mode in args.modes:
            print(f"== {mode} {dtype}")
            calls = {name: make_call(m, mode, DTYPES[dtype], x, t, y) for name, m in models.items()
                     if runs_in(name, mode)}
            repeats = args.bf16_repeats if dtype == "bf16" else args.repeats
            first_call_s = {name: time_call(call) for name, call in calls.items()}  # torch.compile compiles here
            print("   first call (s): " + ", ".join(f"{n} {v:.1f}" for n, v in first_call_s.items()))
            timed = time_alternating({**calls, "gemm": gemm}, repeats, warmup=1)
            gemm_times = timed.pop("gemm")["times_s"]
            peak = gemm_flop / statistics.median(gemm_times)
            interleaved_peaks[f"{mode}_{dtype}"] = peak
            print(f"   GEMM peak interleaved with the models: {peak / 1e9:.0f} GFLOP/s")
            for name, r in timed.items():
                # per round: (flops / t_model) / (gemm_flop / t_gemm) = flops * t_gemm / (gemm_flop * t_model)
                mfu = paired_ratio(gemm_times, r["times_s"]) * model_flops(args, args.frames, mode) / gemm_flop
                results.append(dict(model=name, mode=mode, dtype=dtype, peak_flops=peak, mfu=mfu,
                                    first_call_s=first_call_s[name],
                                    gemm_times_s=gemm_times, **r))
    peaks_after = measure_peaks()
    print("GEMM peak after (GFLOP/s): " + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in peaks_after.items()))
    best_peaks = {k: max([peaks_before[k], peaks_after[k]] + [v for m, v in interleaved_peaks.items()
                                                             if m.endswith(k)]) for k in peaks_before}

    for r in results:
        flops = model_flops(args, args.frames, r["mode"])
        latte = next((q for q in results
                      if q["model"] == "latte" and q["mode"] == r["mode"] and q["dtype"] == r["dtype"]), None)
        r["tokens_per_s"] = config["tokens"] / r["median_s"]
        r["gflop"] = flops / 1e9
        r["gflop_per_s"] = flops / r["median_s"] / 1e9
        r["mfu_median_of_medians"] = flops / r["median_s"] / r["peak_flops"]
        r["mfu_vs_best_peak"] = flops / r["median_s"] / best_peaks[r["dtype"]]
        r["mfu_vs_fp32_peak"] = flops / r["median_s"] / interleaved_peaks.get(f"{r['mode']}_fp32", best_peaks["fp32"])
        r["speedup_vs_latte"] = paired_ratio(latte["times_s"], r["times_s"]) if latte else None
        r["speedup_median_of_medians"] = latte["median_s"] / r["median_s"] if latte else None
    header = ["model", "mode", "dtype", "median s", "best s", "tokens/s", "GFLOP/s", "MFU", "MFU (best peak)",
              "x Latte"]
    table = fmt_table(header, [[r["model"], r["mode"], r["dtype"], r["median_s"], r["best_s"], r["tokens_per_s"],
                                r["gflop_per_s"], f"{100 * r['mfu']:.0f}%", f"{100 * r['mfu_vs_best_peak']:.0f}%",
                                "" if r["speedup_vs_latte"] is None else f"{r['speedup_vs_latte']:.2f}"]
                               for r in results])
    print(table)

    def save():
        return save_json("bench_stdit", dict(
            machine={**info, "load_average_at_end": list(os.getloadavg())}, config=config,
            gemm_peak_flops=dict(before=peaks_before, after=peaks_after, interleaved=interleaved_peaks,
                                 best=best_peaks),
            results=results, scaling=scaling, command="python " + " ".join(sys.argv)), args.quick, args.out)

    scaling = []
    save()  # the default-config table is kept even if the scaling table dies
    del models
    gc.collect()
    for frames in args.scaling_frames:
        print(f"== scaling: {frames} latent frames ({args.scaling_dtype})")
        fx, ft, fy = inputs(args, frames)
        for mode in args.modes:
            names = [n for n in args.scaling_models if runs_in(n, mode)]
            # Memory first, one fresh process per point: a point that does not fit in RAM kills only its
            # child (the kernel's OOM killer) and is reported, not timed.
            memory = {}
            for name in names:
                memory[name] = {} if args.no_memory else measure_in_child(
                    os.path.abspath(__file__), child_args(args, name, mode, args.scaling_dtype, frames))
                mem = memory[name]
                print(f"   memory {name} {mode} {frames} frames: "
                      + (f"peak {mem['peak_mib']:.0f} MiB, extra {mem['extra_mib']:.0f} MiB" if "peak_mib" in mem
                         else mem.get("error", "not measured")[-300:]))
            fits = [n for n in names if "error" not in memory[n]]
            built = {name: build(name, args, frames) for name in fits}
            calls = {name: make_call(m, mode, DTYPES[args.scaling_dtype], fx, ft, fy) for name, m in built.items()}
            timed = time_alternating(calls, args.scaling_repeats) if calls else {}
            for name in names:
                row = dict(model=name, mode=mode, dtype=args.scaling_dtype, frames=frames,
                           tokens=args.batch * frames * (args.size // args.patch) ** 2, memory=memory[name])
                if name in timed:
                    row.update(timed[name])
                    row["gflop_per_s"] = model_flops(args, frames, mode) / row["median_s"] / 1e9
                else:
                    row["skipped"] = "its memory child failed (out of memory?), see memory.error"
                scaling.append(row)
            del built, calls
            gc.collect()
            save()
    if scaling:
        header = ["model", "mode", "latent frames", "tokens", "median s", "GFLOP/s", "peak RSS MiB", "extra MiB"]
        print(fmt_table(header, [[r["model"], r["mode"], r["frames"], r["tokens"], r.get("median_s", "failed"),
                                  r.get("gflop_per_s", ""), r["memory"].get("peak_mib", ""),
                                  r["memory"].get("extra_mib", "")] for r in scaling]))
    path = save()
    print("saved", path)


if __name__ == "__main__":
    main()
