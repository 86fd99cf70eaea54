"""Channels-last vs contiguous memory layout for the video VAE's convolutions (decode, fp32).

Archived: a negative result (no gain on the 2-core CPU, not kept; benchmarks/README.md).

    python benchmarks/archive/bench_vae_layout.py            # 256x256, SDXL-config 2-D VAE + temporal VAE (minutes)
    python benchmarks/archive/bench_vae_layout.py --quick    # 64x64 smoke run

``configs/vae/opensora_v1_2.py`` with random weights. Two decodes, each timed with its module's weights
in the default (contiguous) layout and converted in place to ``torch.channels_last`` (2-D VAE, Conv2d)
or ``torch.channels_last_3d`` (temporal VAE, Conv3d), alternating A B, B A in one process: the 2-D
VAE's decoder on one micro-batch (4 frames), and the temporal VAE's decoder on one 17-frame chunk.
Also saved: the largest difference between the two layouts' outputs (they compute the same function).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from benchmarks.bench_vae import build_speed_vae  # noqa: E402
from benchmarks.common import (  # noqa: E402
    fmt_table,
    machine_info,
    paired_ratio,
    save_json,
    set_quiet,
    time_alternating,
)

HERE = os.path.dirname(os.path.abspath(__file__))
LAYOUTS = {"2d": torch.channels_last, "temporal": torch.channels_last_3d}


def decoders(vae, size: int) -> dict:
    """name -> (module whose layout is switched, no-argument decode call)."""
    latent = size // 8
    z2d = torch.randn(4, 4, latent, latent)  # one micro-batch of 4 frames' 2-D latents
    zt = torch.randn(1, 4, 5, latent, latent)  # one 17-frame chunk's temporal latents
    spatial, temporal = vae.spatial_vae.module, vae.temporal_vae
    return {"2d": (spatial, lambda: spatial.decode(z2d).sample),
            "temporal": (temporal, lambda: temporal.decode(zt, num_frames=17))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--out", help="JSON path (default benchmarks/archive/results/bench_vae_layout[_quick].json)")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.repeats = 64, 2
    set_quiet(not args.quick)
    info = machine_info()
    vae = build_speed_vae()
    rows = []
    with torch.no_grad():
        for name, (module, decode) in decoders(vae, args.size).items():
            print(f"== {name} decode at {args.size}x{args.size}")
            module.to(memory_format=torch.contiguous_format)
            reference = decode()

            def in_layout(layout, module=module, decode=decode):
                def call():
                    module.to(memory_format=layout)  # in place, a no-op when already in this layout
                    return decode()
                return call
            calls = {"contiguous": in_layout(torch.contiguous_format), "channels_last": in_layout(LAYOUTS[name])}
            max_diff = float((calls["channels_last"]() - reference).abs().max())
            timed = time_alternating(calls, args.repeats, warmup=0)
            rows.append(dict(decoder=name, size=args.size, max_abs_diff=max_diff,
                             speedup_paired=paired_ratio(timed["contiguous"]["times_s"],
                                                         timed["channels_last"]["times_s"]),
                             speedup_medians=timed["contiguous"]["median_s"] / timed["channels_last"]["median_s"],
                             **timed))
            module.to(memory_format=torch.contiguous_format)
    print(fmt_table(["decoder", "size", "contiguous s", "channels-last s", "channels-last speedup (paired)",
                     "max |diff|"],
                    [[r["decoder"], r["size"], r["contiguous"]["median_s"], r["channels_last"]["median_s"],
                      r["speedup_paired"], r["max_abs_diff"]] for r in rows]))
    out = args.out or os.path.join(HERE, "results", "bench_vae_layout" + ("_quick" if args.quick else "") + ".json")
    path = save_json("bench_vae_layout", dict(machine={**info, "load_average_at_end": list(os.getloadavg())},
                                              rows=rows, command="python " + " ".join(sys.argv)), args.quick, out)
    print("saved", path)


if __name__ == "__main__":
    main()
