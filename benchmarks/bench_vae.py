"""Video VAE pipeline (Open-Sora v1.2: SDXL 2-D VAE + temporal VAE): encode/decode speed, memory, bf16 error.

    python benchmarks/bench_vae.py            # full run (256x256, 16 and 64 frames; long on 2 CPU cores)
    python benchmarks/bench_vae.py --quick    # smoke run (64x64, 4 frames)

* Speed: ``configs/vae/opensora_v1_2.py`` with random weights (speed does not depend on them), one
  clip (N = 1) of random frames in [-1, 1]; encode = ``vae.encode`` (posterior means), decode =
  ``vae.decode`` of the latents. fp32 and bf16 (``torch.autocast("cpu", torch.bfloat16)``) run
  interleaved in one process; frames/s = clip frames / median seconds. Peak memory: one subprocess per
  point (see benchmarks/common.py), measured on the second call (the first, on 4 frames, warms up).
* bf16 error: the shipped shapes VAE (``configs/shapes/stdit_shapes.py``'s ``vae`` with
  ``weights/shapes/vae.safetensors``) on held-out clips of ``data/shapes/val.csv`` (made by
  tools/make_shapes.py): PSNR of the bf16 decode against the fp32 decode of the same fp32 latents, and
  of each decode against the input clip (reconstruction PSNR), on pixels in [0, 1].
"""
import argparse
import json
import os
import sys
from contextlib import nullcontext

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.common import (  # noqa: E402
    ROOT,
    fmt_table,
    machine_info,
    measure_in_child,
    run_with_peak_memory,
    save_json,
    set_quiet,
    time_alternating,
)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
SPEED_CONFIG = "configs/vae/opensora_v1_2.py"
SHAPES_CONFIG = "configs/shapes/stdit_shapes.py"
SHAPES_VAE = "weights/shapes/vae.safetensors"
SHAPES_VAL = "data/shapes/val.csv"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="64x64, 4 frames, 1 repeat: a smoke run")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--frames", type=int, nargs="+", default=[16, 64])
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    p.add_argument("--ops", nargs="+", default=["encode", "decode"], choices=["encode", "decode"])
    p.add_argument("--layouts", nargs="+", default=["channels_last"], choices=["channels_last", "nchw"],
                   help="2-D VAE activation layouts to alternate (nchw: AutoencoderKL.channels_last off)")
    p.add_argument("--repeats", type=int, default=2, help="timed rounds per point (1 for clips over 32 frames)")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--memory-frames", type=int, nargs="*", help="clip lengths measured for memory (default: all)")
    p.add_argument("--psnr-clips", type=int, default=24, help="held-out shapes clips for the bf16 PSNR (0: skip)")
    p.add_argument("--vae-ckpt", default=SHAPES_VAE)
    p.add_argument("--threads", type=int)
    p.add_argument("--out")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--op", help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_frames is None:
        args.memory_frames = args.frames
    if args.quick:
        args.size, args.repeats, args.psnr_clips = 64, 1, min(args.psnr_clips, 4)
        args.frames = args.frames if args.child else [4]
        args.memory_frames = args.frames
    return args


def build_speed_vae():
    from opensora_lite.config import load_config
    from opensora_lite.registry import MODELS, build_module

    torch.manual_seed(0)
    cfg = load_config(str(ROOT / SPEED_CONFIG))
    return build_module(cfg.vae, MODELS, where=SPEED_CONFIG).eval()


def clip(frames: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, frames, size, size, generator=g) * 2 - 1


def make_call(vae, op: str, dtype, x, z, frames: int, layout: str = "channels_last"):
    autocast = torch.autocast("cpu", dtype=dtype) if dtype != torch.float32 else nullcontext()

    def call():
        vae.spatial_vae.module.channels_last = layout == "channels_last"
        with torch.no_grad(), autocast:
            return vae.encode(x) if op == "encode" else vae.decode(z, num_frames=frames)
    return call


def contender(dtype: str, layout: str) -> str:
    return dtype if layout == "channels_last" else f"{dtype}-{layout}"


def child_main(args):
    vae = build_speed_vae()
    frames = args.frames[0]
    x = clip(frames, args.size)
    z = torch.randn(1, vae.out_channels, *vae.get_latent_size([frames, args.size, args.size]))
    small = min(frames, 4)  # warm-up on a short clip: lazy imports, kernels, autocast weight casts
    make_call(vae, args.op, DTYPES[args.dtype], x[:, :, :small],
              torch.randn(1, vae.out_channels, *vae.get_latent_size([small, args.size, args.size])), small)()
    print(json.dumps(run_with_peak_memory(make_call(vae, args.op, DTYPES[args.dtype], x, z, frames))))


def speed(args) -> list:
    vae = build_speed_vae()
    small = 4  # warm-up of every (op, dtype) on a 4-frame clip: kernels, autocast casts, lazy imports
    zs = torch.randn(1, vae.out_channels, *vae.get_latent_size([small, args.size, args.size]))
    for op in args.ops:
        for dt in args.dtypes:
            for layout in args.layouts:
                make_call(vae, op, DTYPES[dt], clip(small, args.size), zs, small, layout)()
    rows = []
    for frames in args.frames:
        x = clip(frames, args.size)
        z = torch.randn(1, vae.out_channels, *vae.get_latent_size([frames, args.size, args.size]))
        for op in args.ops:
            print(f"== {op} {frames} frames at {args.size}x{args.size}")
            calls = {contender(dt, layout): make_call(vae, op, DTYPES[dt], x, z, frames, layout)
                     for dt in args.dtypes for layout in args.layouts}
            repeats = 1 if frames > 32 and not args.quick else args.repeats
            timed = time_alternating(calls, repeats, warmup=0)
            for name, r in timed.items():
                dt, _, layout = name.partition("-")
                rows.append(dict(op=op, frames=frames, size=args.size, dtype=dt, layout=layout or "channels_last",
                                 frames_per_s=frames / r["median_s"], **r))
    return rows


def memory(args, rows):
    for row in rows:
        if row["frames"] not in args.memory_frames or row["layout"] != "channels_last":
            continue
        child = ["--op", row["op"], "--dtype", row["dtype"], "--frames", str(row["frames"]), "--size", str(row["size"])]
        child += ["--threads", str(args.threads)] if args.threads else []
        row["memory"] = measure_in_child(os.path.abspath(__file__), child)
        mem = row["memory"]
        print(f"   memory {row['op']} {row['frames']} frames {row['dtype']}: "
              + (f"peak {mem['peak_mib']:.0f} MiB, extra {mem['extra_mib']:.0f} MiB" if "peak_mib" in mem
                 else mem["error"][-300:]))


def bf16_psnr(args) -> dict:
    """bf16 vs fp32 decode PSNR on held-out shapes clips with the shipped shapes VAE."""
    from opensora_lite.config import load_config
    from opensora_lite.data.datasets import VideoClipDataset
    from opensora_lite.eval.metrics import psnr
    from opensora_lite.models.convert import load_checkpoint
    from opensora_lite.registry import MODELS, build_module

    ckpt, val = ROOT / args.vae_ckpt, ROOT / SHAPES_VAL
    if not ckpt.is_file() or not val.is_file():
        return dict(skipped=f"needs {args.vae_ckpt} and {SHAPES_VAL} (tools/train_vae.py, tools/make_shapes.py)")
    cfg = load_config(str(ROOT / SHAPES_CONFIG))
    vae = build_module(cfg.vae, MODELS, where=SHAPES_CONFIG)
    load_checkpoint(vae, str(ckpt))
    vae.eval()
    data = VideoClipDataset(val, num_frames=cfg.num_frames, size=tuple(cfg.image_size), start="center")
    step = max(1, len(data) // args.psnr_clips)  # spread over the classes (val.csv is sorted by class)
    idx = list(range(0, len(data), step))[: args.psnr_clips]
    videos = torch.stack([data[i]["video"] for i in idx])  # (K, 3, T, H, W) in [-1, 1]
    with torch.no_grad():
        z = vae.encode(videos)
        dec32 = vae.decode(z, num_frames=cfg.num_frames).float().clamp(-1, 1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            dec16 = vae.decode(z, num_frames=cfg.num_frames).float().clamp(-1, 1)
            enc16 = vae.encode(videos).float()
            dec16_full = vae.decode(enc16, num_frames=cfg.num_frames).float().clamp(-1, 1)

    def unit(v):
        return (v + 1) / 2

    def stats(a, b):
        p = psnr(unit(a), unit(b))
        return dict(mean_db=float(p.mean()), min_db=float(p.min()))

    return dict(clips=len(idx), vae=args.vae_ckpt, frames=cfg.num_frames, size=list(cfg.image_size),
                bf16_decode_vs_fp32_decode=stats(dec16, dec32),
                recon_fp32=stats(dec32, videos), recon_bf16_decode=stats(dec16, videos),
                recon_bf16_encode_and_decode=stats(dec16_full, videos))


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        return child_main(args)
    set_quiet(not args.quick)
    info = machine_info()
    print(json.dumps(info))
    rows = speed(args)
    if not args.no_memory:
        memory(args, rows)
    header = ["op", "frames", "size", "dtype", "2-D layout", "median s", "frames/s", "peak RSS MiB", "extra MiB"]
    print(fmt_table(header, [[r["op"], r["frames"], r["size"], r["dtype"], r["layout"], r["median_s"],
                              r["frames_per_s"], r.get("memory", {}).get("peak_mib", ""),
                              r.get("memory", {}).get("extra_mib", "")] for r in rows]))
    quality = bf16_psnr(args) if args.psnr_clips else dict(skipped="--psnr-clips 0")
    print("bf16 decode error:", json.dumps(quality))
    machine = {**info, "load_average_at_end": list(os.getloadavg())}
    path = save_json("bench_vae", dict(machine=machine, speed_config=SPEED_CONFIG, speed=rows, bf16_quality=quality,
                                       command="python " + " ".join(sys.argv)), args.quick, args.out)
    print("saved", path)


if __name__ == "__main__":
    main()
