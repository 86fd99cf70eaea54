"""Which training recipe makes the shapes STDiT learn its classes? Judged accuracy against training steps.

    python benchmarks/shapes_recipe.py --device cuda            # every variant, in parallel processes
    python benchmarks/shapes_recipe.py --runs uniform:0 --evals 500,1000   # one, on the CPU
    python benchmarks/shapes_recipe.py --quick                  # smoke run (a few steps, 1 clip per class)

Each variant trains the shapes STDiT (configs/shapes/stdit_shapes.py, its model, batch, lr, warm-up, grad
clip and EMA) from the latent cache with only the rectified-flow settings or lr changed, and at every
step count of ``--evals`` samples 4 clips per class from the EMA weights with the config's sampler (25
Euler steps, guidance 3), decodes them with the shipped VAE and judges them with
``opensora_lite.eval.shapes_judge`` (shape, direction and both). The loop is the trainer's step written
out in one process (no colossalai, so it runs on any device); it draws its own batches, so its figures
are per recipe and seed, not the shipped run's. 6 variants x 6,000 steps take ~7 min on one H100 and
~1.6 h per variant on the 2-core CPU.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.common import ROOT, fmt_table, machine_info, save_json  # noqa: E402

CONFIG = "configs/shapes/stdit_shapes.py"
VARIANTS = {  # name: (scheduler overrides, lr or None for the config's)
    "logit-normal": (dict(sample_method="logit-normal"), None),
    "logit-normal+shift3": (dict(sample_method="logit-normal", shift=3.0), None),
    "uniform": (dict(sample_method="uniform"), None),
    "uniform+shift1.5": (dict(sample_method="uniform", shift=1.5), None),
    "uniform,lr=1e-3": (dict(sample_method="uniform"), 1e-3),
}
DEFAULT_RUNS = ["logit-normal:0", "logit-normal+shift3:0", "uniform:0", "uniform:1", "uniform+shift1.5:0",
                "uniform,lr=1e-3:0"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", default=DEFAULT_RUNS,
                   help="VARIANT:SEED pairs; variants: " + ", ".join(VARIANTS))
    p.add_argument("--evals", default="2000,3000,4000,5000,6000", help="step counts at which to judge samples")
    p.add_argument("--clips-per-class", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache", help="latent cache (default: the config's train.latent_cache)")
    p.add_argument("--quick", action="store_true", help="2 runs, 4 steps, 1 clip per class")
    p.add_argument("--out")
    p.add_argument("--child", help=argparse.SUPPRESS)  # VARIANT:SEED: run one and print JSON lines
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.evals, args.clips_per_class = ["logit-normal:0", "uniform:0"], "2,4", 1
    unknown = [r for r in args.runs if r.rsplit(":", 1)[0] not in VARIANTS or not r.rsplit(":", 1)[-1].isdigit()]
    if unknown:
        p.error(f"unknown run(s) {unknown}: use VARIANT:SEED with VARIANT in {list(VARIANTS)}")
    return args


def train_and_judge(run: str, args) -> None:
    """Train one VARIANT:SEED and print one JSON line per evaluation point."""
    from opensora_lite.config import load_config
    from opensora_lite.data.datasets import LatentCacheDataset
    from opensora_lite.data.shapes import split_class_id
    from opensora_lite.eval.shapes_judge import judge_clips
    from opensora_lite.inference.pipeline import VideoPipeline
    from opensora_lite.models.convert import load_checkpoint
    from opensora_lite.registry import MODELS, SCHEDULERS, build_module
    from opensora_lite.training.train_loop import step_draws
    from opensora_lite.training.train_step import TrainStep

    name, seed = run.rsplit(":", 1)
    seed = int(seed)
    sched_overrides, lr = VARIANTS[name]
    os.chdir(ROOT)
    cfg = load_config(CONFIG)
    cfg.scheduler.update(sched_overrides)
    s, device = cfg.train, torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(seed)
    model = build_module(cfg.model, MODELS, where=CONFIG).to(device).train()
    scheduler = build_module(cfg.scheduler, SCHEDULERS, where=CONFIG)
    cache = LatentCacheDataset(args.cache or s.latent_cache)
    latents, labels = cache.latents.float().to(device), cache.labels.to(device)  # (N, C, T', H', W'), (N,)
    trainer = TrainStep(model, lr or s.lr, warmup_steps=s.warmup_steps, grad_clip=s.grad_clip, ema_decay=s.ema_decay)
    vae = build_module(cfg.vae, MODELS, where=CONFIG)
    load_checkpoint(vae, cfg.ckpt.vae)
    pipe = VideoPipeline(trainer.ema.model, vae.to(device), scheduler, cfg.image_size, cfg.inference.num_frames)
    classes = [c for c in range(model.num_classes) for _ in range(args.clips_per_class)]
    evals = sorted(int(e) for e in args.evals.split(","))
    draws = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for step in range(1, evals[-1] + 1):
        rows = torch.randint(0, len(latents), (s.batch_size,), generator=draws).to(device)
        uniforms, t, noise, _ = step_draws(scheduler, s.batch_size, latents.shape[1:], tuple(cfg.image_size), draws)
        uniforms, t, noise = uniforms.to(device), t.to(device), noise.to(device)
        cond = model.drop_cond(dict(y=labels[rows]), uniforms)
        loss = scheduler.training_losses(model, latents[rows], cond, t=t, noise=noise)["loss"].mean()
        trainer.apply(loss)
        if step in evals:
            videos = pipe(classes=classes, seed=0, batch_size=len(classes), progress=False).videos
            verdicts = judge_clips(videos)
            truth = [split_class_id(c) for c in classes]  # (shape, direction) per clip
            row = dict(variant=name, seed=seed, step=step, loss=loss.item(), seconds=round(time.time() - t0, 1),
                       accuracy=sum(v["class_id"] == c for v, c in zip(verdicts, classes)) / len(classes),
                       shape_accuracy=sum(v["shape"] == sh for v, (sh, _) in zip(verdicts, truth)) / len(classes),
                       direction_accuracy=sum(v["direction"] == d for v, (_, d) in zip(verdicts, truth)) / len(classes))
            print(json.dumps(row), flush=True)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return train_and_judge(args.child, args)
    info = machine_info()
    if args.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    common = ["--evals", args.evals, "--clips-per-class", str(args.clips_per_class), "--device", args.device]
    common += ["--cache", args.cache] if args.cache else []
    # One process per run: in parallel on a GPU (each alone is launch-bound), one after another on a CPU.
    parallel = args.device.startswith("cuda")
    procs, outputs = [], []
    for run in args.runs:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", run, *common]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
        if not parallel:
            outputs.append(procs[-1].communicate()[0])
    if parallel:
        outputs = [proc.communicate()[0] for proc in procs]
    failed = [run for run, proc in zip(args.runs, procs) if proc.returncode]
    rows = [json.loads(line) for out in outputs for line in out.splitlines() if line.startswith("{")]
    header = ["variant", "seed", "step", "judged accuracy", "shape", "direction", "train s"]
    print(fmt_table(header, [[r["variant"], r["seed"], r["step"], f"{r['accuracy']:.3f}", f"{r['shape_accuracy']:.3f}",
                              f"{r['direction_accuracy']:.3f}", r["seconds"]] for r in rows]))
    path = save_json("shapes_recipe", dict(machine=info, config=CONFIG, clips_per_class=args.clips_per_class,
                                           results=rows, failed=failed, command="python " + " ".join(sys.argv)),
                     args.quick, args.out)
    print("saved", path)
    if failed:
        raise SystemExit(f"run(s) {failed} failed (their output is above)")


if __name__ == "__main__":
    main()
