"""Speed vs quality of rectified-flow sampling on the shipped shapes model: judged accuracy per model evaluation.

    python benchmarks/bench_sampling.py                 # Euler, Heun and DPM-Solver++(2M) at several step counts
    python benchmarks/bench_sampling.py --pab           # + attention broadcast (benchmarks/archive/pab.py)
    python benchmarks/bench_sampling.py --points euler:25 dpm++2m:6 dpm++2m:8   # just these points
    python benchmarks/bench_sampling.py --quick         # smoke run (random init if no weights)

For every point, ``clips_per_class`` clips of every class are generated (the same seeds at every point:
clip i starts from the noise of seed i) with ``opensora_lite.VideoPipeline``, decoded by the
shipped VAE, and judged by ``opensora_lite.eval.shapes_judge.judge_accuracy`` (a clip counts when the
judge sees its class's shape moving its class's way). NFE = network evaluations per clip: Euler and
DPM-Solver++(2M) make one per step, Heun two; classifier-free guidance batches the conditional and null
rows into that one call. ``video error`` is a solver-accuracy figure that does not depend on the judge:
the relative RMS distance of the decoded clips to those of a fine reference solve of the same noise
(``--reference``, default Heun 50 = 100 NFE).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.common import ROOT, fmt_table, machine_info, save_json, set_quiet, wait_for_quiet  # noqa: E402

CONFIG = "configs/shapes/stdit_shapes.py"
EULER_STEPS = [1, 2, 3, 4, 6, 8, 12, 16, 25, 50]
HEUN_STEPS = [1, 2, 3, 4, 6, 8, 12]
DPM_STEPS = [2, 3, 4, 5, 6, 8, 12]
CALLS_PER_STEP = {"euler": 1, "heun": 2, "dpm++2m": 1}  # network evaluations per solver step
PAB_STEPS = [8, 12, 16, 25]
PAB_EVERY = [2, 3]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 clip per class, 3 points")
    p.add_argument("--clips-per-class", type=int, default=4)
    p.add_argument("--euler", type=int, nargs="*", default=EULER_STEPS, help="Euler step counts")
    p.add_argument("--heun", type=int, nargs="*", default=HEUN_STEPS, help="Heun step counts")
    p.add_argument("--dpm", type=int, nargs="*", default=DPM_STEPS, help="DPM-Solver++(2M) step counts")
    p.add_argument("--points", nargs="+", metavar="SAMPLER:STEPS",
                   help=f"only these points, e.g. euler:25 dpm++2m:8 (samplers: {', '.join(CALLS_PER_STEP)}); "
                        "replaces --euler/--heun/--dpm")
    p.add_argument("--pab", action="store_true", help="add Euler with temporal-attention broadcast")
    p.add_argument("--pab-steps", type=int, nargs="*", default=PAB_STEPS)
    p.add_argument("--pab-every", type=int, nargs="*", default=PAB_EVERY)
    p.add_argument("--pab-targets", nargs="+", default=["temporal"], choices=["temporal", "spatial"])
    p.add_argument("--reference", default="heun:50", metavar="SAMPLER:STEPS",
                   help="fine solve the video error is measured against ('none': skip it)")
    p.add_argument("--cfg-scale", type=float, help="default: the config's")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt", help="model weights (default: the config's ckpt.model)")
    p.add_argument("--random-init", action="store_true", help="smoke runs without weights (accuracy ~0)")
    p.add_argument("--threads", type=int)
    p.add_argument("--out")
    args = p.parse_args(argv)

    def parse_points(points, option):
        try:
            parsed = [(name, int(steps)) for name, steps in (point.rsplit(":", 1) for point in points)]
        except ValueError:
            p.error(f"{option} takes SAMPLER:STEPS, got {points}")
        unknown = sorted({name for name, _ in parsed} - set(CALLS_PER_STEP))
        if unknown:
            p.error(f"unknown sampler(s) {unknown} in {option}; choose from {list(CALLS_PER_STEP)}")
        return parsed

    if args.points:
        args.points = parse_points(args.points, "--points")
    args.reference = None if args.reference == "none" else parse_points([args.reference], "--reference")[0]
    if args.quick:
        args.clips_per_class, args.euler, args.heun, args.dpm = 1, [2, 4], [2], [4]
        args.pab_steps, args.pab_every = [4], [2]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from benchmarks.archive.pab import attention_broadcast
    from opensora_lite.config import load_config
    from opensora_lite.eval.shapes_judge import judge_clips
    from opensora_lite.inference.pipeline import VideoPipeline

    set_quiet(not args.quick)
    info = machine_info()
    print(json.dumps(info))
    cfg = load_config(str(ROOT / CONFIG))
    random_init = args.random_init
    weights = args.ckpt or cfg.ckpt.model
    if not random_init and not ((ROOT / weights).is_file() and (ROOT / cfg.ckpt.vae).is_file()):
        if not args.quick:
            raise SystemExit(f"needs the shipped weights ({weights}, {cfg.ckpt.vae}); or pass --random-init")
        random_init = True
    cwd = os.getcwd()
    os.chdir(ROOT)  # the config's weight paths are relative to the repository
    try:
        pipe = VideoPipeline.from_loaded_config(cfg, CONFIG, ckpt=args.ckpt, random_init=random_init)
    finally:
        os.chdir(cwd)
    frames = cfg.inference.num_frames
    classes = [c for c in range(pipe.num_classes) for _ in range(args.clips_per_class)]
    pipe.to(dtype=torch.bfloat16 if args.dtype == "bf16" else torch.float32)

    def generate(classes, steps, sampler, seed=0):
        out = pipe(classes=classes, num_frames=frames, seed=seed, steps=steps, cfg_scale=args.cfg_scale,
                   sampler=sampler, batch_size=args.batch_size, progress=False)
        return out.videos, out.timings

    if args.points:
        points = [(name, steps, None) for name, steps in args.points]
    else:
        points = ([("euler", s, None) for s in args.euler] + [("heun", s, None) for s in args.heun]
                  + [("dpm++2m", s, None) for s in args.dpm])
    if args.pab:
        points += [("euler", s, k) for s in args.pab_steps for k in args.pab_every]
    generate(classes[: args.batch_size], 2, "euler")  # warm-up
    reference = None
    if args.reference:
        reference = generate(classes, args.reference[1], args.reference[0], seed=args.seed)[0]  # (N, 3, T, H, W)

    def video_error(videos):
        if reference is None:
            return None
        return float((videos - reference).pow(2).mean().sqrt() / reference.pow(2).mean().sqrt())

    rows = []
    for solver, steps, every in points:
        wait_for_quiet()  # the sampling time of this point should not include other processes' work
        label = f"{solver}" + (f" + broadcast/{every} ({'+'.join(args.pab_targets)})" if every else "")
        if every:
            with attention_broadcast(pipe.model, every=every, targets=args.pab_targets) as state:
                videos, timings = generate(classes, steps, solver, seed=args.seed)
            reuse = state["reused"] / max(1, state["reused"] + state["computed"])
        else:
            videos, timings = generate(classes, steps, solver, seed=args.seed)
            reuse = 0.0
        verdicts = judge_clips(videos)
        correct = [v["class_id"] == c for v, c in zip(verdicts, classes)]
        row = dict(solver=solver, broadcast_every=every, steps=steps, nfe=steps * CALLS_PER_STEP[solver],
                   accuracy=sum(correct) / len(correct), clips=len(classes),
                   rejected=sum(v["class_id"] is None for v in verdicts),
                   sampling_s=timings["sampling"], sampling_s_per_clip=timings["sampling"] / len(classes),
                   decoding_s=timings["decoding"], attention_reuse_fraction=reuse, label=label,
                   video_error=video_error(videos))
        rows.append(row)
        error = "-" if row["video_error"] is None else f"{row['video_error']:.4f}"
        print(f"  {label:40s} steps {steps:3d} NFE {row['nfe']:3d}: accuracy {row['accuracy']:.3f} "
              f"({row['rejected']} rejected), video error {error}, sampling {timings['sampling']:.2f} s")
    header = ["sampler", "steps", "NFE", "judged accuracy", "rejected", "video error", "sampling s / clip"]
    print(fmt_table(header, [[r["label"], r["steps"], r["nfe"], f"{r['accuracy']:.3f}", r["rejected"],
                              "-" if r["video_error"] is None else f"{r['video_error']:.4f}",
                              r["sampling_s_per_clip"]] for r in rows]))
    path = save_json("bench_sampling", dict(
        machine={**info, "load_average_at_end": list(os.getloadavg())}, config=CONFIG, random_init=random_init,
        dtype=args.dtype,
        cfg_scale=args.cfg_scale if args.cfg_scale is not None else pipe.scheduler.cfg_scale,
        clips_per_class=args.clips_per_class, frames=frames, reference=args.reference, results=rows,
        command="python " + " ".join(sys.argv)),
        args.quick, args.out)
    print("saved", path)


if __name__ == "__main__":
    main()
