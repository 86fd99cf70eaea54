"""Evaluate the shipped shapes model in every mode: classes, image-to-video, continuation, long videos.

    python tools/eval.py configs/shapes/stdit_shapes.py --out eval_results
    python tools/eval.py configs/shapes/stdit_shapes.py --modes extend direct --out /tmp/ev   # some modes

Modes (``--modes``, default all), each judged by ``opensora_lite.eval.shapes_judge`` (frame analysis, no
generator):

* ``uncond``: ``--per-class`` clips of every class, ``--frames`` long; judged accuracy (the requested shape
  moving the requested way), plus the Frechet distance to held-out real clips in the feature space of a small
  classifier trained on real training clips (real-vs-real as the floor), and the VAE's PSNR / SSIM on held-out
  clips with the judge's accuracy on them and on their reconstructions (what no generator on this VAE beats);
* ``i2v``: frame 0 of each of ``--i2v-clips`` held-out clips (``val.csv``) and its class: the clip must keep
  the shape, colour and starting position (centroid within 2 px in frame 0) and move the class's way at the
  benchmark's speed (``judge_image_to_video``);
* ``extend``: the first ``--context-frames`` frames of each of ``--extend-clips`` held-out long clips
  (``val_long.csv``) continued to ``--long-frames``: one object of constant colour and size, steady direction
  and speed, no jumps, leaving cleanly at the border, nothing reappearing (``judge_consistency``); the same
  judge on the whole real clips through the VAE, window by window, is what no generator on this VAE beats;
* ``long``: ``--long-frames`` frames per clip from nothing, window by window; the same rules;
* ``longer``: the same with ``--longer-frames`` (96) frames: whether windows keep a clip consistent twice as long;
* ``direct``: ``--direct-frames`` frames in ONE window (no windows, no conditioning), the same rules: what
  asking a model trained on short clips for a long one gives;
* ``sizes`` (only when asked): ``--per-class`` class-conditional clips of every class at each of ``--sizes``
  (a model trained in buckets, ``make-shapes --sizes``), judged accuracy per size, beside the judge's accuracy on
  the held-out real clips of that size.

Writes ``<out>/results.json`` and one PNG grid per mode (given frames bordered).
"""
import json
import time
from pathlib import Path

from opensora_lite.cli import ArgumentParser, parse_hw
from opensora_lite.config import load_config
from opensora_lite.errors import UserError

MODES = ("uncond", "i2v", "extend", "long", "longer", "direct", "sizes")


def parse_args(argv):
    parser = ArgumentParser(prog="opensora-lite eval", description=__doc__.split("\n")[0])
    parser.add_argument("config", help="the shapes config, e.g. configs/shapes/stdit_shapes.py")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES[:-1]),
                        help="what to evaluate (default: every mode but sizes)")
    parser.add_argument("--sizes", nargs="+", metavar="HxW", default=[], help="sizes: the frame sizes to judge, "
                        "e.g. 64x64 48x96 96x48 (default: the config's image_size)")
    parser.add_argument("--per-class", type=int, default=4, help="uncond: generated clips per class")
    parser.add_argument("--frames", type=int, default=16, help="uncond and i2v: frames per clip")
    parser.add_argument("--i2v-clips", type=int, default=120, help="i2v: held-out clips whose frame 0 is given")
    parser.add_argument("--extend-clips", type=int, default=48, help="extend, long, direct: clips")
    parser.add_argument("--context-frames", type=int, default=16, help="extend: real frames given")
    parser.add_argument("--long-frames", type=int, default=48, help="extend and long: frames per clip")
    parser.add_argument("--window", type=int, metavar="F", help="extend and long: frames per window "
                        "(default: the config's inference.window)")
    parser.add_argument("--overlap", type=int, metavar="F", help="extend and long: frames each new window is "
                        "given (default: the config's inference.window)")
    parser.add_argument("--longer-frames", type=int, default=96, help="longer: frames per clip")
    parser.add_argument("--direct-frames", type=int, default=32, help="direct: frames in one window")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the scheduler's)")
    parser.add_argument("--cfg-scale", type=float, help="guidance scale (default: the scheduler's)")
    parser.add_argument("--given-cfg-scale", type=float, help="guidance of windows with given frames (default: the "
                        "config's inference.given_cfg_scale, else --cfg-scale)")
    parser.add_argument("--sampler", help="the scheduler's sampler, e.g. euler or heun (default: the scheduler's)")
    parser.add_argument("--ckpt", help="model weights (default: ckpt.model of the config)")
    parser.add_argument("--vae-ckpt", help="VAE weights (default: ckpt.vae of the config)")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--data", default="data/shapes", help="shapes dataset with train.csv, val.csv, val_long.csv")
    parser.add_argument("--real-clips", type=int, default=240, help="uncond: held-out clips for FD and the VAE")
    parser.add_argument("--classifier", help="classifier weights: loaded if the file exists, else trained on "
                        "the real training clips and saved there (default: <out>/classifier.safetensors)")
    parser.add_argument("--out", default="eval_results", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace results in --out")
    args = parser.parse_args(argv)
    args.sizes = [parse_hw(text, "--sizes") for text in args.sizes]
    return args


def _dataset(args, split: str, num_frames: int, size):
    from opensora_lite.data.datasets import VideoClipDataset

    path = Path(args.data) / f"{split}.csv"
    if not path.is_file():
        raise UserError(f"{path} not found: make the benchmark with tools/make_shapes.py (docs/shapes_benchmark.md)")
    return VideoClipDataset(path, num_frames=num_frames, size=tuple(size), start="center")


def _first_frames(dataset, index: int, num_frames: int, size):
    """The first ``num_frames`` frames (3, T, H, W) of clip ``index`` of a dataset, and its class id."""
    from opensora_lite.data.video_read import read_video

    return read_video(dataset.paths[index], num_frames, size=tuple(size), start=0), dataset.labels[index]


def _rate(verdicts) -> float:
    return sum(v["ok"] for v in verdicts) / max(1, len(verdicts))


def _reasons(verdicts) -> dict:
    """How often each kind of failure occurred (its first words), for the report."""
    counts = {}
    for v in verdicts:
        for reason in v["reasons"]:
            key = " ".join(reason.split()[:4])
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def eval_uncond(pipe, args, out: Path, sample) -> dict:
    import torch

    from opensora_lite.eval.classifier import ShapesClassifier, features_and_predictions, train_classifier
    from opensora_lite.eval.metrics import frechet_distance, psnr, ssim
    from opensora_lite.eval.shapes_judge import judge_accuracy, judge_clips
    from opensora_lite.models.convert import load_checkpoint
    from opensora_lite.storage import save_checkpoint

    num_classes, frames = pipe.num_classes, args.frames
    classes = [c for c in range(num_classes) for _ in range(args.per_class)]
    t0 = time.perf_counter()
    generated = sample(classes=range(num_classes), num_samples=args.per_class, num_frames=frames)
    seconds_per_clip = (time.perf_counter() - t0) / len(classes)
    videos = generated.videos
    verdicts = judge_clips(videos)
    correct = [v["class_id"] == c for v, c in zip(verdicts, classes)]
    per_class = {c: sum(ok for ok, k in zip(correct, classes) if k == c) / args.per_class for c in range(num_classes)}

    val = _dataset(args, "val", frames, pipe.image_size)
    real = torch.stack([val[i]["video"] for i in range(min(args.real_clips, len(val)))])
    labels = torch.tensor([val[i]["cond"]["y"] for i in range(len(real))])
    classifier_path = Path(args.classifier or out / "classifier.safetensors")
    if classifier_path.is_file():
        classifier = ShapesClassifier(num_classes)
        load_checkpoint(classifier, classifier_path)
        classifier.eval()
    else:
        classifier = train_classifier(_dataset(args, "train", frames, pipe.image_size), num_classes)
        save_checkpoint(classifier, classifier_path)
    real_feats, real_preds = features_and_predictions(classifier, real)
    gen_feats, gen_preds = features_and_predictions(classifier, videos)
    half = len(real) // 2
    with torch.no_grad():
        recon = torch.cat([pipe.decode(pipe.encode(real[i:i + 16]), frames) for i in range(0, len(real), 16)])
    _save_grid([generated], out / "uncond", every=args.per_class)  # one row per class
    return dict(
        clips=len(classes), frames=frames, judged_accuracy=sum(correct) / len(correct),
        judged_accuracy_per_class=per_class,
        classifier_accuracy_on_generated=(gen_preds == torch.tensor(classes)).float().mean().item(),
        classifier_accuracy_on_real_heldout=(real_preds == labels).float().mean().item(),
        frechet_distance_generated_vs_real=frechet_distance(gen_feats, real_feats),
        frechet_distance_real_vs_real=frechet_distance(real_feats[:half], real_feats[half:]),
        judged_accuracy_real_heldout=judge_accuracy(real, labels),  # the judge's own error on real clips
        judged_accuracy_vae_reconstruction=judge_accuracy(recon, labels),  # the ceiling the VAE sets
        vae_psnr_db=psnr((recon + 1) / 2, (real + 1) / 2).mean().item(),
        vae_ssim=ssim((recon + 1) / 2, (real + 1) / 2).mean().item(),
        seconds_per_clip=seconds_per_clip, sampling_seconds=generated.timings["sampling"],
        decoding_seconds=generated.timings["decoding"],
    )


def eval_i2v(pipe, args, out: Path, sample) -> dict:
    from opensora_lite.eval.shapes_judge import judge_image_to_video

    val = _dataset(args, "val", 1, pipe.image_size)
    picks = _spread(len(val), args.i2v_clips)
    videos, verdicts = [], []
    for index in picks:  # one clip per given frame
        clip, label = _first_frames(val, index, 1, pipe.image_size)
        image = clip[:, 0]  # (3, H, W)
        clip = sample(classes=[label], num_frames=args.frames, first_frame=image, seed_offset=index)
        videos.append(clip)
        verdicts.append(judge_image_to_video(clip.videos[0], image, label))
    _save_grid(videos[:: max(1, len(videos) // 12)], out / "i2v")
    _save_preview(videos[:: max(1, len(videos) // 4)][:4], out / "i2v")
    offsets = [v["start_offset"] for v in verdicts if v["start_offset"] is not None]
    return dict(clips=len(picks), frames=args.frames, judged_accuracy=_rate(verdicts),
                mean_start_offset_px=sum(offsets) / max(1, len(offsets)), failures=_reasons(verdicts))


def eval_extend(pipe, args, out: Path, sample) -> dict:
    from opensora_lite.eval.shapes_judge import judge_consistency

    val = _dataset(args, "val_long", args.context_frames, pipe.image_size)
    picks = _spread(len(val), args.extend_clips)
    videos, verdicts, ceiling = [], [], []
    for index in picks:
        real, label = _first_frames(val, index, args.long_frames, pipe.image_size)  # (3, long_frames, H, W)
        clip = sample(classes=[label], extend=real[:, :args.context_frames], num_frames=args.long_frames,
                      seed_offset=index, window_frames=args.window, overlap_frames=args.overlap)
        videos.append(clip)
        verdicts.append(judge_consistency(clip.videos[0], label))
        ceiling.append(judge_consistency(_reconstruct_in_windows(pipe, real), label))
    _save_grid(videos[:: max(1, len(videos) // 12)], out / "extend")
    _save_preview(videos[:: max(1, len(videos) // 4)][:4], out / "extend")
    return dict(clips=len(picks), context_frames=args.context_frames, frames=args.long_frames,
                judged_accuracy=_rate(verdicts), failures=_reasons(verdicts),
                judged_accuracy_vae_reconstruction=_rate(ceiling), vae_reconstruction_failures=_reasons(ceiling))


def _reconstruct_in_windows(pipe, video):
    """The whole real clip (3, T, H, W) through the VAE in windows of the pipeline's window length (each
    frame from the first window that holds it; the last window ends at the last frame): what no generator
    on this VAE beats in the extend mode."""
    import torch


    frames = video.shape[1]
    window = min(pipe.frame_plan(frames).window_frames, frames)
    starts = sorted({*range(0, frames - window, window - 1), frames - window})
    pieces, made = [], 0
    for start in starts:
        rec = pipe.decode(pipe.encode(video[None, :, start:start + window]), window)[0]  # (3, window, H, W)
        pieces.append(rec[:, made - start:])
        made = start + window
    return torch.cat(pieces, dim=1)  # (3, T, H, W)


def _from_nothing(pipe, args, out: Path, sample, frames: int, name: str, **window) -> dict:
    from opensora_lite.eval.shapes_judge import judge_consistency

    num_classes = pipe.num_classes
    per_class = max(1, args.extend_clips // num_classes)
    clips = sample(classes=range(num_classes), num_samples=per_class, num_frames=frames, **window)
    verdicts = [judge_consistency(v, c) for v, c in zip(clips.videos, clips.ids)]
    _save_grid([clips], out / name, every=per_class)
    return dict(clips=len(verdicts), frames=frames, judged_accuracy=_rate(verdicts), failures=_reasons(verdicts))


def eval_sizes(pipe, args, out: Path, sample) -> dict:
    import torch

    from opensora_lite.eval.shapes_judge import judge_accuracy, judge_clips

    num_classes, frames = pipe.num_classes, args.frames
    classes = [c for c in range(num_classes) for _ in range(args.per_class)]
    val = _dataset(args, "val", frames, pipe.image_size)
    val_sizes = val.sizes()
    results = {}
    for size in args.sizes or [tuple(pipe.image_size)]:
        name = f"{size[0]}x{size[1]}"
        generated = sample(classes=range(num_classes), num_samples=args.per_class, num_frames=frames, size=size)
        verdicts = judge_clips(generated.videos)
        correct = [v["class_id"] == c for v, c in zip(verdicts, classes)]
        real = [i for i, s in enumerate(val_sizes) if s[1:] == tuple(size)][:args.real_clips]
        real_accuracy = None
        if real:  # the judge on the held-out clips drawn at this size (read at it, so nothing is resized)
            clips = [_first_frames(val, i, frames, size) for i in real]
            real_accuracy = judge_accuracy(torch.stack([c for c, _ in clips]), [label for _, label in clips])
        _save_grid([generated], out / "sizes" / name, every=args.per_class)
        results[name] = dict(clips=len(classes), judged_accuracy=sum(correct) / len(correct),
                             real_heldout_clips=len(real), judged_accuracy_real_heldout=real_accuracy)
    return dict(frames=frames, per_size=results, lowest_judged_accuracy=min(r["judged_accuracy"]
                                                                            for r in results.values()))


def _spread(n: int, k: int) -> list:
    """k indices spread evenly over range(n) (every class of a class-sorted CSV)."""
    k = min(k, n)
    return [int(i * n / k) for i in range(k)]


def _save_grid(outputs: list, folder: Path, every: int = 1) -> None:
    import torch

    from opensora_lite.inference.pipeline import VideoOutput

    videos = torch.cat([o.videos for o in outputs])[::every]
    given = torch.cat([o.given for o in outputs])[::every]
    names = [n for o in outputs for n in o.names][::every]
    ids = [i for o in outputs for i in o.ids][::every]
    VideoOutput(videos, given, names, ids).save(folder, overwrite=True)


def _save_preview(outputs: list, folder: Path) -> None:
    """``<folder>/preview.webp``: a few clips side by side, animated (given frames marked), for the README."""
    import torch

    from opensora_lite.data.grid import save_animation
    from opensora_lite.inference.output import mark_given

    videos = mark_given(torch.cat([o.videos for o in outputs]), torch.cat([o.given for o in outputs]))
    save_animation(folder / "preview.webp", videos, fps=outputs[0].fps)


def main(argv):
    args = parse_args(argv)
    cfg = load_config(args.config)
    out = Path(args.out)
    if (out / "results.json").exists() and not args.overwrite:
        raise UserError(f"{out / 'results.json'} exists; pass --overwrite or another --out")
    out.mkdir(parents=True, exist_ok=True)
    import torch

    from opensora_lite.inference.pipeline import VideoPipeline

    torch.manual_seed(0)
    pipe = VideoPipeline.from_loaded_config(cfg, args.config, ckpt=args.ckpt, vae_ckpt=args.vae_ckpt)

    def sample(seed_offset: int = 0, **request):
        return pipe(seed=args.seed + seed_offset, steps=args.steps, cfg_scale=args.cfg_scale, sampler=args.sampler,
                    given_cfg_scale=args.given_cfg_scale, batch_size=12, progress=False, **request)

    runners = dict(
        uncond=lambda: eval_uncond(pipe, args, out, sample),
        i2v=lambda: eval_i2v(pipe, args, out, sample),
        extend=lambda: eval_extend(pipe, args, out, sample),
        long=lambda: _from_nothing(pipe, args, out, sample, args.long_frames, "long", window_frames=args.window,
                                   overlap_frames=args.overlap),
        longer=lambda: _from_nothing(pipe, args, out, sample, args.longer_frames, "longer",
                                     window_frames=args.window, overlap_frames=args.overlap),
        direct=lambda: _from_nothing(pipe, args, out, sample, args.direct_frames, "direct",
                                     window_frames=args.direct_frames + 1),
        sizes=lambda: eval_sizes(pipe, args, out, sample),
    )
    results = dict(config=args.config, ckpt=args.ckpt or cfg.get("ckpt", {}).get("model"),
                   steps=args.steps or pipe.scheduler.num_sampling_steps,
                   cfg_scale=args.cfg_scale if args.cfg_scale is not None else pipe.scheduler.cfg_scale,
                   given_cfg_scale=args.given_cfg_scale if args.given_cfg_scale is not None else pipe.given_cfg_scale,
                   sampler=args.sampler or pipe.scheduler.sampler,
                   window=dict(pipe.window, **{k: v for k, v in (("frames", args.window), ("overlap", args.overlap))
                                               if v is not None}))
    for mode in args.modes:
        t0 = time.perf_counter()
        results[mode] = dict(runners[mode](), seconds=round(time.perf_counter() - t0, 1))
        print(json.dumps({mode: results[mode]}), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"results: {out / 'results.json'}")
