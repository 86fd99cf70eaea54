"""Evaluate the shipped shapes model: judged accuracy, Frechet distance, VAE reconstruction.

    python tools/eval.py configs/shapes/stdit_shapes.py --per-class 4 --out eval_results

(a) generates ``--per-class`` clips of every class and asks the independent judge
    (``opensora_lite.eval.shapes_judge``, frame analysis, no generator) whether each shows the requested
    shape moving the requested way;
(b) the Frechet distance between generated and held-out real clips in the feature space of a small
    classifier trained on real training clips (with the real-vs-real distance as the floor);
(c) the VAE pipeline's PSNR / SSIM on held-out real clips, and the judge's accuracy on those clips and on
    their VAE reconstructions (what no generator on this VAE can beat).
Writes ``<out>/results.json`` and ``<out>/samples.png`` (one row per class).
"""
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opensora_lite.cli import ArgumentParser, run_cli  # noqa: E402
from opensora_lite.config import load_config  # noqa: E402


def parse_args(argv):
    parser = ArgumentParser(prog="tools/eval.py", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="the shapes config, e.g. configs/shapes/stdit_shapes.py")
    parser.add_argument("--per-class", type=int, default=4, help="generated clips per class")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the scheduler's)")
    parser.add_argument("--cfg-scale", type=float, help="guidance scale (default: the scheduler's)")
    parser.add_argument("--sampler", help="the scheduler's sampler, e.g. euler or heun (default: the scheduler's)")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--data", default="data/shapes", help="shapes dataset with train.csv and val.csv")
    parser.add_argument("--real-clips", type=int, default=240, help="held-out clips for (b) and (c)")
    parser.add_argument("--classifier", help="classifier weights: loaded if the file exists, else trained on "
                        "the real training clips and saved there (default: <out>/classifier.safetensors)")
    parser.add_argument("--out", default="eval_results", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace results in --out")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    cfg = load_config(args.config)
    out = Path(args.out)
    if (out / "results.json").exists() and not args.overwrite:
        from opensora_lite.errors import UserError

        raise UserError(f"{out / 'results.json'} exists; pass --overwrite or another --out")
    out.mkdir(parents=True, exist_ok=True)
    import torch

    from opensora_lite.data.datasets import VideoClipDataset
    from opensora_lite.data.video_io import save_grid_png
    from opensora_lite.engine.checkpoint import load_checkpoint, save_checkpoint
    from opensora_lite.pipeline import VideoPipeline
    from opensora_lite.eval.classifier import ShapesClassifier, features_and_predictions, train_classifier
    from opensora_lite.eval.metrics import frechet_distance, psnr, ssim
    from opensora_lite.eval.shapes_judge import judge_accuracy, judge_clips

    torch.manual_seed(0)
    pipe = VideoPipeline.from_loaded_config(cfg, args.config)
    num_frames = cfg.get("num_frames", 16)
    num_classes = pipe.num_classes
    classes = [c for c in range(num_classes) for _ in range(args.per_class)]
    t0 = time.perf_counter()
    out_clips = pipe(classes=range(num_classes), num_samples=args.per_class, num_frames=num_frames, seed=args.seed,
                     steps=args.steps, cfg_scale=args.cfg_scale, sampler=args.sampler, batch_size=12)
    videos, timings = out_clips.videos, out_clips.timings
    seconds_per_clip = (time.perf_counter() - t0) / len(classes)

    verdicts = judge_clips(videos)
    correct = [v["class_id"] == c for v, c in zip(verdicts, classes)]
    per_class = {c: sum(ok for ok, k in zip(correct, classes) if k == c) / args.per_class for c in range(num_classes)}

    val = VideoClipDataset(Path(args.data) / "val.csv", num_frames=num_frames, size=tuple(cfg.image_size), start="center")
    real = torch.stack([val[i]["video"] for i in range(min(args.real_clips, len(val)))])
    classifier_path = Path(args.classifier or out / "classifier.safetensors")
    if classifier_path.is_file():
        classifier = ShapesClassifier(num_classes)
        load_checkpoint(classifier, classifier_path)
        classifier.eval()
    else:
        train = VideoClipDataset(Path(args.data) / "train.csv", num_frames=num_frames, size=tuple(cfg.image_size),
                                 start="center")
        classifier = train_classifier(train, num_classes)
        save_checkpoint(classifier, classifier_path)
    real_feats, real_preds = features_and_predictions(classifier, real)
    gen_feats, gen_preds = features_and_predictions(classifier, videos)
    half = len(real) // 2
    labels = torch.tensor([val[i]["cond"]["y"] for i in range(len(real))])

    with torch.no_grad():
        recon = torch.cat([pipe.decode(pipe.encode(real[i:i + 16]), num_frames) for i in range(0, len(real), 16)])
    results = dict(
        config=args.config, per_class=args.per_class, steps=args.steps or pipe.scheduler.num_sampling_steps,
        cfg_scale=args.cfg_scale if args.cfg_scale is not None else pipe.scheduler.cfg_scale,
        sampler=args.sampler or pipe.scheduler.sampler,
        judged_accuracy=sum(correct) / len(correct), judged_accuracy_per_class=per_class,
        classifier_accuracy_on_generated=(gen_preds == torch.tensor(classes)).float().mean().item(),
        classifier_accuracy_on_real_heldout=(real_preds == labels).float().mean().item(),
        frechet_distance_generated_vs_real=frechet_distance(gen_feats, real_feats),
        frechet_distance_real_vs_real=frechet_distance(real_feats[:half], real_feats[half:]),
        judged_accuracy_real_heldout=judge_accuracy(real, labels),  # the judge's own error on real clips
        judged_accuracy_vae_reconstruction=judge_accuracy(recon, labels),  # the ceiling the VAE puts on a generator
        vae_psnr_db=psnr((recon + 1) / 2, (real + 1) / 2).mean().item(),
        vae_ssim=ssim((recon + 1) / 2, (real + 1) / 2).mean().item(),
        seconds_per_clip=seconds_per_clip, sampling_seconds=timings["sampling"], decoding_seconds=timings["decoding"],
    )
    (out / "results.json").write_text(json.dumps(results, indent=1))
    rows = torch.stack([videos[classes.index(c)] for c in range(num_classes)])
    save_grid_png(out / "samples.png", rows, frame_stride=2, overwrite=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(run_cli(main))
