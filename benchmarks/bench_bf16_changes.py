"""Paired, alternated measurement of each bf16 speed change of STDiT's forward (issue #17, target 1).

    python benchmarks/bench_bf16_changes.py                 # Latte-S size (bench_stdit.py's defaults), 9 rounds
    python benchmarks/bench_bf16_changes.py --quick         # 2 rounds, no waiting for a quiet machine (smoke)

Every kept change has a "before" contender here: the same model and inputs with that one change undone
(a context manager restores the old behaviour around the call). Contenders and a bf16 GEMM block
alternate round by round in one process (benchmarks/common.py ``time_alternating``); per round the script
takes the ratio before / current (paired: both calls of a round see the same machine) and the forward's
MFU against the GEMM of the same round (model FLOPs as bench_stdit.py counts them).

Changes:

* ``gelu-probe``: the fused fc1 + tanh-GELU oneDNN call used to be probed with the first MLP call's
  autocast on; under bf16 autocast the fp32 reference disagreed (bf16 F.linear) and the probe turned the
  fused path off for the whole process, so bf16 sampling ran PyTorch's tanh-GELU kernel (the issue's
  28% ``aten::gelu``). Before = the fused path off.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import bench_stdit, common  # noqa: E402


@contextlib.contextmanager
def unfused_gelu():
    """fc1 and tanh-GELU as two calls (what bf16 runs got before the probe ran with autocast off)."""
    import torch

    from opensora_lite.models import cpu_speed

    kept = dict(cpu_speed._fused_gelu_works)
    cpu_speed._fused_gelu_works.update({torch.float32: False, torch.bfloat16: False})
    try:
        yield
    finally:
        cpu_speed._fused_gelu_works.clear()
        cpu_speed._fused_gelu_works.update(kept)


BEFORE = {"gelu-probe": unfused_gelu}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--changes", nargs="+", default=list(BEFORE), choices=list(BEFORE))
    p.add_argument("--dtype", default="bf16", choices=list(bench_stdit.DTYPES))
    p.add_argument("--out")
    args = p.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    common.set_quiet(not args.quick)
    size = bench_stdit.parse_args([])  # Latte-S: hidden 384, depth 12, 6 heads, latent 4x32x32, batch 2
    info = common.machine_info()
    print(json.dumps(info))
    dtype = bench_stdit.DTYPES[args.dtype]
    model = bench_stdit.build_stdit(size, size.frames)
    x, t, y = bench_stdit.inputs(size, size.frames)
    forward = bench_stdit.make_call(model, "fwd", dtype, x, t, y)
    flops = bench_stdit.model_flops(size, size.frames, "fwd")

    def undone(change):
        def call():
            with BEFORE[change]():
                forward()
        return call

    gemm, gemm_flops = common.gemm_block(dtype)
    contenders = {"current": forward, **{f"before {c}": undone(c) for c in args.changes}, "gemm": gemm}
    times = common.time_alternating(contenders, repeats, warmup=1)
    gemm_rate = [gemm_flops / s for s in times["gemm"]["times_s"]]  # FLOP/s per round
    rows, results = [], {}
    for name in contenders:
        if name == "gemm":
            continue
        mfu = statistics.median(flops / s / g for s, g in zip(times[name]["times_s"], gemm_rate))
        results[name] = dict(**times[name], mfu_paired=mfu)
        speedup = "" if name == "current" else common.paired_ratio(times[name]["times_s"], times["current"]["times_s"])
        results[name]["before_over_current_paired"] = speedup or None
        rows.append([name, times[name]["median_s"], f"{mfu:.0%}", speedup])
    header = ["contender", "median s", f"MFU ({args.dtype} GEMM of the round)", "before / current (paired)"]
    print(common.fmt_table(header, rows))
    print(f"{args.dtype} GEMM: median {statistics.median(gemm_rate) / 1e9:.0f} GFLOP/s")
    path = common.save_json(f"bench_bf16_changes_{args.dtype}", dict(
        machine={**info, "load_average_at_end": list(os.getloadavg())}, size=vars(size), model_flops=flops,
        gemm=dict(**times["gemm"], gflops_per_round=[g / 1e9 for g in gemm_rate]), results=results,
        command="python " + " ".join(sys.argv)), args.quick, args.out)
    print("saved", path)


if __name__ == "__main__":
    main()
