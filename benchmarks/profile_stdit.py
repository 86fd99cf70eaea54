"""Where STDiT's forward spends its time, by operator (torch.profiler, self CPU time), at Latte-S size.

    python benchmarks/profile_stdit.py                  # bf16 autocast and fp32, 3 profiled calls each
    python benchmarks/profile_stdit.py --dtypes bf16 --calls 1    # smoke
    python benchmarks/profile_stdit.py --threads 1      # on a shared machine: no waits on preempted threads

The model is bench_stdit.py's default (hidden 384, depth 12, 6 heads, patch 2, latent 4x32x32, batch 2),
random weights, no gradient (sampling). After two warm-up calls, ``--calls`` forwards run under the
profiler; the table lists each operator's share of the self CPU time and its time per forward. Shares
are what to compare: on a shared machine absolute times move with the load.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from benchmarks.common import fmt_table, machine_info, save_json  # noqa: E402

HIDDEN, DEPTH, HEADS, PATCH, FRAMES, SIZE, BATCH = 384, 12, 6, 2, 4, 32, 2  # bench_stdit.py's defaults
IN_CHANNELS, NUM_CLASSES = 4, 1000
TOP = 15  # operators listed


def build():
    from opensora_lite.models import STDiT

    torch.manual_seed(0)
    model = STDiT(input_size=(FRAMES, SIZE, SIZE), patch_size=(1, PATCH, PATCH), in_channels=IN_CHANNELS,
                  hidden_size=HIDDEN, depth=DEPTH, num_heads=HEADS, num_classes=NUM_CLASSES, learn_sigma=True)
    x = torch.randn(BATCH, IN_CHANNELS, FRAMES, SIZE, SIZE)
    t = torch.randint(0, 1000, (BATCH,)).float()
    y = torch.randint(0, NUM_CLASSES, (BATCH,))
    return model.eval(), (x, t, y)


def profile_forward(model, inputs, dtype: str, calls: int) -> dict:
    x, t, y = inputs

    def forward():
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=dtype == "bf16"):
            return model(x, t, y=y)

    for _ in range(2):
        forward()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            forward()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total_us = sum(e.self_cpu_time_total for e in events)
    ops = sorted(events, key=lambda e: -e.self_cpu_time_total)
    rows = [dict(op=e.key, share=e.self_cpu_time_total / total_us, ms_per_forward=e.self_cpu_time_total / 1e3 / calls,
                 calls_per_forward=e.count / calls) for e in ops]
    return dict(dtype=dtype, calls=calls, self_cpu_ms_per_forward=total_us / 1e3 / calls, ops=rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dtypes", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's, = cores)")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info()
    print(json.dumps(info))
    model, inputs = build()
    results = []
    for dtype in args.dtypes:
        r = profile_forward(model, inputs, dtype, args.calls)
        results.append(r)
        print(f"\n{dtype}: {r['self_cpu_ms_per_forward']:.0f} ms self CPU per forward")
        print(fmt_table(["op", "share", "ms / forward", "calls / forward"],
                        [[o["op"], f"{o['share']:.1%}", o["ms_per_forward"], o["calls_per_forward"]]
                         for o in r["ops"][:TOP]]))
    path = save_json("profile_stdit", dict(machine={**info, "load_average_at_end": list(os.getloadavg())},
                                           results=results, command="python " + " ".join(sys.argv)),
                     quick=args.calls < 3, out=args.out)
    print("saved", path)


if __name__ == "__main__":
    main()
