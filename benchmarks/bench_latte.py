"""One 16-frame 256x256 Latte-XL/2 sample (configs/latte/ucf101_256.py, random weights): time and peak memory.

    python benchmarks/bench_latte.py                  # fp32 and bf16, 2 timed DDIM steps each after a warm-up
    python benchmarks/bench_latte.py --steps 1 --warmup 0   # what fits in ~10 minutes on a 2-core CPU
    python benchmarks/bench_latte.py --quick          # a depth-1 model, 1 step: a smoke run of the script

The config's default sampler is DDIM with 50 steps under guidance 7.0, so every step runs the network on
2 rows (conditional + null class) of 16 x 32 x 32 latents: 4,096 tokens per row through 14 spatial and 14
temporal blocks, several TFLOPs. A whole sample takes far too long for a small CPU, so this script times
``--steps`` steps of the 50-step chain (after ``--warmup`` untimed steps) and reports the median per-step time
and the **extrapolated** 50-step total (``per_step_s * 50``: every DDIM step costs the same network call).
The SD VAE decode of the 16 frames is timed on one micro-batch of 4 frames (random weights, SD's
architecture) and extrapolated to 16 frames the same way. Peak memory is the process's peak RSS during the
timed steps (``run_with_peak_memory``: model and inputs are in the baseline, ``extra_mib`` is what sampling
adds). bf16 is CPU autocast, as ``tools/generate.py --dtype bf16``.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.common import fmt_table, machine_info, run_with_peak_memory, save_json  # noqa: E402
from opensora_lite.config import load_config  # noqa: E402
from opensora_lite.registry import MODELS, SCHEDULERS, build_module  # noqa: E402
from opensora_lite.schedulers.settings import SamplingSettings  # noqa: E402

CONFIG = "configs/latte/ucf101_256.py"
SAMPLE_STEPS = 50  # the config's DDIM chain
VAE_MICRO_BATCH = 4  # frames per SD VAE decode call (the config's micro_batch_size)
SD_VAE_CONFIG = dict(  # stabilityai/sd-vae-ft-ema's architecture (its config.json), random weights here
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    act_fn="silu", latent_channels=4, norm_num_groups=32, sample_size=256,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="depth-1 model, 1 timed step: a smoke run")
    p.add_argument("--steps", type=int, default=2, help="timed DDIM steps per dtype")
    p.add_argument("--warmup", type=int, default=1, help="untimed DDIM steps before them")
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.quick:
        args.steps = 1
    return args


def time_steps(model, scheduler, z, y, steps: int, dtype) -> list:
    """Seconds of each of the first ``steps`` steps of the 50-step chain."""
    times = []
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
        chain = scheduler.sample_steps(model, z, dict(y=y), SamplingSettings(steps=SAMPLE_STEPS, progress=False))
        t0 = time.perf_counter()
        for _ in range(steps):
            next(chain)
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
    return times


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    cfg = load_config(CONFIG, {"model.depth": 1} if args.quick else {})
    model = build_module(cfg.model, MODELS).eval()
    scheduler = build_module(cfg.scheduler, SCHEDULERS)
    from opensora_lite.models.vae.kl2d import VideoAutoencoderKL

    vae = VideoAutoencoderKL(config=SD_VAE_CONFIG, micro_batch_size=VAE_MICRO_BATCH).eval()
    frames, height, width = cfg.model.input_size
    z = torch.randn(1, model.in_channels, frames, height, width)  # (1, 4, 16, 32, 32): one clip
    y = torch.tensor([62])  # PlayingGuitar
    results = dict(config=CONFIG, model=dict(cfg.model), params=sum(p.numel() for p in model.parameters()),
                   latent=list(z.shape), sampler=cfg.scheduler.sampler, chain_steps=SAMPLE_STEPS,
                   cfg_scale=cfg.scheduler.cfg_scale, quick=args.quick, points={})
    rows = []
    for dtype in args.dtypes:
        def run(dtype=dtype):
            results["points"].setdefault(dtype, {}).update(
                step_seconds=time_steps(model, scheduler, z, y, args.warmup + args.steps, dtype))

        memory = run_with_peak_memory(run)
        point = results["points"][dtype]
        per_step = statistics.median(point["step_seconds"][args.warmup:])
        latents = z[:, :, :VAE_MICRO_BATCH]  # (1, 4, 4, 32, 32): one decode micro-batch
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            t0 = time.perf_counter()
            vae.decode(latents)
            decode_4 = time.perf_counter() - t0
        point.update(warmup_steps=args.warmup, per_step_s=per_step,
                     sampling_50_steps_s_extrapolated=per_step * SAMPLE_STEPS,
                     decode_4_frames_s=decode_4, decode_16_frames_s_extrapolated=decode_4 * frames / VAE_MICRO_BATCH,
                     total_s_extrapolated=per_step * SAMPLE_STEPS + decode_4 * frames / VAE_MICRO_BATCH,
                     sampling_peak_mib=memory["peak_mib"], sampling_extra_mib=memory["extra_mib"],
                     memory_method=memory["method"])
        rows.append([dtype, f"{per_step:.1f}", f"{per_step * SAMPLE_STEPS / 60:.1f}",
                     f"{point['decode_16_frames_s_extrapolated']:.1f}", f"{point['total_s_extrapolated'] / 60:.1f}",
                     f"{memory['peak_mib']:.0f}", f"{memory['extra_mib']:.0f}"])
        print(f"{dtype}: steps {['%.1f' % s for s in point['step_seconds']]} s", flush=True)
    results["machine"] = machine_info()
    path = save_json("bench_latte", results, quick=args.quick, out=args.out)
    print(fmt_table(["dtype", "s / DDIM step (measured)", "50 steps, min (extrapolated)",
                     "decode 16 frames, s (extrapolated)", "sample, min (extrapolated)", "peak RSS MiB",
                     "sampling extra MiB"], rows))
    print(path)


if __name__ == "__main__":
    main()
