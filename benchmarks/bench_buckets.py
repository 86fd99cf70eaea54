"""Buckets against the fixed-size path (issue #26): throughput, clips used, padding, memory per bucket.

    python tools/make_shapes.py --out data/shapes_mixed --clips-per-class 150 --val-clips-per-class 12 \
        --sizes 64x64 48x96 96x48 --stills-per-class 30 --seed 1
    python benchmarks/bench_buckets.py                  # data/shapes_mixed, the shipped shapes STDiT
    python benchmarks/bench_buckets.py --quick           # fewer rounds, no waiting for a quiet machine

On the mixed folder's sizes (``VideoClipDataset.sizes()``: the CSV is probed, nothing is decoded), with the
model of ``--config`` trained from latents (both paths read cached latents; the data path is not measured):

* **fixed**: every clip forced to the config's ``image_size`` x ``num_frames`` (resize to cover, centre crop),
  one batch size ``--batch-size``;
* **buckets**: ``--bucket-config`` with batch sizes from a token budget equal to the fixed path's tokens per step
  (``batch_tokens``), so both paths train about the same number of tokens per step (a size whose tokens do not
  divide the budget rounds its batch down; a bucket given its own batch size, as the stills here, keeps it).

Reported: training steps (forward, backward, AdamW) timed alternately, tokens per second of each path (the
bucketed one weighted by its batches per epoch) and their ratio; the share of clips used and of their pictures
kept (a 48x96 clip cropped to 64x64 keeps half of its picture); padding (tokens a batch pads to its largest
clip: buckets pad nothing, a mixed batch of these clips would); and the peak memory of a training step of each
bucket at its token-budget batch size, each in a fresh process (VmHWM above the RSS after building the model).
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.common import (  # noqa: E402
    fmt_table,
    machine_info,
    measure_in_child,
    run_with_peak_memory,
    save_json,
    set_quiet,
    time_alternating,
)

CONFIG = "configs/shapes/stdit_shapes.py"
BUCKETS = {"64px": {1: (1.0, 64), 16: (1.0, None)}}  # stills: a batch of their own (a budget would give 256)


def build(config: str):
    """The config's model (training mode), its scheduler and VAE (for latent sizes), and the config."""
    from opensora_lite.config import load_config
    from opensora_lite.registry import MODELS, SCHEDULERS, build_module

    cfg = load_config(config)
    torch.manual_seed(0)
    model = build_module(cfg.model, MODELS).train()
    return model, build_module(cfg.scheduler, SCHEDULERS), build_module(cfg.vae, MODELS), cfg


def tokens_of(vae, model, frames: int, size) -> int:
    """The model's tokens for one clip of ``frames`` x ``size``."""
    t, h, w = vae.get_latent_size([frames, *size])
    pt, ph, pw = model.patch_size
    return -(-t // pt) * -(-h // ph) * -(-w // pw)


def step_fn(model, scheduler, vae, batch: int, frames: int, size):
    """One training step on random latents of a batch of ``frames`` x ``size`` clips."""
    t, h, w = vae.get_latent_size([frames, *size])
    x0 = torch.randn(batch, model.in_channels, t, h, w)  # (B, C, T', H', W')
    y = torch.randint(0, model.num_classes, (batch,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss = scheduler.training_losses(model, x0, dict(y=y))["loss"].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def child(args) -> None:
    """One bucket's training step in this fresh process: its peak memory."""
    model, scheduler, vae, _ = build(args.config)
    frames, height, width, batch = (int(v) for v in args.child_bucket.split(","))
    step = step_fn(model, scheduler, vae, batch, frames, (height, width))
    print(json.dumps(run_with_peak_memory(lambda: [step() for _ in range(2)])))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data/shapes_mixed/train.csv", help="a mixed dataset CSV")
    p.add_argument("--config", default=CONFIG)
    p.add_argument("--bucket-config", default=json.dumps(BUCKETS), help="JSON; batch size null: from the budget")
    p.add_argument("--batch-size", type=int, default=32, help="the fixed path's batch size")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-bucket", help=argparse.SUPPRESS)
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    from opensora_lite.data.buckets import BucketAssigner
    from opensora_lite.data.datasets import VideoClipDataset

    set_quiet(not args.quick)
    repeats = 2 if args.quick else args.repeats
    model, scheduler, vae, cfg = build(args.config)
    frames, size = cfg.num_frames, tuple(cfg.image_size)
    budget = args.batch_size * tokens_of(vae, model, frames, size)  # the fixed path's tokens per step
    buckets = {r: {int(f): tuple(v) for f, v in fs.items()} for r, fs in json.loads(args.bucket_config).items()}
    assigner = BucketAssigner(buckets, budget, lambda b: tokens_of(vae, model, b.frames, b.size))
    sizes = VideoClipDataset(args.data, num_frames=frames, size=size).sizes()
    plan = assigner.plan(sizes)
    batches = {b: -(-len(c) // plan.batch_sizes[b]) for b, c in plan.clips.items()}

    # Clips used and picture kept: a clip resized to cover a size and centre-cropped keeps min(ratio) of it.
    def kept(height, width, target):
        return min((target[0] / target[1]) / (height / width), (height / width) / (target[0] / target[1]))

    fixed_kept = statistics.mean(kept(h, w, size) for _, h, w in sizes)
    used = {i: b for b, clips in plan.clips.items() for i in clips}
    bucket_kept = sum(kept(h, w, used[i].size) for i, (_, h, w) in enumerate(sizes) if i in used) / len(sizes)
    # Padding of a batch mixing these clips, padded to its largest (what one bucket per batch avoids).
    gen = torch.Generator().manual_seed(0)
    clip_tokens = [tokens_of(vae, model, min(t, frames) if t > 1 else 1, used[i].size if i in used else size)
                   for i, (t, _, _) in enumerate(sizes)]
    order = torch.randperm(len(sizes), generator=gen).tolist()
    mixed = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    padded = sum(max(clip_tokens[i] for i in b) * len(b) for b in mixed)
    mixed_padding = 1 - sum(clip_tokens) / padded

    contenders = {"fixed": step_fn(model, scheduler, vae, args.batch_size, frames, size)}
    for b in plan.clips:
        contenders[str(b)] = step_fn(model, scheduler, vae, plan.batch_sizes[b], b.frames, b.size)
    print(f"{len(sizes)} clips, token budget {budget}; timing {len(contenders)} contenders x {repeats}")
    timing = time_alternating(contenders, repeats)
    fixed_tps = budget / timing["fixed"]["median_s"]
    total = sum(batches.values())
    bucket_seconds = sum(batches[b] / total * timing[str(b)]["median_s"] for b in plan.clips)
    bucket_tokens = sum(batches[b] / total * plan.batch_sizes[b] * assigner.tokens(b) for b in plan.clips)
    bucket_tps = bucket_tokens / bucket_seconds

    memory = {"fixed": measure_in_child(__file__, ["--config", args.config, "--child-bucket",
                                                   f"{frames},{size[0]},{size[1]},{args.batch_size}"])}
    for b in plan.clips:
        memory[str(b)] = measure_in_child(__file__, ["--config", args.config, "--child-bucket",
                                                     f"{b.frames},{b.size[0]},{b.size[1]},{plan.batch_sizes[b]}"])
    step_mib = {name: m.get("extra_mib") for name, m in memory.items()}
    # the buckets whose batch size comes from the token budget: what the budget is for (even memory)
    budget_mib = [step_mib[str(b)] for b in plan.clips if buckets[b.resolution][b.frames][1] is None]

    rows = [["fixed", f"{frames}f {size[0]}x{size[1]}", args.batch_size, budget, timing["fixed"]["median_s"],
             step_mib["fixed"]]]
    rows += [[str(b), "", plan.batch_sizes[b], plan.batch_sizes[b] * assigner.tokens(b), timing[str(b)]["median_s"],
              step_mib[str(b)]] for b in sorted(plan.clips)]
    print(fmt_table(["path / bucket", "clips", "batch", "tokens a step", "step s (median)", "step peak MiB"], rows))
    result = dict(
        machine=machine_info(), command="python " + " ".join(sys.argv), data=args.data, config=args.config,
        bucket_config=buckets, token_budget=budget,
        clips=len(sizes),
        fixed=dict(batch_size=args.batch_size, tokens_per_s=fixed_tps, clips_used_share=1.0,
                   picture_kept_share=fixed_kept, padding_share=0.0),
        buckets=dict(tokens_per_s=bucket_tps, clips_used_share=len(used) / len(sizes),
                     picture_kept_share=bucket_kept, padding_share=0.0,
                     per_bucket={str(b): dict(clips=len(plan.clips[b]), batch_size=plan.batch_sizes[b],
                                              tokens_per_step=plan.batch_sizes[b] * assigner.tokens(b),
                                              batches_per_epoch=batches[b], step_median_s=timing[str(b)]["median_s"],
                                              step_peak_mib=step_mib[str(b)]) for b in sorted(plan.clips)},
                     token_budget_buckets_peak_memory_max_over_min=(
                         max(budget_mib) / min(budget_mib) if budget_mib and all(budget_mib) else None)),
        buckets_over_fixed_tokens_per_s=bucket_tps / fixed_tps,
        mixed_batches_padded_to_largest_share=mixed_padding,
        timing=timing, memory=memory,
    )
    path = save_json("bench_buckets", result, args.quick, args.out)
    print(json.dumps({k: result[k] for k in ("buckets_over_fixed_tokens_per_s",
                                             "mixed_batches_padded_to_largest_share")}, indent=1))
    print(f"buckets: {result['buckets']['clips_used_share']:.0%} of clips used, "
          f"{result['buckets']['picture_kept_share']:.0%} of their picture kept (fixed: {fixed_kept:.0%}); "
          f"step peak memory max/min over the token-budget buckets "
          f"{result['buckets']['token_budget_buckets_peak_memory_max_over_min']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
